package network

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/log"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// IPv6 forwarding.
//
// A container on a network with IPv6 reaches beyond the host only if the
// host forwards IPv6, which is net.ipv6.conf.all.forwarding: the kernel
// forwards no IPv6 packet without it (net/ipv6/ip6_output.c, ip6_forward),
// and there is no per-interface switch for it. Docker turns it on for the
// same reason. What it means for the host:
//
//   - the host becomes an IPv6 router on every interface. Writing "all"
//     sets forwarding on each interface too, and a router ignores router
//     advertisements where accept_ra is 1 (the default): a host that gets
//     its IPv6 default route or addresses by SLAAC loses them when their
//     lifetimes run out. accept_ra=2 on the uplink keeps them; berth warns
//     when an interface has such a route and accept_ra=1, and changes no
//     interface itself.
//   - the host would route IPv6 between its other interfaces too. While
//     berth is the one that turned forwarding on, its table drops IPv6
//     forwarded between interfaces none of which is one of its bridges
//     (docker sets ip6tables' FORWARD policy to DROP for this), so that
//     the host routes nothing it did not route before.
//
// berth remembers that it turned forwarding on (networks.json) and turns
// it off again when no network of its has IPv6 or its networks leave the
// kernel (Down, Teardown). Forwarding that was on before is left alone.

const forwarding6 = "/proc/sys/net/ipv6/conf/all/forwarding"

// syncForwarding6 turns IPv6 forwarding on while a network has IPv6, and
// off when berth turned it on and none has. With m.mu held.
func (m *Manager) syncForwarding6(ctx context.Context) error {
	want := slices.ContainsFunc(m.st.Networks, func(n *Network) bool { return n.IPv6 })
	if want == m.fwd6 {
		return nil
	}
	b, err := os.ReadFile(forwarding6)
	if err != nil {
		if !want {
			m.fwd6 = false
			return m.saveNetworks()
		}
		return fmt.Errorf("ipv6 forwarding: %w", err)
	}
	on := strings.TrimSpace(string(b)) == "1"
	switch {
	case want && on:
		return nil // the host forwards already: not ours to turn off
	case want:
		if err := os.WriteFile(forwarding6, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("ipv6 forwarding: %w", err)
		}
		m.fwd6 = true
		log.From(ctx).Info("network: net.ipv6.conf.all.forwarding turned on for IPv6 networks; off again when none is left")
		warnAcceptRA(ctx)
	default:
		if err := m.forwarding6Off(); err != nil {
			return err
		}
	}
	return m.saveNetworks()
}

// forwarding6Off turns IPv6 forwarding off if berth turned it on.
func (m *Manager) forwarding6Off() error {
	if !m.fwd6 {
		return nil
	}
	if err := os.WriteFile(forwarding6, []byte("0"), 0o644); err != nil {
		return fmt.Errorf("ipv6 forwarding off: %w", err)
	}
	m.fwd6 = false
	return nil
}

// warnAcceptRA names the interfaces whose IPv6 routes came from router
// advertisements, which a forwarding host no longer accepts there while
// accept_ra is 1.
func warnAcceptRA(ctx context.Context) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V6)
	if err != nil {
		return
	}
	var names []string
	for _, r := range routes {
		if r.Protocol != unix.RTPROT_RA {
			continue
		}
		l, err := netlink.LinkByIndex(r.LinkIndex)
		if err != nil {
			continue
		}
		name := l.Attrs().Name
		b, _ := os.ReadFile("/proc/sys/net/ipv6/conf/" + name + "/accept_ra")
		if strings.TrimSpace(string(b)) == "1" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	if len(names) > 0 {
		log.From(ctx).Warn("network: with IPv6 forwarding on, these interfaces ignore router advertisements and lose their RA-learned IPv6 routes when they expire; set net.ipv6.conf.<if>.accept_ra=2 on them",
			"interfaces", strings.Join(names, ","))
	}
}
