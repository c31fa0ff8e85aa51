package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/log"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Forwarding.
//
// A container on a bridge reaches beyond the host only if the host
// forwards its packets: net.ipv4.ip_forward for IPv4 and
// net.ipv6.conf.all.forwarding for IPv6 (the kernel forwards nothing
// without them: ip_forward in net/ipv4/ip_forward.c, ip6_forward in
// net/ipv6/ip6_output.c). Docker turns both on for the same reason. What
// it means for the host:
//
//   - the host routes between all its interfaces, not only berth's
//     bridges. While berth is the one that turned a family's forwarding
//     on, its table drops that family's packets forwarded between
//     interfaces none of which is one of its bridges (docker sets the
//     FORWARD policy to DROP for this), so that the host routes nothing
//     it did not route before.
//   - for IPv6, the host also becomes a router on every interface:
//     writing "all" sets forwarding on each interface, and a router
//     ignores router advertisements where accept_ra is 1 (the default),
//     so a host that gets its IPv6 default route or addresses by SLAAC
//     loses them when their lifetimes run out. accept_ra=2 on the uplink
//     keeps them; berth warns when an interface has such a route and
//     accept_ra=1, and changes no interface itself.
//
// IPv4 forwarding is wanted while any network is up, IPv6 while one has
// IPv6. berth remembers which it turned on (networks.json) and turns them
// off again when no network wants them or its networks leave the kernel
// (Down, Teardown). Forwarding that was on before is left alone.

// sysctls of the two families; variables so a test can point them at
// files of its own.
var (
	forwarding4 = "/proc/sys/net/ipv4/ip_forward"
	forwarding6 = "/proc/sys/net/ipv6/conf/all/forwarding"
)

// syncForwarding turns each family's forwarding on while a network wants
// it, and off when berth turned it on and none does. With m.mu held.
func (m *Manager) syncForwarding(ctx context.Context) error {
	want4 := len(m.st.Networks) > 0
	want6 := slices.ContainsFunc(m.st.Networks, func(n *Network) bool { return n.IPv6 })
	changed4, err4 := syncSysctl(forwarding4, want4, &m.fwd4)
	changed6, err6 := syncSysctl(forwarding6, want6, &m.fwd6)
	if changed4 && m.fwd4 {
		log.From(ctx).Info("network: net.ipv4.ip_forward turned on for the bridges; off again when no network is left")
	}
	if changed6 && m.fwd6 {
		log.From(ctx).Info("network: net.ipv6.conf.all.forwarding turned on for IPv6 networks; off again when none is left")
		warnAcceptRA(ctx)
	}
	if err := errors.Join(err4, err6); err != nil {
		return fmt.Errorf("forwarding: %w", err)
	}
	if changed4 || changed6 {
		return m.saveNetworks()
	}
	return nil
}

// forwardingOff turns off the forwarding berth turned on.
func (m *Manager) forwardingOff() error {
	_, err4 := syncSysctl(forwarding4, false, &m.fwd4)
	_, err6 := syncSysctl(forwarding6, false, &m.fwd6)
	if err := errors.Join(err4, err6); err != nil {
		return fmt.Errorf("forwarding off: %w", err)
	}
	return nil
}

// syncSysctl makes the boolean sysctl at path on when want, and off again
// when !want and ours says berth turned it on; ours follows. A sysctl
// that was on already is not ours. It reports whether ours changed.
func syncSysctl(path string, want bool, ours *bool) (bool, error) {
	if want == *ours {
		return false, nil
	}
	if !want {
		if err := os.WriteFile(path, []byte("0"), 0o644); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		*ours = false
		return true, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	if strings.TrimSpace(string(b)) == "1" {
		return false, nil // the host forwards already: not ours to turn off
	}
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		return false, err
	}
	*ours = true
	return true, nil
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
