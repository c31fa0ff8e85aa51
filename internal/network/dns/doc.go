// Package dns is the embedded DNS server of user-defined networks. For each
// container it listens inside the container's network namespace on
// 127.0.0.11 (as docker), answers the names the caller's Lookup knows
// (container names and network aliases) and forwards every other question
// to upstream resolvers from the daemon's own namespace, so a host resolver
// on 127.0.0.53 is reachable although the container cannot reach it.
//
// The sockets are made by a thread that entered the container's namespace
// and left again (netns.Do): the namespace keeps the sockets, the daemon
// serves them from ordinary goroutines. They listen on ephemeral ports, and
// a small nftables table inside the container's namespace DNATs
// 127.0.0.11:53 to them, so a container may run its own server on port 53
// of 0.0.0.0 without clashing with ours.
//
// It knows nothing of containers or networks beyond the Lookup function,
// and owns nothing on disk.
package dns
