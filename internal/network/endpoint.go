package network

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cleanup"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/network/ipam"
	"github.com/berth-dev/berth/internal/network/netns"
	"github.com/berth-dev/berth/internal/network/portmap"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetnsPath is where NewNetns puts a container's namespace.
func (m *Manager) NetnsPath(containerID string) string {
	return filepath.Join(m.cfg.ExecRoot, "netns", containerID)
}

// NewNetns gives a container a network namespace (from the pool when one
// is ready) with loopback up, bound at NetnsPath(id), and returns the path
// for the runtime spec's network namespace. It can run in parallel with the
// rootfs preparation. Release removes it.
func (m *Manager) NewNetns(ctx context.Context, containerID string) (string, error) {
	return m.newNetns(ctx, containerID, true)
}

// NewNetnsAlone is NewNetns for a container that starts on no network
// (docker's container disconnected from all of them): a namespace with
// loopback only, made now rather than taken from the pool, whose
// namespaces hold an eth0 that would stay inside unconfigured. Files
// then writes its /etc files.
func (m *Manager) NewNetnsAlone(ctx context.Context, containerID string) (string, error) {
	return m.newNetns(ctx, containerID, false)
}

func (m *Manager) newNetns(ctx context.Context, containerID string, pooled bool) (string, error) {
	if containerID == "" || strings.ContainsAny(containerID, "/\x00") || containerID == "." || containerID == ".." {
		return "", fmt.Errorf("netns for container %q: %w", containerID, errdefs.ErrInvalidArgument)
	}
	path := m.NetnsPath(containerID)
	var veth string
	var err error
	if pooled {
		veth, err = m.pool.Take(path)
	} else {
		err = netns.Create(path)
	}
	if err != nil {
		return "", fmt.Errorf("netns for container %s: %w", containerID, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if sb := m.sandbox(containerID); sb != nil {
		_ = netns.Remove(path)
		return "", fmt.Errorf("netns for container %s: %w", containerID, errdefs.ErrAlreadyExists)
	}
	m.st.Containers = append(m.st.Containers, &Sandbox{ContainerID: containerID, Netns: path, OwnNetns: true, PoolVeth: veth})
	log.From(ctx).Debug("netns ready", log.KeyContainer, containerID, log.KeyNetns, path)
	if err := m.save(); err != nil {
		m.st.Containers = m.st.Containers[:len(m.st.Containers)-1]
		_ = netns.Remove(path)
		return "", err
	}
	return path, nil
}

// AttachOptions connects a container to a network.
type AttachOptions struct {
	ContainerID string
	Name        string   // the container's name, resolved by the embedded DNS
	Aliases     []string // --network-alias
	NetnsPath   string   // the container's netns; empty: the one NewNetns made
	Network     string   // name, ID or ID prefix; empty: the default network
	IPv4        netip.Addr
	IPv6        netip.Addr
	MAC         net.HardwareAddr  // --mac-address; derived from IPv4 when nil
	Ports       []portmap.Binding // published on this endpoint

	// Name resolution; used when the container first attaches (later
	// attachments keep the first one's settings).
	Hostname   string
	Domainname string
	DNS        []string // --dns
	DNSSearch  []string // --dns-search
	DNSOptions []string // --dns-option
	ExtraHosts []string // --add-host name:ip
	Links      []Link   // --link
}

// AttachResult is the new endpoint and the files to bind-mount into the
// container at /etc/hosts, /etc/hostname and /etc/resolv.conf.
type AttachResult struct {
	Endpoint       Endpoint
	HostsPath      string
	HostnamePath   string
	ResolvConfPath string
}

// vethName derives the host end's name from the container and network, so
// that it can be found again after a crash even without state.
func vethName(containerID, networkID string) string {
	h := sha256.Sum256([]byte(containerID + "/" + networkID))
	return "vb" + hex.EncodeToString(h[:])[:11]
}

// Attach connects a container to a network: host ports reserved, addresses
// allocated, a veth with its container end (eth0, eth1, ...) addressed and
// routed inside the namespace and its host end on the bridge, rules for the
// published ports, name resolution files, and the embedded DNS server on a
// user-defined network. On error nothing of it remains.
func (m *Manager) Attach(ctx context.Context, opts AttachOptions) (AttachResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	res, err := m.attachLocked(ctx, opts)
	if err != nil {
		return AttachResult{}, fmt.Errorf("attach container %s to network %s: %w", opts.ContainerID, opts.Network, err)
	}
	return res, nil
}

func (m *Manager) attachLocked(ctx context.Context, opts AttachOptions) (AttachResult, error) {
	var undo cleanup.Stack
	defer undo.Unwind()
	// Undone last of all, once the records are as they were: the rules
	// and the record on disk written from them.
	var ruled, saved bool
	undo.Push(func() {
		if ruled {
			_ = m.applyRules()
		}
		if saved {
			_ = m.save()
		}
	})
	ref := opts.Network
	if ref == "" {
		ref = DefaultNetwork
	}
	n := m.find(ref)
	if n == nil {
		return AttachResult{}, fmt.Errorf("network %s not found: %w", ref, errdefs.ErrNotFound)
	}
	if opts.ContainerID == "" {
		return AttachResult{}, fmt.Errorf("no container ID: %w", errdefs.ErrInvalidArgument)
	}
	if _, err := parseExtraHosts(opts.ExtraHosts); err != nil {
		return AttachResult{}, err
	}
	// a multicast source address would be dropped by every receiver
	if opts.MAC != nil && (len(opts.MAC) != 6 || opts.MAC[0]&1 != 0) {
		return AttachResult{}, fmt.Errorf("mac address %s: not a unicast Ethernet address: %w", opts.MAC, errdefs.ErrInvalidArgument)
	}
	if (opts.IPv4.IsValid() || opts.IPv6.IsValid()) && !n.UserSubnet {
		if n.Default {
			return AttachResult{}, fmt.Errorf("user specified IP address is supported on user defined networks only: %w", errdefs.ErrInvalidArgument)
		}
		return AttachResult{}, fmt.Errorf("user specified IP address is supported only when connecting to networks with user configured subnets: %w", errdefs.ErrInvalidArgument)
	}
	if n.Default && len(opts.Aliases) > 0 {
		return AttachResult{}, fmt.Errorf("network-scoped aliases are only supported for user-defined networks: %w", errdefs.ErrInvalidArgument)
	}
	sb := m.sandbox(opts.ContainerID)
	if sb == nil {
		path := opts.NetnsPath
		if path == "" {
			return AttachResult{}, fmt.Errorf("no network namespace (call NewNetns or give NetnsPath): %w", errdefs.ErrInvalidArgument)
		}
		sb = &Sandbox{ContainerID: opts.ContainerID, Netns: path}
		m.st.Containers = append(m.st.Containers, sb)
		undo.Push(func() {
			m.st.Containers = slices.DeleteFunc(m.st.Containers, func(s *Sandbox) bool { return s == sb })
		})
	}
	if opts.NetnsPath != "" && opts.NetnsPath != sb.Netns {
		return AttachResult{}, fmt.Errorf("netns %s: the container already uses %s: %w", opts.NetnsPath, sb.Netns, errdefs.ErrConflict)
	}
	eps := m.endpointsOf(opts.ContainerID)
	if sb.Hostname == "" { // not set up yet (by Files or a first Attach)
		setResolution(sb, opts)
	}
	for _, l := range opts.Links { // a later network's own (connect --link)
		if !slices.Contains(sb.Links, l) {
			sb.Links = append(sb.Links, l)
		}
	}
	for _, ep := range eps {
		if ep.NetworkID == n.ID {
			return AttachResult{}, fmt.Errorf("endpoint with name %s already exists in network %s: %w", opts.Name, n.Name, errdefs.ErrConflict)
		}
	}
	nsf, err := os.Open(sb.Netns)
	if err != nil {
		return AttachResult{}, fmt.Errorf("open netns: %w", err)
	}
	defer nsf.Close()
	if !netns.IsNetns(sb.Netns) {
		return AttachResult{}, fmt.Errorf("%s is not a network namespace: %w", sb.Netns, errdefs.ErrInvalidArgument)
	}

	ep := &Endpoint{ID: newID(), ContainerID: opts.ContainerID, Name: opts.Name, Aliases: opts.Aliases,
		NetworkID: n.ID, NetworkName: n.Name, HostVeth: vethName(opts.ContainerID, n.ID)}

	// Host ports first: a port in use must fail before any kernel object.
	if len(opts.Ports) > 0 {
		r, err := reservePorts(opts.Ports, n.IPv6)
		if err != nil {
			return AttachResult{}, err
		}
		undo.Push(r.Close)
		ep.Ports = r.Bindings
		m.ports[ep.ID] = r
		undo.Push(func() { delete(m.ports, ep.ID) })
	}

	// Addresses: the pools are rebuilt from the endpoints on record, which
	// is what makes allocations survive a restart without a second record.
	for _, s := range n.Subnets {
		pool, err := m.poolOf(n, s)
		if err != nil {
			return AttachResult{}, err
		}
		want := opts.IPv4
		if s.Subnet.Addr().Is6() {
			want = opts.IPv6
		}
		a, err := pool.Allocate(opts.ContainerID, want)
		if err != nil {
			return AttachResult{}, err
		}
		if a.Is4() {
			ep.IPv4, ep.Gateway = netip.PrefixFrom(a, s.Subnet.Bits()), s.Gateway
		} else {
			ep.IPv6, ep.Gateway6 = netip.PrefixFrom(a, s.Subnet.Bits()), s.Gateway
		}
	}
	if opts.IPv6.IsValid() && !ep.IPv6.IsValid() {
		return AttachResult{}, fmt.Errorf("--ip6 %s: network %s has no IPv6: %w", opts.IPv6, n.Name, errdefs.ErrInvalidArgument)
	}
	if opts.IPv4.IsValid() && opts.IPv4 != ep.IPv4.Addr() {
		return AttachResult{}, fmt.Errorf("--ip %s: %w", opts.IPv4, errdefs.ErrInvalidArgument)
	}
	derived := ipam.MACFromIP(ep.IPv4.Addr())
	mac := net.HardwareAddr(derived[:])
	if opts.MAC != nil {
		mac = opts.MAC
	}
	ep.MAC = mac.String()
	ep.IfName = nextIfName(eps)

	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return AttachResult{}, fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	var setMAC net.HardwareAddr // set inside when the pair came from the pool
	if sb.PoolVeth != "" && len(eps) == 0 {
		pooled := sb.PoolVeth
		sb.PoolVeth = ""
		if err := m.adoptPooledVeth(pooled, ep.HostVeth, n, br); err != nil {
			_ = delLink(pooled)
			_ = delLink(ep.HostVeth)
			return AttachResult{}, err
		}
		undo.Push(func() { _ = delLink(ep.HostVeth) })
		setMAC = mac
	} else if err := m.addVeth(ep, n, br, mac, nsf); err != nil {
		return AttachResult{}, err
	} else {
		undo.Push(func() { _ = delLink(ep.HostVeth) })
	}
	if err := configureInside(nsf, ep, n, len(eps) == 0 || !hasDefaultRoute(m, eps), setMAC); err != nil {
		return AttachResult{}, err
	}

	if r := m.ports[ep.ID]; r != nil {
		if err := startProxies(r, ep); err != nil {
			return AttachResult{}, err
		}
	}
	m.st.Endpoints = append(m.st.Endpoints, ep)
	undo.Push(func() {
		m.st.Endpoints = slices.DeleteFunc(m.st.Endpoints, func(e *Endpoint) bool { return e == ep })
	})
	// Rules change with published ports, and with every port of a
	// bridge without icc.
	if len(ep.Ports) > 0 || n.NoICC {
		if err := m.applyRules(); err != nil {
			return AttachResult{}, err
		}
		ruled = true
	}
	if err := m.save(); err != nil {
		return AttachResult{}, err
	}
	saved = true
	res, err := m.writeFiles(sb)
	if err != nil {
		return AttachResult{}, err
	}
	m.refreshLinkers(ctx, sb.ContainerID)
	if !n.Default && m.servers[sb.ContainerID] == nil {
		if err := m.startDNS(ctx, sb); err != nil {
			return AttachResult{}, err
		}
	}
	undo.Disarm()
	res.Endpoint = *ep
	log.From(ctx).Debug("attached", log.KeyContainer, opts.ContainerID, "network", n.Name, "ip", ep.IPv4, "veth", ep.HostVeth)
	return res, nil
}

// setResolution takes a sandbox's name resolution settings from opts.
func setResolution(sb *Sandbox, opts AttachOptions) {
	sb.Hostname, sb.Domainname = opts.Hostname, opts.Domainname
	sb.DNS, sb.DNSSearch, sb.DNSOptions, sb.ExtraHosts = opts.DNS, opts.DNSSearch, opts.DNSOptions, opts.ExtraHosts
	sb.Links = opts.Links
	if sb.Hostname == "" {
		sb.Hostname = opts.ContainerID[:min(12, len(opts.ContainerID))]
	}
}

// Files sets a container's name resolution from opts (its hostname, DNS
// settings and extra hosts; Network, addresses and ports are ignored) and
// writes its /etc files, for a container that starts on no network: its
// hosts file names only localhost and the extra hosts. The container's
// namespace must exist (NewNetnsAlone). A later Attach keeps these
// settings.
func (m *Manager) Files(ctx context.Context, opts AttachOptions) (AttachResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb := m.sandbox(opts.ContainerID)
	if sb == nil {
		return AttachResult{}, fmt.Errorf("files of container %s: no network namespace (call NewNetnsAlone): %w", opts.ContainerID, errdefs.ErrNotFound)
	}
	if _, err := parseExtraHosts(opts.ExtraHosts); err != nil {
		return AttachResult{}, fmt.Errorf("files of container %s: %w", opts.ContainerID, err)
	}
	setResolution(sb, opts)
	if err := m.save(); err != nil {
		return AttachResult{}, err
	}
	return m.writeFiles(sb)
}

// addVeth makes the pair: the host end on the bridge, up; the peer made
// directly inside the namespace under its final name and MAC.
func (m *Manager) addVeth(ep *Endpoint, n *Network, br netlink.Link, mac net.HardwareAddr, nsf *os.File) error {
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: ep.HostVeth, MTU: n.MTU, MasterIndex: br.Attrs().Index},
		PeerName:         ep.IfName,
		PeerHardwareAddr: mac,
		PeerNamespace:    netlink.NsFd(int(nsf.Fd())),
	}
	if n.MTU > 0 {
		veth.PeerMTU = uint32(n.MTU)
	}
	if err := takeName(ep.HostVeth, func() error { return netlink.LinkAdd(veth) }); err != nil {
		return fmt.Errorf("add veth %s: %w", ep.HostVeth, err)
	}
	if err := netlink.LinkSetUp(veth); err != nil {
		_ = delLink(ep.HostVeth)
		return fmt.Errorf("set %s up: %w", ep.HostVeth, err)
	}
	return nil
}

// pooledVeth is the namespace pool's Prepare: each spare namespace gets
// its eth0 in advance, the host end down and unattached under a
// temporary name, which takes the veth creation (about a millisecond,
// the largest part of an attach) off the start path.
func pooledVeth(ns *os.File) (string, error) {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	name := "vbp" + hex.EncodeToString(b)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns.Fd()))}
	if err := netlink.LinkAdd(veth); err != nil {
		return "", fmt.Errorf("pooled veth: %w", err)
	}
	return name, nil
}

// adoptPooledVeth gives a pooled pair's host end its endpoint name and
// MTU (both need it down, as it is), then puts it on the bridge, up.
func (m *Manager) adoptPooledVeth(pooled, name string, n *Network, br netlink.Link) error {
	l, err := netlink.LinkByName(pooled)
	if err != nil {
		return fmt.Errorf("pooled veth %s: %w", pooled, err)
	}
	if err := takeName(name, func() error { return netlink.LinkSetName(l, name) }); err != nil {
		return fmt.Errorf("rename %s to %s: %w", pooled, name, err)
	}
	if n.MTU > 0 {
		if err := netlink.LinkSetMTU(l, n.MTU); err != nil {
			return fmt.Errorf("mtu of %s: %w", name, err)
		}
	}
	if err := netlink.LinkSetMasterByIndex(l, br.Attrs().Index); err != nil {
		return fmt.Errorf("put %s on %s: %w", name, n.Bridge, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

// hasDefaultRoute reports whether one of the container's endpoints gave it
// a default route (the first one on a non-internal network).
func hasDefaultRoute(m *Manager, eps []*Endpoint) bool {
	for _, ep := range eps {
		if n := m.find(ep.NetworkID); n != nil && !n.Internal {
			return true
		}
	}
	return false
}

func nextIfName(eps []*Endpoint) string {
	for i := 0; ; i++ {
		name := fmt.Sprintf("eth%d", i)
		if !slices.ContainsFunc(eps, func(e *Endpoint) bool { return e.IfName == name }) {
			return name
		}
	}
}

// poolOf rebuilds the IPAM pool of one subnet from the endpoints on record.
func (m *Manager) poolOf(n *Network, s Subnet) (*ipam.Pool, error) {
	p, err := ipam.NewPool(s.Subnet, s.IPRange, s.Gateway)
	if err != nil {
		return nil, err
	}
	for _, ep := range m.st.Endpoints {
		if ep.NetworkID != n.ID {
			continue
		}
		for _, a := range []netip.Prefix{ep.IPv4, ep.IPv6} {
			if a.IsValid() && s.Subnet.Contains(a.Addr()) {
				_, _ = p.Allocate(ep.ContainerID, a.Addr())
			}
		}
	}
	return p, nil
}

// configureInside addresses and routes the container's end of the veth.
// The netlink socket is opened inside the namespace, so no thread of ours
// has to enter it.
func configureInside(nsf *os.File, ep *Endpoint, n *Network, defaultRoute bool, setMAC net.HardwareAddr) error {
	h, err := netlink.NewHandleAt(vnetns.NsHandle(int(nsf.Fd())), unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in container netns: %w", err)
	}
	defer h.Close()
	l, err := h.LinkByName(ep.IfName)
	if err != nil {
		return fmt.Errorf("find %s in container netns: %w", ep.IfName, err)
	}
	if setMAC != nil {
		if err := h.LinkSetHardwareAddr(l, setMAC); err != nil {
			return fmt.Errorf("mac of %s: %w", ep.IfName, err)
		}
		if n.MTU > 0 {
			if err := h.LinkSetMTU(l, n.MTU); err != nil {
				return fmt.Errorf("mtu of %s: %w", ep.IfName, err)
			}
		}
	}
	if ep.IPv4.IsValid() {
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(ep.IPv4)}); err != nil {
			return fmt.Errorf("address %s: %w", ep.IPv4, err)
		}
	}
	if ep.IPv6.IsValid() {
		// No duplicate address detection: IPAM already made it unique,
		// and DAD would hold the address "tentative" for a second or more.
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(ep.IPv6), Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("address %s: %w", ep.IPv6, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", ep.IfName, err)
	}
	// An --internal network gives no default route: no way out at all.
	if !defaultRoute || n.Internal {
		return nil
	}
	for _, gw := range []netip.Addr{ep.Gateway, ep.Gateway6} {
		if !gw.IsValid() {
			continue
		}
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice()}
		if err := h.RouteAdd(r); err != nil {
			return fmt.Errorf("default route via %s: %w", gw, err)
		}
	}
	return nil
}

// takeName runs add, which names a link name. The name may still be
// held by the same container's pair on the same network of moments ago:
// its namespace was released and the kernel destroys the old pair in the
// background (unregister_netdevice waits for RCU grace periods). Then the
// old link is deleted, or found gone mid-way, and add tried again while
// the kernel lets the name go.
func takeName(name string, add func() error) error {
	err := add()
	for i := 0; errors.Is(err, unix.EEXIST) && i < 100; i++ {
		if err := delLink(name); err != nil {
			return fmt.Errorf("remove old veth %s: %w", name, err)
		}
		if err = add(); !errors.Is(err, unix.EEXIST) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
	return err
}

// delLink deletes a link by name; one that is gone, or going (ENODEV:
// the kernel unregisters it already), is not an error.
func delLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return err
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return err
	}
	return nil
}

// Detach disconnects a container from one network.
func (m *Manager) Detach(ctx context.Context, containerID, network string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.find(network)
	if n == nil {
		return fmt.Errorf("detach container %s: network %s not found: %w", containerID, network, errdefs.ErrNotFound)
	}
	for _, ep := range m.st.Endpoints {
		if ep.ContainerID == containerID && ep.NetworkID == n.ID {
			return m.detachLocked(ctx, ep, true, false)
		}
	}
	return fmt.Errorf("detach container %s: not connected to network %s: %w", containerID, n.Name, errdefs.ErrNotFound)
}

// detachLocked removes one endpoint: veth, rules, host ports, record; with
// files it rewrites the container's hosts file and stops its DNS server
// when no user-defined network is left. With keepVeth the veth is left to
// the kernel, which destroys it with the namespace the caller removes next.
func (m *Manager) detachLocked(ctx context.Context, ep *Endpoint, files, keepVeth bool) error {
	var errs []error
	if !keepVeth {
		if err := delLink(ep.HostVeth); err != nil {
			errs = append(errs, fmt.Errorf("delete veth %s: %w", ep.HostVeth, err))
		}
	} else if l, err := netlink.LinkByName(ep.HostVeth); err == nil {
		// Down at once (a flag, no RCU wait): should a process still hold
		// the namespace, its old address, now free for IPAM, cannot reach
		// the bridge while the kernel keeps the pair alive.
		_ = netlink.LinkSetDown(l)
		if len(m.dying) >= 1024 { // a long-lived daemon: forget the gone
			for name := range m.dying {
				if _, err := netlink.LinkByName(name); err != nil {
					delete(m.dying, name)
				}
			}
		}
		m.dying[ep.HostVeth] = true
	}
	m.st.Endpoints = slices.DeleteFunc(m.st.Endpoints, func(e *Endpoint) bool { return e == ep })
	if r := m.ports[ep.ID]; r != nil {
		r.Close()
		delete(m.ports, ep.ID)
	}
	if n := m.find(ep.NetworkID); len(ep.Ports) > 0 || n != nil && n.NoICC {
		errs = append(errs, m.applyRules())
	}
	errs = append(errs, m.save())
	if sb := m.sandbox(ep.ContainerID); sb != nil && files {
		user := false
		for _, e := range m.endpointsOf(ep.ContainerID) {
			if n := m.find(e.NetworkID); n != nil && !n.Default {
				user = true
			}
		}
		if s := m.servers[sb.ContainerID]; s != nil && !user {
			s.Close()
			delete(m.servers, sb.ContainerID)
		}
		if _, err := m.writeFiles(sb); err != nil {
			errs = append(errs, err)
		}
	}
	log.From(ctx).Debug("detached", log.KeyContainer, ep.ContainerID, "network", ep.NetworkName)
	return errors.Join(errs...)
}

// Release removes all of a container's networking: endpoints, DNS server,
// files, and the namespace when NewNetns made it. Releasing an unknown
// container does nothing, so the engine may call it on every removal.
func (m *Manager) Release(ctx context.Context, containerID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.releaseLocked(ctx, containerID)
}

func (m *Manager) releaseLocked(ctx context.Context, containerID string) error {
	var errs []error
	sb := m.sandbox(containerID)
	// Deleting a veth waits for RCU grace periods (unregister_netdevice →
	// synchronize_net): 20-30 ms here. When the namespace is ours and goes
	// too, the kernel's namespace cleanup destroys the pairs in the
	// background, in one batch, and Release returns at once.
	keepVeth := sb != nil && sb.OwnNetns && netns.IsNetns(sb.Netns)
	for _, ep := range m.endpointsOf(containerID) {
		errs = append(errs, m.detachLocked(ctx, ep, false, keepVeth))
	}
	if s := m.servers[containerID]; s != nil {
		s.Close()
		delete(m.servers, containerID)
	}
	if sb != nil {
		if sb.PoolVeth != "" {
			m.dying[sb.PoolVeth] = true // never attached: goes with the namespace
		}
		if sb.OwnNetns {
			errs = append(errs, netns.Remove(sb.Netns))
		}
		m.st.Containers = slices.DeleteFunc(m.st.Containers, func(s *Sandbox) bool { return s == sb })
		errs = append(errs, m.save())
	}
	errs = append(errs, os.RemoveAll(m.filesDir(containerID)))
	return errors.Join(errs...)
}

// Endpoints lists a container's endpoints (for container inspect and
// docker port).
func (m *Manager) Endpoints(containerID string) []Endpoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Endpoint
	for _, ep := range m.endpointsOf(containerID) {
		out = append(out, *ep)
	}
	return out
}

// LinkStats are one interface's counters, as the kernel keeps them.
type LinkStats struct {
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// Stats reads the counters of the interfaces in a container's namespace
// (eth0, eth1, ...; loopback aside), by netlink from inside it, as `docker
// stats` shows them. A container without a namespace of ours is
// ErrNotFound.
func (m *Manager) Stats(containerID string) (map[string]LinkStats, error) {
	m.mu.Lock()
	sb := m.sandbox(containerID)
	var path string
	if sb != nil {
		path = sb.Netns
	}
	m.mu.Unlock()
	if path == "" {
		return nil, fmt.Errorf("stats of container %s: no network namespace: %w", containerID, errdefs.ErrNotFound)
	}
	// Outside the lock: a namespace released meanwhile fails the open,
	// or yields the counters of its last moment.
	nsf, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("stats of container %s: %w", containerID, err)
	}
	defer nsf.Close()
	h, err := netlink.NewHandleAt(vnetns.NsHandle(int(nsf.Fd())), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("stats of container %s: netlink in netns: %w", containerID, err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("stats of container %s: %w", containerID, err)
	}
	out := map[string]LinkStats{}
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 || a.Statistics == nil {
			continue
		}
		s := a.Statistics
		out[a.Name] = LinkStats{RxBytes: s.RxBytes, RxPackets: s.RxPackets, RxErrors: s.RxErrors, RxDropped: s.RxDropped,
			TxBytes: s.TxBytes, TxPackets: s.TxPackets, TxErrors: s.TxErrors, TxDropped: s.TxDropped}
	}
	return out, nil
}
