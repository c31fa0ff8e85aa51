package network

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/network/dns"
)

func (m *Manager) filesDir(containerID string) string {
	return filepath.Join(m.cfg.ExecRoot, "network", "containers", containerID)
}

type extraHost struct {
	name string
	ip   netip.Addr
}

// parseExtraHosts reads --add-host values, "name:ip" or "name=ip" (an IPv6
// address may be bracketed).
func parseExtraHosts(hosts []string) ([]extraHost, error) {
	var out []extraHost
	for _, h := range hosts {
		name, ip, ok := strings.Cut(h, "=")
		if !ok {
			name, ip, ok = strings.Cut(h, ":")
		}
		a, err := netip.ParseAddr(strings.Trim(ip, "[]"))
		if !ok || name == "" || err != nil {
			return nil, fmt.Errorf("add-host %q: want name:ip: %w", h, errdefs.ErrInvalidArgument)
		}
		out = append(out, extraHost{name, a})
	}
	return out, nil
}

// usesDNS reports whether the container sits on a user-defined network,
// where its resolver is the embedded server.
func (m *Manager) usesDNS(containerID string) bool {
	for _, ep := range m.endpointsOf(containerID) {
		if n := m.find(ep.NetworkID); n != nil && !n.Default {
			return true
		}
	}
	return false
}

// writeFiles (re)writes the container's hosts, hostname and resolv.conf in
// place: the engine bind-mounts them, and a rename would leave the
// container with the old inode.
func (m *Manager) writeFiles(sb *Sandbox) (AttachResult, error) {
	dir := m.filesDir(sb.ContainerID)
	res := AttachResult{
		HostsPath:      filepath.Join(dir, "hosts"),
		HostnamePath:   filepath.Join(dir, "hostname"),
		ResolvConfPath: filepath.Join(dir, "resolv.conf"),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, fmt.Errorf("container files: %w", err)
	}
	var hosts strings.Builder
	hosts.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	extra, _ := parseExtraHosts(sb.ExtraHosts)
	for _, h := range extra {
		fmt.Fprintf(&hosts, "%s\t%s\n", h.ip, h.name)
	}
	names := sb.Hostname
	if sb.Domainname != "" {
		names = sb.Hostname + "." + sb.Domainname + " " + sb.Hostname
	}
	for _, ep := range m.endpointsOf(sb.ContainerID) {
		for _, a := range []netip.Prefix{ep.IPv4, ep.IPv6} {
			if a.IsValid() {
				fmt.Fprintf(&hosts, "%s\t%s\n", a.Addr(), names)
			}
		}
	}
	for _, l := range sb.Links {
		if line := m.linkHost(l); line != "" {
			hosts.WriteString(line)
		}
	}
	hostResolv, _ := os.ReadFile(m.cfg.ResolvConf)
	files := map[string]string{
		res.HostsPath:      hosts.String(),
		res.HostnamePath:   sb.Hostname + "\n",
		res.ResolvConfPath: resolvConf(sb, hostResolv, m.usesDNS(sb.ContainerID)),
	}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return res, fmt.Errorf("container files: %w", err)
		}
	}
	return res, nil
}

// resolvConf is the container's resolv.conf: the embedded server on
// user-defined networks (which forwards to --dns or the host's servers),
// else --dns or the host's servers without loopback ones, which the
// container cannot reach.
func resolvConf(sb *Sandbox, host []byte, embedded bool) string {
	var servers, search, options []string
	for line := range strings.Lines(string(host)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if a, err := netip.ParseAddr(f[1]); err == nil && !a.IsLoopback() {
				servers = append(servers, f[1])
			}
		case "search", "domain":
			search = f[1:]
		case "options":
			options = append(options, f[1:]...)
		}
	}
	if len(sb.DNS) > 0 {
		servers = sb.DNS
	}
	if len(sb.DNSSearch) > 0 {
		search = sb.DNSSearch
	}
	if len(sb.DNSOptions) > 0 {
		options = sb.DNSOptions
	}
	if embedded {
		servers = []string{dns.Address.String()}
		if !slices.ContainsFunc(options, func(o string) bool { return strings.HasPrefix(o, "ndots:") }) {
			options = append([]string{"ndots:0"}, options...)
		}
	} else if len(servers) == 0 {
		// docker's fallback when the host has only loopback resolvers
		servers = []string{"8.8.8.8", "8.8.4.4"}
	}
	var b strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(search) > 0 && !(len(search) == 1 && search[0] == ".") {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.String()
}

// startDNS starts the embedded server in the container's namespace when it
// sits on a user-defined network.
func (m *Manager) startDNS(ctx context.Context, sb *Sandbox) error {
	if !m.usesDNS(sb.ContainerID) || m.servers[sb.ContainerID] != nil {
		return nil
	}
	var upstream []netip.AddrPort
	for _, s := range sb.DNS {
		if a, err := netip.ParseAddr(s); err == nil {
			upstream = append(upstream, netip.AddrPortFrom(a, 53))
		}
	}
	if len(upstream) == 0 {
		host, _ := os.ReadFile(m.cfg.ResolvConf)
		upstream = dns.Upstream(host)
	}
	id := sb.ContainerID
	s, err := dns.Start(ctx, sb.Netns, dns.Names{
		Lookup:  func(name string) ([]netip.Addr, bool) { return m.lookup(id, name) },
		Reverse: func(a netip.Addr) (string, bool) { return m.reverse(id, a) },
	}, upstream)
	if err != nil {
		return err
	}
	m.servers[id] = s
	return nil
}

// lookup resolves name for container id: the names, aliases and IDs of the
// containers on the user-defined networks id shares with them, bare or
// qualified with the network's name (web.mynet), as docker's.
func (m *Manager) lookup(id, name string) ([]netip.Addr, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	nets := map[string]bool{}
	scoped := map[string]string{} // "name.network" → network ID
	for _, ep := range m.endpointsOf(id) {
		if n := m.find(ep.NetworkID); n != nil && !n.Default {
			nets[ep.NetworkID] = true
			if short, ok := strings.CutSuffix(name, "."+strings.ToLower(n.Name)); ok {
				scoped[short] = n.ID
			}
		}
	}
	// a --link alias, for this container alone
	linked := ""
	if sb := m.sandbox(id); sb != nil {
		for _, l := range sb.Links {
			if strings.EqualFold(l.Alias, name) {
				linked = l.ContainerID
			}
		}
	}
	var out []netip.Addr
	found := false
	for _, ep := range m.st.Endpoints {
		if !nets[ep.NetworkID] {
			continue
		}
		// name, or name.network for that network only
		hit := matches(ep, name) || ep.ContainerID == linked
		for short, nid := range scoped {
			hit = hit || (nid == ep.NetworkID && matches(ep, short))
		}
		if !hit {
			continue
		}
		found = true
		for _, a := range []netip.Prefix{ep.IPv4, ep.IPv6} {
			if a.IsValid() && !slices.Contains(out, a.Addr()) {
				out = append(out, a.Addr())
			}
		}
	}
	return out, found
}

func matches(ep *Endpoint, name string) bool {
	if name == "" {
		return false
	}
	if strings.EqualFold(ep.Name, name) || (len(name) >= 12 && strings.HasPrefix(ep.ContainerID, name)) {
		return true
	}
	return slices.ContainsFunc(ep.Aliases, func(a string) bool { return strings.EqualFold(a, name) })
}

// reverse names an address for container id: name.network of the
// container holding it on a user-defined network id is on, as docker's.
func (m *Manager) reverse(id string, a netip.Addr) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	nets := map[string]bool{}
	for _, ep := range m.endpointsOf(id) {
		if n := m.find(ep.NetworkID); n != nil && !n.Default {
			nets[ep.NetworkID] = true
		}
	}
	for _, ep := range m.st.Endpoints {
		if nets[ep.NetworkID] && ep.Name != "" && (ep.IPv4.Addr() == a || ep.IPv6.Addr() == a) {
			return ep.Name + "." + ep.NetworkName, true
		}
	}
	return "", false
}

// linkHost is the hosts line of a --link on the default network: the
// linked container's address there, by alias, hostname and name ("" when
// it has no endpoint there).
func (m *Manager) linkHost(l Link) string {
	for _, ep := range m.endpointsOf(l.ContainerID) {
		if n := m.find(ep.NetworkID); n == nil || !n.Default || !ep.IPv4.IsValid() {
			continue
		}
		names := []string{l.Alias}
		if o := m.sandbox(l.ContainerID); o != nil && o.Hostname != "" {
			names = append(names, o.Hostname)
		}
		names = append(names, l.Name)
		return fmt.Sprintf("%s\t%s\n", ep.IPv4.Addr(), strings.Join(slices.Compact(names), " "))
	}
	return ""
}

// refreshLinkers rewrites the hosts files of the containers linked to
// id, whose address may be new (docker updates them on the linked
// container's restart too).
func (m *Manager) refreshLinkers(ctx context.Context, id string) {
	for _, sb := range m.st.Containers {
		if sb.ContainerID == id || !slices.ContainsFunc(sb.Links, func(l Link) bool { return l.ContainerID == id }) {
			continue
		}
		if _, err := m.writeFiles(sb); err != nil {
			log.From(ctx).Warn("network: rewrite hosts of a linking container", log.KeyContainer, sb.ContainerID, log.KeyErr, err)
		}
	}
}

// Unlink removes a container's --link of alias and rewrites its hosts
// file (`docker rm --link`). An unknown container or alias is not an
// error: the link may be only in the engine's record.
func (m *Manager) Unlink(ctx context.Context, containerID, alias string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb := m.sandbox(containerID)
	if sb == nil {
		return nil
	}
	n := len(sb.Links)
	sb.Links = slices.DeleteFunc(sb.Links, func(l Link) bool { return l.Alias == alias })
	if len(sb.Links) == n {
		return nil
	}
	if err := m.save(); err != nil {
		return err
	}
	_, err := m.writeFiles(sb)
	return err
}
