package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/berth-dev/berth/internal/cleanup"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network/ipam"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Docker's -o options that berth understands.
const (
	OptBridgeName = "com.docker.network.bridge.name"
	OptMTU        = "com.docker.network.driver.mtu"
	OptICC        = "com.docker.network.bridge.enable_icc"
	OptMasquerade = "com.docker.network.bridge.enable_ip_masquerade"
)

// CreateOptions are `network create`'s flags.
type CreateOptions struct {
	Name     string
	Driver   string // "bridge" or empty
	Subnet   netip.Prefix
	Gateway  netip.Addr
	IPRange  netip.Prefix
	IPv6     bool
	Subnet6  netip.Prefix // with IPv6; a ULA /64 is picked when zero
	Gateway6 netip.Addr
	Internal bool
	Labels   map[string]string
	Options  map[string]string
	Bridge   string // device name; from Options[OptBridgeName], else br-<id[:12]>

	def bool
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// CreateNetwork makes a bridge network: its bridge device with the
// gateway addresses, and its rules.
func (m *Manager) CreateNetwork(ctx context.Context, opts CreateOptions) (Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.createLocked(ctx, opts)
	if err != nil {
		return Network{}, err
	}
	return *n, nil
}

func (m *Manager) createLocked(ctx context.Context, opts CreateOptions) (*Network, error) {
	fail := func(err error) (*Network, error) {
		return nil, fmt.Errorf("create network %s: %w", opts.Name, err)
	}
	if !validName.MatchString(opts.Name) {
		return fail(fmt.Errorf("invalid name: %w", errdefs.ErrInvalidArgument))
	}
	if opts.Driver != "" && opts.Driver != "bridge" {
		return fail(fmt.Errorf("driver %q: only bridge is supported: %w", opts.Driver, errdefs.ErrNotImplemented))
	}
	if !opts.def && (opts.Name == DefaultNetwork || opts.Name == "host" || opts.Name == "none") {
		return nil, fmt.Errorf("%s is a pre-defined network and cannot be created: %w", opts.Name, errdefs.ErrForbidden)
	}
	// These two name the network already, in docker's words (compose
	// matches "already exists"): no "create network x:" before them.
	if m.find(opts.Name) != nil && m.find(opts.Name).Name == opts.Name {
		return nil, fmt.Errorf("network with name %s already exists: %w", opts.Name, errdefs.ErrConflict)
	}
	n := &Network{ID: newID(), Name: opts.Name, Driver: "bridge", Internal: opts.Internal, IPv6: opts.IPv6,
		Labels: opts.Labels, Options: opts.Options, Created: time.Now().UTC(), Default: opts.def,
		UserSubnet: opts.Subnet.IsValid() && !opts.def}
	n.Bridge = opts.Bridge
	if v := opts.Options[OptBridgeName]; v != "" {
		n.Bridge = v
	}
	if n.Bridge == "" {
		n.Bridge = "br-" + n.ID[:12]
	}
	if len(n.Bridge) >= unix.IFNAMSIZ || !validName.MatchString(n.Bridge) {
		return fail(fmt.Errorf("bridge name %q: invalid or longer than 15 bytes: %w", n.Bridge, errdefs.ErrInvalidArgument))
	}
	for _, o := range m.st.Networks {
		if o.Bridge == n.Bridge {
			return fail(fmt.Errorf("bridge %s is used by network %s: %w", n.Bridge, o.Name, errdefs.ErrConflict))
		}
	}
	// The default bridge is adopted if it exists (a state file lost with a
	// reboot of a host whose /run is not a tmpfs); a user network's is not.
	if _, err := net.InterfaceByName(n.Bridge); err == nil && !opts.def {
		return fail(fmt.Errorf("bridge %s: a link of that name exists: %w", n.Bridge, errdefs.ErrConflict))
	}
	for key, field := range map[string]*bool{OptICC: &n.NoICC, OptMasquerade: &n.NoMasquerade} {
		if v, ok := opts.Options[key]; ok {
			on, err := strconv.ParseBool(v)
			if err != nil {
				return fail(fmt.Errorf("%s=%q: %w", key, v, errdefs.ErrInvalidArgument))
			}
			*field = !on
		}
	}
	if v := opts.Options[OptMTU]; v != "" {
		mtu, err := strconv.Atoi(v)
		if err != nil || mtu < 68 || mtu > 65535 {
			return fail(fmt.Errorf("mtu %q: %w", v, errdefs.ErrInvalidArgument))
		}
		n.MTU = mtu
	}

	taken, err := m.takenPrefixes()
	if err != nil {
		return fail(err)
	}
	subnet := opts.Subnet
	if !subnet.IsValid() {
		if opts.Gateway.IsValid() || opts.IPRange.IsValid() {
			return fail(fmt.Errorf("gateway and ip-range need a subnet: %w", errdefs.ErrInvalidArgument))
		}
		cands := ipam.DefaultPools()
		if len(m.cfg.AddressPools) > 0 {
			cands = m.cfg.AddressPools
		}
		if opts.def {
			cands = append([]netip.Prefix{netip.MustParsePrefix("172.30.0.0/16")}, cands...)
		}
		if subnet, err = ipam.PickSubnet(cands, taken); err != nil {
			return fail(err)
		}
	} else if !subnet.Addr().Is4() {
		return fail(fmt.Errorf("subnet %s: the first subnet must be IPv4 (give IPv6 with --ipv6 --subnet): %w", subnet, errdefs.ErrInvalidArgument))
	}
	pool, err := ipam.NewPool(subnet, opts.IPRange, opts.Gateway)
	if err != nil {
		return fail(err)
	}
	for _, t := range taken {
		if t.Overlaps(subnet) {
			return fail(fmt.Errorf("subnet %s overlaps %s in use on this host: %w", subnet, t, errdefs.ErrConflict))
		}
	}
	n.Subnets = append(n.Subnets, Subnet{Subnet: pool.Subnet, Gateway: pool.Gateway, IPRange: opts.IPRange})
	if opts.IPv6 {
		s6 := opts.Subnet6
		if !s6.IsValid() {
			// A ULA /64 from the network's ID (RFC 4193: fd + 40 random bits).
			var b [16]byte
			b[0] = 0xfd
			id, _ := hexBytes(n.ID[:10])
			copy(b[1:6], id)
			s6 = netip.PrefixFrom(netip.AddrFrom16(b), 64)
		}
		if !s6.Addr().Is6() || s6.Addr().Is4In6() {
			return fail(fmt.Errorf("ipv6 subnet %s: %w", s6, errdefs.ErrInvalidArgument))
		}
		p6, err := ipam.NewPool(s6, netip.Prefix{}, opts.Gateway6)
		if err != nil {
			return fail(err)
		}
		for _, t := range taken {
			if t.Overlaps(s6) {
				return fail(fmt.Errorf("subnet %s overlaps %s in use on this host: %w", s6, t, errdefs.ErrConflict))
			}
		}
		n.Subnets = append(n.Subnets, Subnet{Subnet: p6.Subnet, Gateway: p6.Gateway})
	}

	var undo cleanup.Stack
	defer undo.Unwind()
	ruled := false
	undo.Push(func() { // last, once the network is off the record
		if ruled {
			_ = m.applyRules()
		}
	})
	if err := ensureBridge(n); err != nil {
		return fail(err)
	}
	undo.Push(func() { _ = deleteBridge(n.Bridge) })
	undo.Push(func() { _ = m.syncForwarding(ctx) }) // once the network is off the record
	m.st.Networks = append(m.st.Networks, n)
	undo.Push(func() { m.st.Networks = slices.DeleteFunc(m.st.Networks, func(o *Network) bool { return o == n }) })
	if err := m.syncForwarding(ctx); err != nil {
		return fail(err)
	}
	if err := m.applyRules(); err != nil {
		return fail(err)
	}
	ruled = true
	if err := m.saveNetworks(); err != nil {
		return fail(err)
	}
	undo.Disarm()
	return n, nil
}

func hexBytes(s string) ([]byte, error) {
	out := make([]byte, len(s)/2)
	for i := range out {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			return nil, err
		}
		out[i] = byte(v)
	}
	return out, nil
}

// takenPrefixes lists the subnets of existing networks and the host's
// routes (other than on our bridges), which a new subnet must not overlap.
func (m *Manager) takenPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	ours := map[int]bool{}
	for _, n := range m.st.Networks {
		for _, s := range n.Subnets {
			out = append(out, s.Subnet)
		}
		if l, err := netlink.LinkByName(n.Bridge); err == nil {
			ours[l.Attrs().Index] = true
		}
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list host routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil || ours[r.LinkIndex] {
			continue // the default route clashes with nothing
		}
		ones, _ := r.Dst.Mask.Size()
		a, ok := netip.AddrFromSlice(r.Dst.IP)
		if !ok || ones == 0 {
			continue
		}
		p := netip.PrefixFrom(a.Unmap(), ones)
		if p.Addr().IsLinkLocalUnicast() || p.Addr().IsMulticast() {
			continue
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// ensureBridge makes n's bridge with its gateway addresses and brings it
// up; an existing bridge (after a daemon restart) gets what it lacks.
func ensureBridge(n *Network) error {
	l, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.Bridge, MTU: n.MTU}}
		if err := netlink.LinkAdd(br); err != nil {
			return fmt.Errorf("add bridge %s: %w", n.Bridge, err)
		}
		if l, err = netlink.LinkByName(n.Bridge); err != nil {
			return fmt.Errorf("bridge %s: %w", n.Bridge, err)
		}
	} else if l.Type() != "bridge" {
		return fmt.Errorf("link %s exists and is not a bridge: %w", n.Bridge, errdefs.ErrConflict)
	}
	have, _ := netlink.AddrList(l, netlink.FAMILY_ALL)
	for _, s := range n.Subnets {
		want := netip.PrefixFrom(s.Gateway, s.Subnet.Bits())
		if slices.ContainsFunc(have, func(a netlink.Addr) bool { return a.IPNet != nil && a.IPNet.String() == want.String() }) {
			continue
		}
		addr := &netlink.Addr{IPNet: ipNet(want)}
		if s.Gateway.Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(l, addr); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("address %s on %s: %w", want, n.Bridge, err)
		}
	}
	// Let the kernel route 127.0.0.1-sourced packets that our output DNAT
	// sends to a container on this bridge (otherwise dropped as martians:
	// net/ipv4/route.c, ip_route_output_key_hash with !route_localnet).
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+n.Bridge+"/route_localnet", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("route_localnet on %s: %w", n.Bridge, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", n.Bridge, err)
	}
	return nil
}

func deleteBridge(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("bridge %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete bridge %s: %w", name, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// RemoveNetwork deletes a network without endpoints. The default network
// cannot be removed.
func (m *Manager) RemoveNetwork(ctx context.Context, ref string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.find(ref)
	if n == nil {
		return fmt.Errorf("network %s not found: %w", ref, errdefs.ErrNotFound)
	}
	if n.Default {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", n.Name, errdefs.ErrForbidden)
	}
	for _, ep := range m.st.Endpoints {
		if ep.NetworkID == n.ID {
			return fmt.Errorf("error while removing network: network %s id %s has active endpoints: %w", n.Name, n.ID, errdefs.ErrConflict)
		}
	}
	if err := deleteBridge(n.Bridge); err != nil {
		return err
	}
	m.st.Networks = slices.DeleteFunc(m.st.Networks, func(o *Network) bool { return o == n })
	return errors.Join(m.syncForwarding(ctx), m.applyRules(), m.saveNetworks())
}

// Networks lists the networks.
func (m *Manager) Networks() []Network {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Network, 0, len(m.st.Networks))
	for _, n := range m.st.Networks {
		out = append(out, *n)
	}
	return out
}

// NetworkInfo is a network with its endpoints, for `network inspect`.
type NetworkInfo struct {
	Network
	Endpoints []Endpoint
}

// Inspect finds a network by name, ID or ID prefix.
func (m *Manager) Inspect(ref string) (NetworkInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.find(ref)
	if n == nil {
		return NetworkInfo{}, fmt.Errorf("network %s not found: %w", ref, errdefs.ErrNotFound)
	}
	info := NetworkInfo{Network: *n}
	for _, ep := range m.st.Endpoints {
		if ep.NetworkID == n.ID {
			info.Endpoints = append(info.Endpoints, *ep)
		}
	}
	return info, nil
}
