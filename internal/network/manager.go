package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/network/dns"
	"github.com/berth-dev/berth/internal/network/firewall"
	"github.com/berth-dev/berth/internal/network/netns"
	"github.com/berth-dev/berth/internal/network/portmap"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Config says where the manager keeps its state and how the default
// network looks.
type Config struct {
	Root     string // state and per-container files, e.g. /var/lib/berth/network
	ExecRoot string // the engine's exec-root; namespaces go under ExecRoot/netns

	DefaultBridge string       // device of the default network; "berth0" when empty
	DefaultSubnet netip.Prefix // its subnet; 172.30.0.0/16 (or a free pool) when zero
	NoDefault     bool         // make no default network (tests of user networks)
	// AddressPools are the subnets networks made without --subnet get,
	// in order (docker's default-address-pools, cut with ipam.SplitPool);
	// ipam.DefaultPools when empty.
	AddressPools []netip.Prefix

	Table      string // nftables table (family inet); "berth" when empty
	PoolSize   int    // namespaces made in advance; 4 when zero, none when negative
	ResolvConf string // the host's resolv.conf; /etc/resolv.conf when empty
}

// DefaultNetwork is docker's name of the default network.
const DefaultNetwork = "bridge"

// Manager owns berth's networks and the containers' attachments to them.
// It is safe for concurrent use: mu guards st, servers, ports, dying,
// fwd4 and fwd6, and is
// held across each operation, kernel work included, so operations are
// serialised (they take about a millisecond each).
type Manager struct {
	cfg  Config
	pool *netns.Pool

	mu      sync.Mutex
	st      state
	servers map[string]*dns.Server          // container ID → its DNS server
	ports   map[string]*portmap.Reservation // endpoint ID → reserved host ports
	dying   map[string]bool                 // host veths left to the kernel by Release
	// fwd4, fwd6: berth turned IPv4 or IPv6 forwarding on (forwarding.go)
	fwd4, fwd6 bool
}

// state is what state.json holds.
type state struct {
	Networks   []*Network
	Endpoints  []*Endpoint
	Containers []*Sandbox
}

// Network is one bridge network.
type Network struct {
	ID       string
	Name     string
	Driver   string // "bridge"
	Bridge   string // the bridge device
	Subnets  []Subnet
	IPv6     bool
	Internal bool
	MTU      int               `json:",omitempty"`
	Labels   map[string]string `json:",omitempty"`
	Options  map[string]string `json:",omitempty"`
	Created  time.Time
	Default  bool // the default network: no embedded DNS, as docker's bridge
	// UserSubnet: the subnet was given at create; only then may a
	// container ask for a fixed address (as docker), since a picked
	// subnet may differ on the next host or after a re-create.
	UserSubnet bool `json:",omitempty"`
	// -o com.docker.network.bridge.enable_icc=false and
	// enable_ip_masquerade=false.
	NoICC        bool `json:",omitempty"`
	NoMasquerade bool `json:",omitempty"`
}

// Subnet is one address family of a network.
type Subnet struct {
	Subnet  netip.Prefix
	Gateway netip.Addr
	IPRange netip.Prefix `json:",omitzero"`
}

// Sandbox is a container's networking: its namespace and name resolution.
type Sandbox struct {
	ContainerID string
	Netns       string
	OwnNetns    bool   // made by NewNetns: removed by Release
	PoolVeth    string `json:",omitempty"` // host end of the pooled namespace's eth0, until the first Attach
	Hostname    string
	Domainname  string   `json:",omitempty"`
	DNS         []string `json:",omitempty"`
	DNSSearch   []string `json:",omitempty"`
	DNSOptions  []string `json:",omitempty"`
	ExtraHosts  []string `json:",omitempty"`
	Links       []Link   `json:",omitempty"`
}

// Link is a legacy --link to another container: on the default network
// the linking container's hosts file names the linked one's address by
// alias, hostname and name; on user-defined networks the embedded DNS
// answers the alias for the linking container alone, as docker's.
type Link struct {
	ContainerID string // the linked container
	Name        string // its name
	Alias       string
}

// Endpoint is one container's attachment to one network.
type Endpoint struct {
	ID          string
	ContainerID string
	Name        string   // the container's name, resolved by the embedded DNS
	Aliases     []string `json:",omitempty"`
	NetworkID   string
	NetworkName string
	IfName      string // inside the container: eth0, eth1, ...
	HostVeth    string // the host end, on the bridge
	MAC         string
	IPv4        netip.Prefix      `json:",omitzero"`
	IPv6        netip.Prefix      `json:",omitzero"`
	Gateway     netip.Addr        `json:",omitzero"`
	Gateway6    netip.Addr        `json:",omitzero"`
	Ports       []portmap.Binding `json:",omitempty"`
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// New opens (or makes) the state under cfg.Root, brings the kernel in line
// with it (bridges, the nftables table, host-port reservations, DNS servers
// of containers whose namespaces still exist), makes the default network,
// and starts the namespace pool. It removes nothing: call Cleanup with the
// engine's idea of which containers are alive for that.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Root == "" || cfg.ExecRoot == "" {
		return nil, fmt.Errorf("network: root and exec-root are required: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.DefaultBridge == "" {
		cfg.DefaultBridge = "berth0"
	}
	if cfg.Table == "" {
		cfg.Table = "berth"
	}
	if cfg.PoolSize == 0 {
		cfg.PoolSize = 4
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	for _, d := range []string{cfg.Root, filepath.Join(cfg.ExecRoot, "netns"), filepath.Join(cfg.ExecRoot, "network")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
	}
	m := &Manager{cfg: cfg, servers: map[string]*dns.Server{}, ports: map[string]*portmap.Reservation{}, dying: map[string]bool{}}
	if err := m.load(); err != nil {
		return nil, err
	}
	for _, n := range m.st.Networks {
		if err := ensureBridge(n); err != nil {
			return nil, fmt.Errorf("network %s: %w", n.Name, err)
		}
	}
	if !cfg.NoDefault && m.find(DefaultNetwork) == nil {
		if _, err := m.createLocked(ctx, CreateOptions{Name: DefaultNetwork, Bridge: cfg.DefaultBridge, Subnet: cfg.DefaultSubnet, def: true}); err != nil {
			return nil, err
		}
	}
	if err := m.syncForwarding(ctx); err != nil {
		return nil, err
	}
	// Host ports of live containers: the sockets that held them died with
	// the previous daemon.
	for _, ep := range m.st.Endpoints {
		if len(ep.Ports) == 0 {
			continue
		}
		r, err := portmap.Reserve(ep.Ports)
		if err != nil {
			log.From(ctx).Warn("network: reserve host ports again", log.KeyContainer, ep.ContainerID, log.KeyErr, err)
			continue
		}
		m.ports[ep.ID] = r
		if err := startProxies(r, ep); err != nil {
			log.From(ctx).Warn("network: restart port proxies; IPv6 loopback ports stay unserved", log.KeyContainer, ep.ContainerID, log.KeyErr, err)
		}
	}
	if err := m.applyRules(); err != nil {
		m.closeLocked()
		return nil, err
	}
	for _, sb := range m.st.Containers {
		if netns.IsNetns(sb.Netns) {
			if err := m.startDNS(ctx, sb); err != nil {
				log.From(ctx).Warn("network: restart embedded dns", log.KeyContainer, sb.ContainerID, log.KeyErr, err)
			}
		}
	}
	m.pool = netns.NewPool(ctx, cfg.PoolSize, pooledVeth)
	return m, nil
}

// Close stops the manager's goroutines and sockets but leaves networks,
// namespaces and rules in place: containers keep their networking while the
// daemon is down. Host ports stay published by the rules but are not
// reserved against other programs until New runs again.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closeLocked()
}

func (m *Manager) closeLocked() {
	if m.pool != nil {
		for _, veth := range m.pool.Close() {
			m.dying[veth] = true // destroyed with its namespace
		}
	}
	for id, s := range m.servers {
		s.Close()
		delete(m.servers, id)
	}
	for id, r := range m.ports {
		r.Close()
		delete(m.ports, id)
	}
}

// Teardown removes everything the manager made: containers' attachments,
// namespaces and files, every network's bridge, and the nftables table;
// then closes the manager. For tests and `berth system reset`.
func (m *Manager) Teardown(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, sb := range append([]*Sandbox(nil), m.st.Containers...) {
		errs = append(errs, m.releaseLocked(ctx, sb.ContainerID))
	}
	for _, ep := range append([]*Endpoint(nil), m.st.Endpoints...) {
		errs = append(errs, m.detachLocked(ctx, ep, false, false))
	}
	for _, n := range m.st.Networks {
		errs = append(errs, deleteBridge(n.Bridge))
	}
	m.st.Networks = nil
	errs = append(errs, firewall.Delete(m.cfg.Table), m.forwardingOff(), m.save(), m.saveNetworks())
	m.closeLocked()
	errs = append(errs, m.waitDyingLocked())
	return errors.Join(errs...)
}

// Down is Close for a daemon that stops with no container attached: it
// also takes the networks out of the kernel (bridges, the nftables table)
// but keeps them on disk, so the host is left as it was before berth ran
// and New brings them back. With any endpoint or namespace left (a
// container that keeps running while the daemon is down) it is Close and
// removes nothing. It reports whether the networks went down.
func (m *Manager) Down(ctx context.Context) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closeLocked()
	if len(m.st.Endpoints) > 0 || len(m.st.Containers) > 0 {
		return false, nil
	}
	var errs []error
	for _, n := range m.st.Networks {
		errs = append(errs, deleteBridge(n.Bridge))
	}
	errs = append(errs, firewall.Delete(m.cfg.Table), m.waitDyingLocked())
	if m.fwd4 || m.fwd6 { // New turns it on again
		errs = append(errs, m.forwardingOff(), m.saveNetworks())
	}
	if err := errors.Join(errs...); err != nil {
		return false, fmt.Errorf("networks down: %w", err)
	}
	log.From(ctx).Debug("network: bridges and rules removed; networks kept on disk", "networks", len(m.st.Networks))
	return true, nil
}

// waitDyingLocked waits for the veths of released namespaces, which the
// kernel destroys in the background, so that "removed" holds on return;
// a pair whose namespace something else still holds (a copy of its bind
// mount in another mount namespace, a socket) is deleted by name.
func (m *Manager) waitDyingLocked() error {
	var errs []error
	deadline := time.Now().Add(3 * time.Second)
	for name := range m.dying {
		for {
			l, err := netlink.LinkByName(name)
			if err != nil {
				break
			}
			if time.Now().After(deadline) {
				if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
					errs = append(errs, fmt.Errorf("delete veth %s: %w", name, err))
				}
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		delete(m.dying, name)
	}
	return errors.Join(errs...)
}

// networksPath holds the networks: they outlive reboots, so it lives
// under Root. runtimePath holds the containers' namespaces and endpoints,
// which die with the machine: under ExecRoot (a tmpfs on most hosts, where
// a write costs microseconds instead of the disk's milliseconds), so it is
// empty after a reboot, as the kernel is.
func (m *Manager) networksPath() string { return filepath.Join(m.cfg.Root, "networks.json") }
func (m *Manager) runtimePath() string {
	return filepath.Join(m.cfg.ExecRoot, "network", "endpoints.json")
}

func (m *Manager) load() error {
	var nets networksFile
	var rt struct {
		Endpoints  []*Endpoint
		Containers []*Sandbox
	}
	for _, f := range []struct {
		path string
		v    any
	}{{m.networksPath(), &nets}, {m.runtimePath(), &rt}} {
		b, err := os.ReadFile(f.path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("network state: %w", err)
		}
		if err := json.Unmarshal(b, f.v); err != nil {
			return fmt.Errorf("network state %s: %w", f.path, err)
		}
	}
	m.st = state{Networks: nets.Networks, Endpoints: rt.Endpoints, Containers: rt.Containers}
	m.fwd4, m.fwd6 = nets.IPv4Forwarding, nets.IPv6Forwarding
	return nil
}

// save writes the runtime record (endpoints, namespaces); saveNetworks the
// networks. Each is atomic: a temp file, then rename. Neither fsyncs: the
// record must survive a daemon crash (the page cache does); after a
// machine crash the endpoints it describes are gone anyway and Cleanup
// reconciles, and an fsync would cost more than the whole attach budget.
func (m *Manager) save() error {
	return writeJSON(m.runtimePath(), struct {
		Endpoints  []*Endpoint
		Containers []*Sandbox
	}{m.st.Endpoints, m.st.Containers})
}

// networksFile is networks.json.
type networksFile struct {
	Networks []*Network
	// IPv4Forwarding, IPv6Forwarding: berth turned net.ipv4.ip_forward
	// or net.ipv6.conf.all.forwarding on and turns it off again
	// (forwarding.go).
	IPv4Forwarding bool `json:",omitempty"`
	IPv6Forwarding bool `json:",omitempty"`
}

func (m *Manager) saveNetworks() error {
	return writeJSON(m.networksPath(), networksFile{Networks: m.st.Networks, IPv4Forwarding: m.fwd4, IPv6Forwarding: m.fwd6})
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("network state: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("network state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("network state: %w", err)
	}
	return nil
}

// find looks a network up by ID, name, or unique ID prefix.
func (m *Manager) find(ref string) *Network {
	if ref == "" {
		return nil
	}
	for _, n := range m.st.Networks {
		if n.ID == ref || n.Name == ref {
			return n
		}
	}
	var hit *Network
	for _, n := range m.st.Networks {
		if len(ref) < len(n.ID) && n.ID[:len(ref)] == ref {
			if hit != nil {
				return nil
			}
			hit = n
		}
	}
	return hit
}

func (m *Manager) sandbox(id string) *Sandbox {
	for _, sb := range m.st.Containers {
		if sb.ContainerID == id {
			return sb
		}
	}
	return nil
}

func (m *Manager) endpointsOf(containerID string) []*Endpoint {
	var out []*Endpoint
	for _, ep := range m.st.Endpoints {
		if ep.ContainerID == containerID {
			out = append(out, ep)
		}
	}
	return out
}

// applyRules writes the nftables table from the state.
func (m *Manager) applyRules() error {
	rs := firewall.Ruleset{IsolateForwarding4: m.fwd4, IsolateForwarding6: m.fwd6}
	byID := map[string]*Network{}
	for _, n := range m.st.Networks {
		byID[n.ID] = n
		b := firewall.Bridge{Name: n.Bridge, Internal: n.Internal, NoICC: n.NoICC, NoMasq: n.NoMasquerade}
		for _, s := range n.Subnets {
			b.Subnets = append(b.Subnets, s.Subnet)
		}
		rs.Bridges = append(rs.Bridges, b)
	}
	for _, ep := range m.st.Endpoints {
		n := byID[ep.NetworkID]
		if n == nil {
			continue
		}
		rs.Ports = append(rs.Ports, portRules(ep, n.Bridge)...)
		if n.NoICC {
			for i := range rs.Bridges {
				if rs.Bridges[i].Name == n.Bridge {
					rs.Bridges[i].Ports = append(rs.Bridges[i].Ports, ep.HostVeth)
				}
			}
		}
	}
	return firewall.Apply(m.cfg.Table, rs)
}

// Config is the manager's configuration with defaults filled in.
func (m *Manager) Config() Config { return m.cfg }

// PoolReady is how many namespaces wait in the pool.
func (m *Manager) PoolReady() int { return m.pool.Ready() }
