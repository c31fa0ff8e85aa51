// Package portmap parses docker's port publishing specs
// ([hostIP:][hostPort[-end]:]containerPort[-end][/proto]) and reserves the
// host ports by binding sockets on them, as docker does: the kernel then
// refuses the port to anyone else while a container publishes it, and a
// port already in use is found before any rule is written. Most sockets
// are only bound, never listened on: the traffic goes through the DNAT
// rules of package firewall and never reaches them. Where the kernel
// cannot NAT (the caller says where: IPv6 loopback, IPv6 to an IPv4-only
// container), Proxy serves the socket from user space, as docker-proxy
// does, for TCP and UDP.
//
// It knows nothing of containers or rules, and owns nothing on disk.
package portmap
