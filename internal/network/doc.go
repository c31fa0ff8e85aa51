// Package network gives containers their networking the way docker does:
// bridge networks (the default "bridge" on berth0 and user-defined ones), a
// network namespace per container, a veth pair per attachment with the
// container's end named eth0 (eth1, ... for further networks), addresses
// from IPAM, NAT and isolation in nftables, published ports, and name
// resolution (/etc/hosts, /etc/hostname, /etc/resolv.conf, and an embedded
// DNS server on user-defined networks).
//
// Manager is the one entry point the engine calls. Its subpackages each do
// one part and know nothing of the others: netns (namespaces as files and a
// pool of ready ones), ipam (address arithmetic), firewall (berth's nftables
// table), portmap (port specs and host port reservation), dns (the embedded
// server).
//
// It knows nothing of images, the runtime or container state beyond a
// container's ID, name and the path of its network namespace; the engine
// says which containers are alive (Cleanup).
//
// On disk it owns Config.Root/networks.json (the networks, which outlive
// reboots) and, under Config.ExecRoot (a tmpfs on most hosts, so writes on
// the start path are cheap, and empty after a reboot as the kernel is):
// network/endpoints.json (namespaces and endpoints, written atomically
// after every change: the record from which IPAM allocations are rebuilt
// and every kernel object is found again after a crash),
// network/containers/<id>/{hosts,hostname,resolv.conf}, and netns/<id>
// (the bind-mounted namespaces). In the kernel it owns the bridges of its
// networks, veths named vb<hash>, and the nftables table Config.Table
// (default "berth", family inet, and its bridge-family twin while a
// network has icc off; see package firewall for how they live beside
// other tables). Bridges get net.ipv4.conf.<bridge>.route_localnet=1 so that
// 127.0.0.1:hostPort can be DNATed into a container by the kernel, without
// a userland proxy (and the firewall drops anything else a bridge sends
// to 127.0.0.0/8: CVE-2020-8558).
//
// Published ports go through the kernel's DNAT where it can, and through
// a user-space proxy on the reserved socket where it cannot ([::1], and
// IPv6 to a container without IPv6: see ports.go). On a network with
// IPv6 it turns net.ipv6.conf.all.forwarding on, and off again when it
// was the one to turn it on and no such network is left (forwarding.go
// says what that means for the host). icc off is a table of the bridge
// family of the same name, so it needs no br_netfilter.
// Legacy links (Link) are hosts entries on the default network and DNS
// aliases of the linking container on user-defined ones. Stats reads the
// interface counters in a container's namespace.
//
// Close leaves all of that in place for containers that outlive the
// daemon; Down, for a daemon stopping with no container attached, also
// removes the bridges and the table (the networks stay in networks.json
// and New makes them again), so a stopped berth leaves the host's links
// and rules as it found them.
//
// # Keeping it off a container's start path
//
// A container start waits for NewNetns and Attach; the aim is under 3 ms.
//   - NewNetns takes a namespace from a pool (netns.Pool: four made in
//     advance, loopback up, each with its eth0 veth already made, the host
//     end down and unattached under a temporary vbp name; held by file
//     descriptors and refilled 20 ms after a take, out of the way of the
//     start that took one), so it costs one bind mount. The engine can
//     call it while the rootfs is being prepared.
//   - Attach then only renames the pooled host end, puts it on the bridge
//     and sets it up, and inside the namespace sets eth0's MAC, address,
//     link and default route over a netlink socket opened there (no thread
//     has to setns); then writes the runtime record and the /etc files on
//     ExecRoot's tmpfs. nftables is touched only when ports are published.
//     Without a pooled pair (no pool, or a second network) the veth is
//     made in one request, its peer created inside the namespace as eth0
//     with its MAC: about a millisecond more.
//   - Release does not delete veths itself when the namespace is its own:
//     deleting a veth waits for RCU grace periods (~25 ms); unmounting the
//     namespace lets the kernel destroy the pair in the background (the
//     host end is set down at once).
//
// Measured with BenchmarkAttachPool on a loaded two-core VM (ExecRoot on
// tmpfs): a median of about 1.1-1.3 ms for NewNetns + Attach
// (BenchmarkAttachNoPool: 1.9-2.8 ms).
package network
