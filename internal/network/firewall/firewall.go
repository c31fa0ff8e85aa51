package firewall

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Bridge is one bridge network as the rules see it.
type Bridge struct {
	Name     string
	Subnets  []netip.Prefix // IPv4 and IPv6
	Internal bool           // no traffic forwarded in or out of the bridge
	NoICC    bool           // no IP traffic between the bridge's own ports
	NoMasq   bool           // no masquerade of what leaves the bridge
	// Ports are the bridge's ports (the host ends of its veths); with
	// NoICC, the IP frames the bridge forwards from any of them are
	// dropped.
	Ports []string
}

// Port is one published port: traffic to HostIP:HostPort (any local
// address of IP's family but ::1 when HostIP is the zero value) goes to
// IP:Port.
type Port struct {
	Proto    string // "tcp", "udp" or "sctp"
	HostIP   netip.Addr
	HostPort uint16
	IP       netip.Addr // the container's address
	Port     uint16
	Bridge   string // the bridge IP is on
}

// Ruleset is the whole of berth's rules.
type Ruleset struct {
	Bridges []Bridge
	Ports   []Port
	// IsolateForwarding4 and IsolateForwarding6 drop IPv4 or IPv6
	// forwarded between interfaces none of which is one of Bridges: for a
	// host on which berth turned that family's forwarding on, which then
	// routes only what it routed before plus the bridges' traffic.
	IsolateForwarding4, IsolateForwarding6 bool
}

// ipsDstNAT is IPS_DST_NAT of the conntrack status bits
// (include/uapi/linux/netfilter/nf_conntrack_common.h).
const ipsDstNAT = 1 << 5

// Apply replaces the table's rules with rs in one transaction.
func Apply(table string, rs Ruleset) error {
	for _, p := range rs.Ports {
		if _, err := protoNum(p.Proto); err != nil {
			return err
		}
		if !p.IP.IsValid() || (p.HostIP.IsValid() && p.HostIP.Is4() != p.IP.Is4()) {
			return fmt.Errorf("port %d: host and container addresses of different families", p.HostPort)
		}
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	// add, delete, add: the table ends up new and empty whether or not it
	// existed, within one atomic batch.
	t := &nftables.Table{Name: table, Family: nftables.TableFamilyINet}
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	accept := nftables.ChainPolicyAccept
	chain := func(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return c.AddChain(&nftables.Chain{Name: name, Table: t, Type: typ, Hooknum: hook, Priority: prio, Policy: &accept})
	}
	// The bridge family's table of the same name, for icc off: made only
	// when a bridge needs it, removed otherwise (add, delete: gone
	// whether or not it was there).
	bt := &nftables.Table{Name: table, Family: nftables.TableFamilyBridge}
	c.AddTable(bt)
	c.DelTable(bt)
	if slices.ContainsFunc(rs.Bridges, func(b Bridge) bool { return b.NoICC }) {
		noICC(c, bt, rs.Bridges)
	}
	fwd := chain("forward", nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter)
	pre := chain("prerouting", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
	out := chain("output", nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	post := chain("postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	in := chain("input", nftables.ChainTypeFilter, nftables.ChainHookInput, nftables.ChainPriorityFilter)
	rule := func(ch *nftables.Chain, exprs ...[]expr.Any) {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: slices.Concat(exprs...)})
	}

	// forward: --internal bridges first, then published ports, then
	// isolation between bridges. Published traffic crosses bridges on
	// purpose (a container reaching another network's published port
	// through the host), so it is accepted before the isolation drops.
	for _, b := range rs.Bridges {
		if b.Internal {
			rule(fwd, ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, b.Name), ifname(unix.NFT_META_OIFNAME, expr.CmpOpNeq, b.Name), verdict(expr.VerdictDrop))
			rule(fwd, ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, b.Name), ifname(unix.NFT_META_IIFNAME, expr.CmpOpNeq, b.Name), verdict(expr.VerdictDrop))
		}
	}
	var notBridges []expr.Any
	for _, b := range rs.Bridges {
		notBridges = slices.Concat(notBridges, ifname(unix.NFT_META_IIFNAME, expr.CmpOpNeq, b.Name), ifname(unix.NFT_META_OIFNAME, expr.CmpOpNeq, b.Name))
	}
	if rs.IsolateForwarding4 {
		rule(fwd, nfproto(unix.NFPROTO_IPV4), notBridges, verdict(expr.VerdictDrop))
	}
	if rs.IsolateForwarding6 {
		rule(fwd, nfproto(unix.NFPROTO_IPV6), notBridges, verdict(expr.VerdictDrop))
	}
	rule(fwd, ctDNAT(), verdict(expr.VerdictAccept))
	for _, b := range rs.Bridges {
		for _, o := range rs.Bridges {
			if o.Name != b.Name {
				rule(fwd, ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, b.Name), ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, o.Name), verdict(expr.VerdictDrop))
			}
		}
	}

	// prerouting and output: DNAT of published ports. Any local address
	// when no host IP is given, like docker's --dst-type LOCAL.
	for _, p := range rs.Ports {
		proto, _ := protoNum(p.Proto)
		var dst []expr.Any
		if p.HostIP.IsValid() {
			dst = subnetMatch(netip.PrefixFrom(p.HostIP, p.HostIP.BitLen()), true)
		} else if p.IP.Is4() {
			dst = slices.Concat(nfproto(unix.NFPROTO_IPV4), fibLocal())
		} else {
			// not ::1, which the engine's proxy serves: a reply de-NATed
			// to ::1 would arrive on the bridge, and IPv6 drops a
			// loopback destination on any other device (RFC 4291 2.5.3)
			dst = slices.Concat(nfproto(unix.NFPROTO_IPV6), fibLocal(), notAddr(24, netip.IPv6Loopback()))
		}
		match := slices.Concat(dst, l4(proto), dport(p.HostPort))
		rule(pre, match, dnat(p.IP, p.Port))
		rule(out, match, dnat(p.IP, p.Port))
	}

	// postrouting: masquerade what leaves a bridge's subnet for anywhere
	// but the bridge; what was DNATed from 127.0.0.0/8 onto a bridge
	// (loopback sources cannot be routed back, RFC 1122 3.2.1.3: the
	// bridge has route_localnet set so such packets are routed at all);
	// and hairpin traffic DNATed back into its own bridge, whose replies
	// would otherwise bypass the host and its reverse NAT.
	for _, b := range rs.Bridges {
		for _, s := range b.Subnets {
			if !b.Internal && !b.NoMasq {
				rule(post, subnetMatch(s, false), ifname(unix.NFT_META_OIFNAME, expr.CmpOpNeq, b.Name), masq())
			}
			rule(post, ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, b.Name), subnetMatch(s, false), ctDNAT(), masq())
		}
		rule(post, ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, b.Name), subnetMatch(netip.MustParsePrefix("127.0.0.0/8"), false), masq())
	}
	// input: route_localnet on a bridge would also let a container send
	// packets to 127.0.0.1 through it and reach the host's loopback-only
	// services (CVE-2020-8558, the same hole in kube-proxy). Only replies
	// of connections the host made (our DNAT from 127.0.0.1) may come in.
	for _, b := range rs.Bridges {
		rule(in, ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, b.Name), subnetMatch(netip.MustParsePrefix("127.0.0.0/8"), true), ctNotEstablished(), verdict(expr.VerdictDrop))
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("apply nftables table inet %s: %w", table, err)
	}
	return nil
}

// noICC writes the bridge family's forward chain: no IP frame bridged
// from one port of a NoICC bridge to another. Between two ports of one
// bridge the kernel bridges, and the inet family's forward hook sees it
// only with br_netfilter's bridge-nf-call-iptables=1 (what docker's
// --icc=false needs); the bridge family's forward hook sees every frame
// the bridge forwards, on any host. The match is by port name: this
// kernel's bridge meta keys (ibrname) come with nft_meta_bridge, which
// not every kernel has. ARP passes, as with docker's rule, which sees
// only IP.
func noICC(c *nftables.Conn, t *nftables.Table, bridges []Bridge) {
	c.AddTable(t)
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	for _, b := range bridges {
		if !b.NoICC {
			continue
		}
		for _, p := range b.Ports {
			for _, proto := range []uint16{unix.ETH_P_IP, unix.ETH_P_IPV6} {
				c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: slices.Concat(
					ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, p),
					[]expr.Any{&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1},
						&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, proto)}},
					verdict(expr.VerdictDrop))})
			}
		}
	}
}

// Delete removes the table (and its bridge family twin); a missing table
// is not an error.
func Delete(table string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	t := &nftables.Table{Name: table, Family: nftables.TableFamilyINet}
	c.AddTable(t)
	c.DelTable(t)
	bt := &nftables.Table{Name: table, Family: nftables.TableFamilyBridge}
	c.AddTable(bt)
	c.DelTable(bt)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete nftables table inet %s: %w", table, err)
	}
	return nil
}

func protoNum(p string) (byte, error) {
	switch p {
	case "tcp", "":
		return unix.IPPROTO_TCP, nil
	case "udp":
		return unix.IPPROTO_UDP, nil
	case "sctp":
		return unix.IPPROTO_SCTP, nil
	}
	return 0, fmt.Errorf("protocol %q: not tcp, udp or sctp", p)
}

func ifname(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: b}}
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

func masq() []expr.Any { return []expr.Any{&expr.Masq{}} }

func nfproto(p byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}}}
}

func l4(p byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}}}
}

func dport(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, port)},
	}
}

// addrMatch compares the address at offset of the network header with p.
func addrMatch(offset uint32, p netip.Prefix) []expr.Any {
	a := p.Masked().Addr().AsSlice()
	n := uint32(len(a))
	out := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: n}}
	if p.Bits() < len(a)*8 {
		m := make([]byte, n)
		for i := 0; i < p.Bits(); i++ {
			m[i/8] |= 0x80 >> (i % 8)
		}
		out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: m, Xor: make([]byte, n)})
	}
	return append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a})
}

// subnetMatch matches the source (or destination) address against p,
// including the family check an inet table needs.
func subnetMatch(p netip.Prefix, dst bool) []expr.Any {
	if p.Addr().Is4() {
		off := uint32(12)
		if dst {
			off = 16
		}
		return slices.Concat(nfproto(unix.NFPROTO_IPV4), addrMatch(off, p))
	}
	off := uint32(8)
	if dst {
		off = 24
	}
	return slices.Concat(nfproto(unix.NFPROTO_IPV6), addrMatch(off, p))
}

// notAddr matches packets whose address at offset of the network header
// is not a.
func notAddr(offset uint32, a netip.Addr) []expr.Any {
	b := a.AsSlice()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: uint32(len(b))},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: b},
	}
}

func fibLocal() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL)},
	}
}

func ctDNAT() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binary.NativeEndian.AppendUint32(nil, ipsDstNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func dnat(ip netip.Addr, port uint16) []expr.Any {
	family := uint32(unix.NFPROTO_IPV4)
	if ip.Is6() {
		family = unix.NFPROTO_IPV6
	}
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: ip.AsSlice()},
		&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: family, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
}

// ctNotEstablished matches packets of connections neither established nor
// related.
func ctNotEstablished() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binary.NativeEndian.AppendUint32(nil, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: make([]byte, 4)},
	}
}
