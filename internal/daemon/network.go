package daemon

// The Engine's networking: a network.Manager per Engine, the network API
// (create, ls, inspect, rm, prune, connect, disconnect) in docker's shapes,
// and the two calls the container lifecycle makes: networkUp before a
// container's process starts and networkDown when it has stopped.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	containertypes "github.com/moby/moby/api/types/container"
	evtypes "github.com/moby/moby/api/types/events"
	networktypes "github.com/moby/moby/api/types/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	bnet "github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/network/portmap"
)

// engineNets holds each Engine's network manager (a side table, like
// engineCtrs, so that Engine's own file need not change).
var engineNets sync.Map // *Engine → *bnet.Manager

// NetworkConfig is how the Engine makes networks.
type NetworkConfig struct {
	// ExecRoot is the run-time state directory (/run/berth): namespaces
	// under <exec-root>/netns, endpoint records and per-container
	// hosts/resolv.conf under <exec-root>/network.
	ExecRoot string
	// DefaultBridge is the default network's device ("berth0");
	// DefaultSubnet its subnet (--bip; 172.30.0.0/16 or a free pool).
	DefaultBridge string
	DefaultSubnet netip.Prefix
	// AddressPools are the subnets for networks made without one
	// (--default-address-pool, cut into subnets); docker's when empty.
	AddressPools []netip.Prefix
	// Table is the nftables table ("berth"); tests give their own.
	Table string
}

var errNoNetworks = fmt.Errorf("networking is not initialised on this engine: %w", errdefs.ErrUnavailable)

// InitNetworks opens the networks under <root>/network, makes the default
// network, and removes what belongs to containers that no longer run (after
// a daemon crash). Call it after InitContainers, before any container
// starts.
func (e *Engine) InitNetworks(ctx context.Context, cfg NetworkConfig) error {
	if cfg.ExecRoot == "" {
		return fmt.Errorf("init networks: no exec root: %w", errdefs.ErrInvalidArgument)
	}
	m, err := bnet.New(ctx, bnet.Config{Root: filepath.Join(e.root, "network"), ExecRoot: cfg.ExecRoot,
		DefaultBridge: cfg.DefaultBridge, DefaultSubnet: cfg.DefaultSubnet, AddressPools: cfg.AddressPools, Table: cfg.Table})
	if err != nil {
		return fmt.Errorf("init networks: %w", err)
	}
	if _, loaded := engineNets.LoadOrStore(e, m); loaded {
		m.Close()
		return fmt.Errorf("init networks: already initialised: %w", errdefs.ErrConflict)
	}
	if _, err := m.Cleanup(ctx, e.containerRuns); err != nil {
		log.From(ctx).Warn("networks: cleanup after restart; some veths, namespaces or rules may stay", log.KeyErr, err)
	}
	return nil
}

// ShutdownNetworks stops the network manager's goroutines (DNS servers,
// namespace pool). While any container is attached, networks and
// endpoints stay as they are, for the containers that keep running; with
// none, the bridges and rules leave the kernel too (the networks stay on
// disk and InitNetworks brings them back), so a stopped berth leaves the
// host's links and nftables as it found them.
func (e *Engine) ShutdownNetworks(ctx context.Context) {
	v, ok := engineNets.LoadAndDelete(e)
	if !ok {
		return
	}
	if _, err := v.(*bnet.Manager).Down(ctx); err != nil {
		log.From(ctx).Warn("networks: shutdown; a bridge or the nftables table may stay until the next start", log.KeyErr, err)
	}
}

// TeardownNetworks removes every network, endpoint and rule the engine
// made (tests, and a host being cleaned of berth).
func (e *Engine) TeardownNetworks(ctx context.Context) error {
	v, ok := engineNets.LoadAndDelete(e)
	if !ok {
		return nil
	}
	return v.(*bnet.Manager).Teardown(ctx)
}

func (e *Engine) netManager() (*bnet.Manager, error) {
	v, ok := engineNets.Load(e)
	if !ok {
		return nil, errNoNetworks
	}
	return v.(*bnet.Manager), nil
}

// containerRuns says whether a container's process runs (or is paused or
// about to restart): its network must stay.
func (e *Engine) containerRuns(id string) bool {
	c, err := e.ctrs()
	if err != nil {
		return false
	}
	ct, err := c.store.Get(id)
	if err != nil {
		return false
	}
	r := ct.Snapshot()
	return r.State.IsRunning() || r.State.Status == container.Restarting
}

// bridgeMode reports whether a network mode means a network of ours, and
// which: "", "default" and "bridge" are the default network.
func bridgeMode(mode containertypes.NetworkMode) (string, bool) {
	m := string(mode)
	switch {
	case m == "" || m == "default" || m == bnet.DefaultNetwork:
		return bnet.DefaultNetwork, true
	case m == "none" || m == "host" || strings.HasPrefix(m, "container:"):
		return "", false
	}
	return m, true
}

// ContainerNetwork is what the runtime spec needs from networkUp.
type ContainerNetwork struct {
	// NetnsPath goes into the spec's network namespace path; "" when the
	// container's mode is none, host or container:<x> (not ours).
	NetnsPath string
	// The files to bind-mount at /etc/hosts, /etc/hostname and
	// /etc/resolv.conf (empty when NetnsPath is).
	HostsPath, HostnamePath, ResolvConfPath string
	// Env is what the container's links add to its environment.
	Env []string
}

// detachedKey in a record's Endpoints says that the network of its mode
// was disconnected (docker's container that is on no network, or only on
// others, until connected to it again). A network name cannot start with
// "/", so the key is no network's.
const detachedKey = "/detached"

// attachOrder lists the networks a container attaches to at start: the
// network of its mode unless it was disconnected, then those it was
// connected to or created with.
func attachOrder(r *container.Record, primary string) []string {
	var order []string
	if _, detached := r.Endpoints[detachedKey]; !detached {
		order = append(order, primary)
	}
	for name := range r.Endpoints {
		if n, _ := bridgeMode(containertypes.NetworkMode(name)); name != detachedKey && n != primary {
			order = append(order, name)
		}
	}
	return order
}

// networkUp gives a container whose mode is a bridge network its
// namespace and endpoints: the primary network from HostConfig.NetworkMode
// with its ports (PortBindings, and PublishAllPorts over ExposedPorts),
// then any further networks of endpoints (docker's
// NetworkingConfig.EndpointsConfig; aliases and --ip from there too). On
// error nothing is left. networkDown undoes it.
func (e *Engine) networkUp(ctx context.Context, r *container.Record, endpoints map[string]*networktypes.EndpointSettings) (ContainerNetwork, error) {
	primary, ours := bridgeMode(r.HostConfig.NetworkMode)
	if !ours {
		return ContainerNetwork{}, nil
	}
	m, err := e.netManager()
	if err != nil {
		return ContainerNetwork{}, err
	}
	ports, err := portBindings(r)
	if err != nil {
		return ContainerNetwork{}, err
	}
	order := attachOrder(r, primary)
	links, linkEnv, err := e.startLinks(r, m, slices.Contains(order, bnet.DefaultNetwork))
	if err != nil {
		return ContainerNetwork{}, err
	}
	newNetns := m.NewNetns
	if len(order) == 0 {
		newNetns = m.NewNetnsAlone
	}
	path, err := newNetns(ctx, r.ID)
	if err != nil {
		return ContainerNetwork{}, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = m.Release(context.WithoutCancel(ctx), r.ID)
		}
	}()
	h := r.HostConfig
	base := bnet.AttachOptions{ContainerID: r.ID, Name: r.Name, DNSSearch: h.DNSSearch, DNSOptions: h.DNSOptions, Links: links}
	if r.Config != nil {
		base.Hostname, base.Domainname = r.Config.Hostname, r.Config.Domainname
	}
	for _, a := range h.DNS {
		base.DNS = append(base.DNS, a.String())
	}
	for _, x := range h.ExtraHosts {
		// host-gateway is the default bridge's address, as docker's
		if name, ok := strings.CutSuffix(x, ":host-gateway"); ok {
			if info, err := m.Inspect(bnet.DefaultNetwork); err == nil && len(info.Subnets) > 0 {
				x = name + ":" + info.Subnets[0].Gateway.String()
			}
		}
		base.ExtraHosts = append(base.ExtraHosts, x)
	}
	var res bnet.AttachResult
	if len(order) == 0 {
		if res, err = m.Files(ctx, base); err != nil {
			return ContainerNetwork{}, err
		}
	}
	for i, name := range order {
		opts := base
		opts.Network = name
		if i == 0 {
			opts.Ports = ports
		}
		es := endpoints[name]
		if es == nil && name == primary {
			es = endpoints[string(r.HostConfig.NetworkMode)]
		}
		if es != nil && name != bnet.DefaultNetwork { // the default network's are HostConfig's
			ls, err := e.endpointLinks(name, es.Links)
			if err != nil {
				return ContainerNetwork{}, err
			}
			opts.Links = append(slices.Clone(base.Links), ls...)
		}
		if es != nil {
			opts.Aliases = es.Aliases
			if es.IPAMConfig != nil {
				opts.IPv4, opts.IPv6 = es.IPAMConfig.IPv4Address, es.IPAMConfig.IPv6Address
			}
			if len(es.MacAddress) > 0 {
				opts.MAC = net.HardwareAddr(es.MacAddress)
			}
		}
		got, err := m.Attach(ctx, opts)
		if err != nil {
			return ContainerNetwork{}, err
		}
		e.emitNetwork(ctx, evtypes.ActionConnect, got.Endpoint.NetworkID, got.Endpoint.NetworkName, r.ID)
		if i == 0 {
			res = got
		}
	}
	ok = true
	return ContainerNetwork{NetnsPath: path, HostsPath: res.HostsPath, HostnamePath: res.HostnamePath, ResolvConfPath: res.ResolvConfPath, Env: linkEnv}, nil
}

// prepareNetwork is networkUp fitted to a built spec: the spec's network
// namespace joins ours and /etc/hosts, /etc/hostname and /etc/resolv.conf
// are bind-mounted from our files. For none, host and container:<x> it
// changes nothing. The returned undo (never nil) releases what was made;
// call it when the start fails.
func (e *Engine) prepareNetwork(ctx context.Context, r *container.Record, spec *specs.Spec, endpoints map[string]*networktypes.EndpointSettings) (func(), error) {
	cn, err := e.networkUp(ctx, r, endpoints)
	if err != nil || cn.NetnsPath == "" {
		return func() {}, err
	}
	undo := func() { _ = e.networkDown(context.WithoutCancel(ctx), r.ID) }
	if len(cn.Env) > 0 {
		if spec.Process == nil {
			spec.Process = &specs.Process{}
		}
		spec.Process.Env = addEnv(spec.Process.Env, cn.Env)
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	found := false
	for i := range spec.Linux.Namespaces {
		if spec.Linux.Namespaces[i].Type == specs.NetworkNamespace {
			spec.Linux.Namespaces[i].Path, found = cn.NetnsPath, true
		}
	}
	if !found {
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: cn.NetnsPath})
	}
	for dst, src := range map[string]string{"/etc/hosts": cn.HostsPath, "/etc/hostname": cn.HostnamePath, "/etc/resolv.conf": cn.ResolvConfPath} {
		replaced := false
		for i := range spec.Mounts {
			if spec.Mounts[i].Destination == dst {
				spec.Mounts[i].Source, replaced = src, true
			}
		}
		if !replaced {
			spec.Mounts = append(spec.Mounts, specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rprivate"}})
		}
	}
	return undo, nil
}

// networkDown removes a container's endpoints, namespace and files; for a
// container without a network of ours it does nothing.
func (e *Engine) networkDown(ctx context.Context, id string) error {
	m, err := e.netManager()
	if err != nil {
		return nil
	}
	eps := m.Endpoints(id)
	if err := m.Release(ctx, id); err != nil {
		return err
	}
	for _, ep := range eps {
		e.emitNetwork(ctx, evtypes.ActionDisconnect, ep.NetworkID, ep.NetworkName, id)
	}
	return nil
}

// portBindings turns -p and -P into the manager's bindings.
func portBindings(r *container.Record) ([]portmap.Binding, error) {
	h := r.HostConfig
	var out []portmap.Binding
	seen := map[networktypes.Port]bool{}
	for p, bs := range h.PortBindings {
		seen[p] = true
		for _, b := range bs {
			spec := b.HostPort + ":" + p.String()
			if b.HostIP.IsValid() {
				ip := b.HostIP.String()
				if b.HostIP.Is6() {
					ip = "[" + ip + "]"
				}
				spec = ip + ":" + spec
			}
			parsed, err := portmap.Parse(spec)
			if err != nil {
				return nil, err
			}
			out = append(out, parsed...)
		}
		if len(bs) == 0 {
			parsed, err := portmap.Parse(p.String())
			if err != nil {
				return nil, err
			}
			out = append(out, parsed...)
		}
	}
	if h.PublishAllPorts && r.Config != nil {
		for p := range r.Config.ExposedPorts {
			if !seen[p] {
				out = append(out, portmap.Binding{ContainerPort: p.Num(), Proto: string(p.Proto())})
			}
		}
	}
	return out, nil
}

// networkSettings is the Networks and Ports parts of container inspect;
// ok is false when the container has no endpoint of ours.
func (e *Engine) networkSettings(id string) (nets map[string]*networktypes.EndpointSettings, ports networktypes.PortMap, ok bool) {
	m, err := e.netManager()
	if err != nil {
		return nil, nil, false
	}
	eps := m.Endpoints(id)
	if len(eps) == 0 {
		return nil, nil, false
	}
	nets = map[string]*networktypes.EndpointSettings{}
	ports = networktypes.PortMap{}
	for _, ep := range eps {
		es := &networktypes.EndpointSettings{NetworkID: ep.NetworkID, EndpointID: ep.ID, Aliases: ep.Aliases,
			Gateway: ep.Gateway, IPv6Gateway: ep.Gateway6, DNSNames: dnsNames(ep)}
		if hw, err := net.ParseMAC(ep.MAC); err == nil {
			es.MacAddress = networktypes.HardwareAddr(hw)
		}
		if ep.IPv4.IsValid() {
			es.IPAddress, es.IPPrefixLen = ep.IPv4.Addr(), ep.IPv4.Bits()
		}
		if ep.IPv6.IsValid() {
			es.GlobalIPv6Address, es.GlobalIPv6PrefixLen = ep.IPv6.Addr(), ep.IPv6.Bits()
		}
		nets[ep.NetworkName] = es
		for _, b := range ep.Ports {
			p, ok := networktypes.PortFrom(b.ContainerPort, networktypes.IPProtocol(b.Proto))
			if !ok {
				continue
			}
			hostIP := b.HostIP
			if !hostIP.IsValid() {
				hostIP = netip.IPv4Unspecified()
			}
			ports[p] = append(ports[p], networktypes.PortBinding{HostIP: hostIP, HostPort: strconv.Itoa(int(b.HostPort))})
		}
	}
	return nets, ports, true
}

func dnsNames(ep bnet.Endpoint) []string {
	if ep.NetworkName == bnet.DefaultNetwork {
		return nil
	}
	out := []string{ep.Name, ep.ContainerID[:min(12, len(ep.ContainerID))]}
	return append(out, ep.Aliases...)
}

// emitNetwork publishes a network event as docker does: the actor is the
// network's ID, with its name and type, and the container for connect and
// disconnect.
func (e *Engine) emitNetwork(ctx context.Context, action evtypes.Action, id, name, container string) {
	attrs := map[string]string{"name": name, "type": "bridge"}
	if container != "" {
		attrs["container"] = container
	}
	e.Emit(ctx, evtypes.NetworkEventType, action, id, attrs)
}

// pseudoNetworks are docker's predefined networks that are modes, not
// bridges: listed and inspected, never created or removed.
var pseudoNetworks = map[string]string{"host": "host", "none": "null"}

// pseudoConnect refuses connect and disconnect of docker's host and none,
// which are modes chosen at create, in docker's words.
func pseudoConnect(ref string) error {
	for name := range pseudoNetworks {
		if ref == name || ref == pseudoID(name) {
			return fmt.Errorf("container cannot be disconnected from %s network or connected to %s network: %w", name, name, errdefs.ErrForbidden)
		}
	}
	return nil
}

func pseudoID(name string) string {
	h := sha256.Sum256([]byte("berth pseudo network " + name))
	return hex.EncodeToString(h[:])
}

func summary(n bnet.Network) networktypes.Network {
	out := networktypes.Network{Name: n.Name, ID: n.ID, Scope: "local", Driver: n.Driver, EnableIPv4: true,
		EnableIPv6: n.IPv6, Internal: n.Internal, Labels: n.Labels, Options: map[string]string{},
		IPAM: networktypes.IPAM{Driver: "default", Options: map[string]string{}}}
	out.Created = n.Created
	for k, v := range n.Options {
		out.Options[k] = v
	}
	// Like docker, a user network's Options are what its creator gave;
	// only the default bridge lists the daemon's own. docker-compose
	// compares them with its file and recreates a network that differs.
	if n.Default {
		out.Options[bnet.OptBridgeName] = n.Bridge
		if n.MTU > 0 {
			out.Options[bnet.OptMTU] = strconv.Itoa(n.MTU)
		}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	for _, s := range n.Subnets {
		out.IPAM.Config = append(out.IPAM.Config, networktypes.IPAMConfig{Subnet: s.Subnet, Gateway: s.Gateway, IPRange: s.IPRange})
	}
	return out
}

// NetworkList is `network ls`: the bridge networks and docker's host and
// none, filtered by driver, id (prefix), label, name (substring), scope,
// type (custom or builtin) and dangling (no containers).
func (e *Engine) NetworkList(ctx context.Context, f Filters) ([]networktypes.Summary, error) {
	m, err := e.netManager()
	if err != nil {
		return nil, err
	}
	if err := f.check("driver", "id", "label", "name", "scope", "type", "dangling"); err != nil {
		return nil, err
	}
	dangling, danglingSet, err := f.bool("dangling")
	if err != nil {
		return nil, err
	}
	for _, t := range f["type"] {
		if t != "custom" && t != "builtin" {
			return nil, fmt.Errorf("invalid filter: 'type'='%s': %w", t, errdefs.ErrInvalidArgument)
		}
	}
	var all []networktypes.Summary
	builtin := map[string]bool{"host": true, "none": true, bnet.DefaultNetwork: true}
	endpoints := map[string]int{}
	for _, n := range m.Networks() {
		all = append(all, networktypes.Summary{Network: summary(n)})
		if info, err := m.Inspect(n.ID); err == nil {
			endpoints[n.ID] = len(info.Endpoints)
		}
	}
	for _, name := range []string{"host", "none"} {
		all = append(all, networktypes.Summary{Network: networktypes.Network{Name: name, ID: pseudoID(name), Scope: "local",
			Driver: pseudoNetworks[name], Options: map[string]string{}, Labels: map[string]string{}}})
	}
	var out []networktypes.Summary
	for _, n := range all {
		typ := "custom"
		if builtin[n.Name] {
			typ = "builtin"
		}
		if !matchAny(f["driver"], func(v string) bool { return v == n.Driver }) ||
			!matchAny(f["id"], func(v string) bool { return strings.HasPrefix(n.ID, v) }) ||
			!matchAny(f["name"], func(v string) bool { return strings.Contains(n.Name, v) }) ||
			!matchAny(f["scope"], func(v string) bool { return v == n.Scope }) ||
			!matchAny(f["type"], func(v string) bool { return v == typ }) ||
			!f.labels("label", n.Labels) ||
			(danglingSet && dangling != (endpoints[n.ID] == 0 && typ == "custom")) {
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

// NetworkInspect is `network inspect`.
func (e *Engine) NetworkInspect(ctx context.Context, ref string) (networktypes.Inspect, error) {
	m, err := e.netManager()
	if err != nil {
		return networktypes.Inspect{}, err
	}
	for name, driver := range pseudoNetworks {
		if ref == name || ref == pseudoID(name) {
			return networktypes.Inspect{Network: networktypes.Network{Name: name, ID: pseudoID(name), Scope: "local", Driver: driver,
				Options: map[string]string{}, Labels: map[string]string{}}, Containers: map[string]networktypes.EndpointResource{}}, nil
		}
	}
	info, err := m.Inspect(ref)
	if err != nil {
		return networktypes.Inspect{}, fmt.Errorf("network %s not found: %w", ref, errdefs.ErrNotFound)
	}
	out := networktypes.Inspect{Network: summary(info.Network), Containers: map[string]networktypes.EndpointResource{}}
	for _, ep := range info.Endpoints {
		res := networktypes.EndpointResource{Name: ep.Name, EndpointID: ep.ID, IPv4Address: ep.IPv4, IPv6Address: ep.IPv6}
		if hw, err := net.ParseMAC(ep.MAC); err == nil {
			res.MacAddress = networktypes.HardwareAddr(hw)
		}
		out.Containers[ep.ContainerID] = res
	}
	return out, nil
}

// NetworkCreate is `network create`.
func (e *Engine) NetworkCreate(ctx context.Context, req networktypes.CreateRequest) (networktypes.CreateResponse, error) {
	m, err := e.netManager()
	if err != nil {
		return networktypes.CreateResponse{}, err
	}
	opts := bnet.CreateOptions{Name: req.Name, Driver: req.Driver, Internal: req.Internal, Labels: req.Labels, Options: req.Options}
	if req.EnableIPv6 != nil {
		opts.IPv6 = *req.EnableIPv6
	}
	if req.EnableIPv4 != nil && !*req.EnableIPv4 {
		return networktypes.CreateResponse{}, fmt.Errorf("IPv6-only networks are not supported: %w", errdefs.ErrNotImplemented)
	}
	if req.ConfigOnly || req.ConfigFrom != nil || req.Ingress || (req.Scope != "" && req.Scope != "local") {
		return networktypes.CreateResponse{}, fmt.Errorf("config-only, swarm and ingress networks are not supported: %w", errdefs.ErrNotImplemented)
	}
	if req.IPAM != nil {
		if d := req.IPAM.Driver; d != "" && d != "default" {
			return networktypes.CreateResponse{}, fmt.Errorf("IPAM driver %q: only default: %w", d, errdefs.ErrNotImplemented)
		}
		for _, c := range req.IPAM.Config {
			switch {
			case c.Subnet.Addr().Is4() && !opts.Subnet.IsValid():
				opts.Subnet, opts.Gateway, opts.IPRange = c.Subnet, c.Gateway, c.IPRange
			case c.Subnet.Addr().Is6() && !opts.Subnet6.IsValid():
				opts.Subnet6, opts.Gateway6, opts.IPv6 = c.Subnet, c.Gateway, true
			default:
				return networktypes.CreateResponse{}, fmt.Errorf("IPAM config %v: one IPv4 and one IPv6 subnet at most: %w", c.Subnet, errdefs.ErrInvalidArgument)
			}
		}
	}
	n, err := m.CreateNetwork(ctx, opts)
	if err != nil {
		return networktypes.CreateResponse{}, err
	}
	e.emitNetwork(ctx, evtypes.ActionCreate, n.ID, n.Name, "")
	return networktypes.CreateResponse{ID: n.ID}, nil
}

// NetworkRemove is `network rm`.
func (e *Engine) NetworkRemove(ctx context.Context, ref string) error {
	m, err := e.netManager()
	if err != nil {
		return err
	}
	if _, ok := pseudoNetworks[ref]; ok {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", ref, errdefs.ErrForbidden)
	}
	info, err := m.Inspect(ref)
	if err != nil {
		return fmt.Errorf("network %s not found: %w", ref, errdefs.ErrNotFound)
	}
	if err := m.RemoveNetwork(ctx, info.ID); err != nil {
		return err
	}
	e.emitNetwork(ctx, evtypes.ActionDestroy, info.ID, info.Name, "")
	return nil
}

// NetworksPrune is `network prune`: every user network without
// endpoints goes, filtered by label, label! and until. It returns the
// names removed.
func (e *Engine) NetworksPrune(ctx context.Context, f Filters) ([]string, error) {
	m, err := e.netManager()
	if err != nil {
		return nil, err
	}
	if err := f.check("label", "label!", "until"); err != nil {
		return nil, err
	}
	var until time.Time
	for _, v := range f["until"] {
		d, err := time.ParseDuration(v)
		if err == nil {
			until = time.Now().Add(-d)
			continue
		}
		if until, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return nil, fmt.Errorf("invalid filter 'until=%s': %w", v, errdefs.ErrInvalidArgument)
		}
	}
	var removed []string
	for _, n := range m.Networks() {
		if n.Default || !f.labels("label", n.Labels) {
			continue
		}
		if len(f["label!"]) > 0 && f.labels("label!", n.Labels) {
			continue
		}
		if !until.IsZero() && !n.Created.Before(until) {
			continue
		}
		if info, err := m.Inspect(n.ID); err != nil || len(info.Endpoints) > 0 {
			continue
		}
		if err := m.RemoveNetwork(ctx, n.ID); err == nil {
			removed = append(removed, n.Name)
			e.emitNetwork(ctx, evtypes.ActionDestroy, n.ID, n.Name, "")
		}
	}
	return removed, nil
}

// connectTarget resolves what connect and disconnect work on: the manager,
// a network of ours (not host or none), and the container.
func (e *Engine) connectTarget(netRef, ctrRef string) (*bnet.Manager, bnet.NetworkInfo, *container.Container, error) {
	m, err := e.netManager()
	if err != nil {
		return nil, bnet.NetworkInfo{}, nil, err
	}
	if err := pseudoConnect(netRef); err != nil {
		return nil, bnet.NetworkInfo{}, nil, err
	}
	info, err := m.Inspect(netRef)
	if err != nil {
		return nil, bnet.NetworkInfo{}, nil, fmt.Errorf("network %s not found: %w", netRef, errdefs.ErrNotFound)
	}
	ct, _, err := e.lookup(ctrRef)
	if err != nil {
		return nil, bnet.NetworkInfo{}, nil, err
	}
	return m, info, ct, nil
}

// NetworkConnect is `network connect`: a running container is attached
// at once; either way the connection is kept in the container's record
// (its Endpoints), so that every later start attaches it too.
func (e *Engine) NetworkConnect(ctx context.Context, netRef string, req networktypes.ConnectRequest) error {
	m, info, ct, err := e.connectTarget(netRef, req.Container)
	if err != nil {
		return err
	}
	// The container's lock, then the manager's: the order start uses.
	ct.Lock()
	defer ct.Unlock()
	r := ct.R()
	primary, ours := bridgeMode(r.HostConfig.NetworkMode)
	if !ours {
		return fmt.Errorf("container sharing network namespace with another container or host cannot be connected to any other network: %w", errdefs.ErrForbidden)
	}
	isPrimary := primary == info.Name || primary == info.ID
	_, detached := r.Endpoints[detachedKey]
	if _, dup := r.Endpoints[info.Name]; dup || isPrimary && !detached {
		return fmt.Errorf("endpoint with name %s already exists in network %s: %w", r.Name, info.Name, errdefs.ErrConflict)
	}
	es := req.EndpointConfig
	if es == nil {
		es = &networktypes.EndpointSettings{}
	}
	links, err := e.endpointLinks(info.Name, es.Links)
	if err != nil {
		return err
	}
	if r.State.IsRunning() {
		opts := bnet.AttachOptions{ContainerID: r.ID, Name: r.Name, Network: info.ID, Aliases: es.Aliases, Links: links}
		if es.IPAMConfig != nil {
			opts.IPv4, opts.IPv6 = es.IPAMConfig.IPv4Address, es.IPAMConfig.IPv6Address
		}
		if len(es.MacAddress) > 0 {
			opts.MAC = net.HardwareAddr(es.MacAddress)
		}
		if isPrimary && !slices.ContainsFunc(m.Endpoints(r.ID), func(ep bnet.Endpoint) bool { return len(ep.Ports) > 0 }) {
			// back on the mode's network, its published ports come back
			// with it, as at start
			if opts.Ports, err = portBindings(r); err != nil {
				return err
			}
		}
		if _, err := m.Attach(ctx, opts); err != nil {
			return err
		}
	}
	if r.Endpoints == nil {
		r.Endpoints = map[string]*networktypes.EndpointSettings{}
	}
	// the mode's network under the mode's own words, which start looks
	// its settings up by (the mode may name the network by ID)
	key := info.Name
	if isPrimary {
		key = primary
	}
	old := maps.Clone(r.Endpoints)
	r.Endpoints[key] = es
	if isPrimary {
		delete(r.Endpoints, detachedKey)
	}
	if err := ct.Save(); err != nil {
		if r.State.IsRunning() {
			_ = m.Detach(context.WithoutCancel(ctx), r.ID, info.ID)
		}
		r.Endpoints = old
		return err
	}
	e.emitNetwork(ctx, evtypes.ActionConnect, info.ID, info.Name, r.ID)
	return nil
}

// NetworkDisconnect is `network disconnect`, running or not, from any of
// the container's networks, as docker's: a running container is detached
// at once, and the network leaves its record, so that later starts do
// not attach it. Disconnected from the network of its mode too (which
// stays its mode), a container starts on no network at all, with
// loopback only, until connected again.
func (e *Engine) NetworkDisconnect(ctx context.Context, netRef string, req networktypes.DisconnectRequest) error {
	m, info, ct, err := e.connectTarget(netRef, req.Container)
	if err != nil {
		return err
	}
	ct.Lock()
	defer ct.Unlock()
	r := ct.R()
	primary, ours := bridgeMode(r.HostConfig.NetworkMode)
	isPrimary := ours && (primary == info.Name || primary == info.ID)
	_, detached := r.Endpoints[detachedKey]
	_, recorded := r.Endpoints[info.Name]
	if !recorded && !(isPrimary && !detached) {
		return fmt.Errorf("container %s is not connected to network %s: %w", r.Name, info.Name, errdefs.ErrNotFound)
	}
	if r.State.IsRunning() {
		if err := m.Detach(ctx, r.ID, info.ID); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
	}
	old := maps.Clone(r.Endpoints)
	delete(r.Endpoints, info.Name)
	if isPrimary {
		// the create's settings for it go too, as docker's
		delete(r.Endpoints, string(r.HostConfig.NetworkMode))
		delete(r.Endpoints, primary)
		if r.Endpoints == nil {
			r.Endpoints = map[string]*networktypes.EndpointSettings{}
		}
		r.Endpoints[detachedKey] = &networktypes.EndpointSettings{}
	}
	if err := ct.Save(); err != nil {
		r.Endpoints = old
		return err
	}
	e.emitNetwork(ctx, evtypes.ActionDisconnect, info.ID, info.Name, r.ID)
	return nil
}

// recordNetworks is NetworkSettings.Networks of a container with no
// endpoint now (created, or stopped): the network of its mode and those
// it was connected to, each with the network's ID and the configured
// aliases and addresses but no live address, as docker shows them. A
// container:<x> mode has none of its own. Without networking on the
// engine the default mode is shown as none, which is what it gets.
func (e *Engine) recordNetworks(r *container.Record) map[string]*networktypes.EndpointSettings {
	out := map[string]*networktypes.EndpointSettings{}
	mode := string(r.HostConfig.NetworkMode)
	if strings.HasPrefix(mode, "container:") {
		return out
	}
	m, _ := e.netManager()
	names := []string{mode}
	if primary, ours := bridgeMode(r.HostConfig.NetworkMode); ours {
		names = attachOrder(r, primary)
		if m == nil && primary == bnet.DefaultNetwork && len(names) > 0 && names[0] == primary {
			names[0] = "none"
		}
	}
	for _, name := range names {
		es := &networktypes.EndpointSettings{}
		cfg := r.Endpoints[name]
		if cfg == nil && name == names[0] {
			cfg = r.Endpoints[mode]
		}
		if cfg != nil {
			es.Aliases, es.IPAMConfig, es.DriverOpts, es.MacAddress = cfg.Aliases, cfg.IPAMConfig, cfg.DriverOpts, cfg.MacAddress
		}
		key := name
		if _, pseudo := pseudoNetworks[name]; pseudo {
			es.NetworkID = pseudoID(name)
		} else if m != nil {
			if info, err := m.Inspect(name); err == nil {
				es.NetworkID, key = info.ID, info.Name
			}
		}
		out[key] = es
	}
	return out
}
