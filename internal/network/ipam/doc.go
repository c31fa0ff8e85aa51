// Package ipam is the address arithmetic of bridge networks: it checks a
// subnet, gateway and allocation range, picks free addresses in them, and
// picks free subnets for networks created without one. It is pure: the
// caller (package network) persists what was allocated, and rebuilds a Pool
// from its records after a restart, so an address is never handed out
// twice across restarts. It knows nothing of links or containers.
package ipam
