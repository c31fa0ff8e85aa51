package network

import (
	"errors"
	"net/netip"
	"slices"

	"github.com/berth-dev/berth/internal/errdefs"

	"github.com/berth-dev/berth/internal/network/firewall"
	"github.com/berth-dev/berth/internal/network/portmap"
)

// Published ports take one of two paths:
//
//   - the kernel's DNAT (package firewall), for IPv4, and for IPv6 to a
//     container with an IPv6 address. 127.0.0.1 works through it thanks
//     to route_localnet on the bridge.
//   - a user-space proxy on the reserved socket (portmap.Proxy), where
//     the kernel cannot NAT: to ::1, because a reply de-NATed to ::1
//     arrives on the bridge and IPv6 drops a loopback destination on any
//     other device (RFC 4291 2.5.3; net/ipv6/ip6_input.c, and there is no
//     route_localnet for IPv6); and from IPv6 to an IPv4-only container
//     (no NAT64). [::]:port gets both: DNAT for every address but ::1,
//     whose connections fall through to the listening socket. Docker
//     takes the same two paths (its docker-proxy) for these cases.
//
// The proxy runs in the daemon: while the daemon is down, ::1 is not
// served (the kernel paths are).

// reservePorts reserves bs; on a network with IPv6 a binding on every
// address (no host IP) gets [::] of the same port beside it, as docker
// lists both 0.0.0.0:port and [::]:port.
// An ephemeral port the kernel picked for IPv4 may be taken for IPv6:
// then the whole reservation is tried again, a few times. (A range's
// first free IPv4 port taken for IPv6 is a conflict.)
func reservePorts(bs []portmap.Binding, dual bool) (*portmap.Reservation, error) {
	picked := slices.ContainsFunc(bs, func(b portmap.Binding) bool { return b.HostPort == 0 })
	for attempt := 0; ; attempt++ {
		r, err := portmap.Reserve(bs)
		if err != nil || !dual {
			return r, err
		}
		var v6 []portmap.Binding
		for _, b := range r.Bindings {
			if !b.HostIP.IsValid() {
				b.HostIP = netip.IPv6Unspecified()
				v6 = append(v6, b)
			}
		}
		err = r.Add(v6)
		if err == nil {
			return r, nil
		}
		r.Close()
		if !picked || !errors.Is(err, errdefs.ErrConflict) || attempt == 4 {
			return nil, err
		}
	}
}

// proxyTarget says whether binding b of ep is served by a proxy, and
// where to.
func proxyTarget(ep *Endpoint, b portmap.Binding) (netip.AddrPort, bool) {
	if !b.HostIP.Is6() {
		return netip.AddrPort{}, false
	}
	if ep.IPv6.IsValid() && !b.HostIP.IsLoopback() && !b.HostIP.IsUnspecified() {
		return netip.AddrPort{}, false
	}
	to := ep.IPv6
	if !to.IsValid() {
		to = ep.IPv4
	}
	return netip.AddrPortFrom(to.Addr(), b.ContainerPort), true
}

// startProxies starts the proxies of ep's bindings held by r.
func startProxies(r *portmap.Reservation, ep *Endpoint) error {
	for i, b := range r.Bindings {
		if to, ok := proxyTarget(ep, b); ok {
			if err := r.Proxy(i, to); err != nil {
				return err
			}
		}
	}
	return nil
}

// portRules are the DNAT rules of ep's bindings on the bridge.
func portRules(ep *Endpoint, bridge string) []firewall.Port {
	var out []firewall.Port
	for _, p := range ep.Ports {
		host := p.HostIP
		if host.IsUnspecified() {
			host = netip.Addr{} // every local address of the family
		}
		fp := firewall.Port{Proto: p.Proto, HostIP: host, HostPort: p.HostPort, Port: p.ContainerPort, Bridge: bridge}
		switch {
		case !p.HostIP.IsValid() || p.HostIP.Is4():
			if !ep.IPv4.IsValid() {
				continue
			}
			fp.IP = ep.IPv4.Addr()
		case ep.IPv6.IsValid() && !p.HostIP.IsLoopback():
			fp.IP = ep.IPv6.Addr()
		default:
			continue // the proxy's
		}
		out = append(out, fp)
	}
	return out
}
