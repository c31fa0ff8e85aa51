// Package firewall writes berth's nftables rules: outbound masquerade per
// bridge subnet, isolation between bridges, --internal networks, icc off,
// the DNAT of published ports (IPv4 and IPv6, from other hosts, from the
// host itself including 127.0.0.1, and hairpin from containers), the
// guard against containers reaching the host's loopback (input chain),
// and, on a host where berth turned IPv6 forwarding on, the drop of IPv6
// forwarded between interfaces that are not its bridges.
// Everything lives in one table of berth's own (family inet, named by the
// caller: "berth" for the daemon), and icc off in its twin of the bridge
// family (made only while a bridge has icc off), which Apply replaces
// whole in one netlink transaction and Delete removes whole. Rules
// are never edited one by one, so a crash can leave only a complete old or
// a complete new ruleset, and cleanup after a crash is a matter of calling
// Apply with the live state.
//
// # Living beside other software's rules (iptables-nft, docker, firewalld)
//
// Every table hooks into netfilter on its own: a packet passes the base
// chains of all tables on a hook in order of chain priority (ties in an
// unspecified order). Our chains use the standard priorities (dstnat -100
// for prerouting and output, filter 0 for forward and input, srcnat 100
// for postrouting), as iptables-nft does, and we never touch another table.
//
// The semantics across tables are what matter:
//   - drop is final: a drop in our forward chain (isolation, --internal)
//     holds whatever other tables say, and a drop elsewhere holds against
//     us. A host whose iptables FORWARD policy is DROP (docker sets it so)
//     drops our bridges' traffic unless its admin accepts it there, as with
//     any second container engine.
//   - accept only ends the packet's walk through our table; the next
//     table's chains still see it. So our rules never rely on accept to let
//     something through another table.
//   - NAT: the first nat chain that NATs a new connection decides its
//     mapping; later nat chains are not consulted for that connection.
//     Our DNAT matches only our published host ports, and our masquerade
//     only our bridges' subnets, so docker's own rules for docker0 and its
//     ports never compete with ours unless the user publishes the same host
//     port in both (then the port reservation fails first: we bind the
//     port, docker-proxy or our bind loses).
//
// It knows nothing of containers or IPAM: the caller passes the bridges
// and the published ports.
package firewall
