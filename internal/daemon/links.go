package daemon

// Legacy links (--link name:alias, HostConfig.Links), as docker keeps
// them: checked at create (the linked container exists; no host or
// container: network mode) and stored as "/name:/parent/alias"; at start,
// on the default network, the linked container must run, the linking
// one's /etc/hosts names its address by alias, hostname and name, and its
// environment gets <ALIAS>_PORT_<port>_<PROTO>=proto://ip:port (with
// _ADDR, _PORT, _PROTO), <ALIAS>_PORT for the lowest exposed port,
// <ALIAS>_NAME=/parent/alias and <ALIAS>_ENV_<var> for each variable of
// the linked container's (HOME and PATH aside). On user-defined networks
// a link (HostConfig's, or the endpoint's own: network connect --link,
// where the docker CLI also puts run's --link) is an alias that the
// embedded DNS answers for the linking container alone, and nothing
// more. Docker's port-range variables
// (_START, _END) are not made.
//
// A start holds its container's lock and reads the linked containers'
// records under theirs, so links must not form a cycle (two containers
// of a cycle starting at once would wait for each other): create refuses
// a link that closes one.

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"

	containertypes "github.com/moby/moby/api/types/container"
	networktypes "github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	bnet "github.com/berth-dev/berth/internal/network"
)

// parseLink reads "name", "name:alias" or docker's stored
// "/name:/parent/alias" into the linked container's name and the alias.
func parseLink(s string) (name, alias string, err error) {
	name, alias, ok := strings.Cut(s, ":")
	name = strings.TrimPrefix(name, "/")
	if !ok {
		alias = name
	}
	alias = path.Base("/" + alias)
	if name == "" || alias == "" || alias == "/" || alias == "." {
		return "", "", fmt.Errorf("invalid link %q: want name:alias: %w", s, errdefs.ErrInvalidArgument)
	}
	return name, alias, nil
}

// checkLinks is create's part: every linked container exists (docker:
// "could not get container for x"), the mode allows links, and no link
// closes a cycle; Links are rewritten to docker's "/name:/parent/alias".
func (e *Engine) checkLinks(h *containertypes.HostConfig, parent string) error {
	if len(h.Links) == 0 {
		return nil
	}
	mode := string(h.NetworkMode)
	switch {
	case mode == "host":
		return fmt.Errorf("conflicting options: host type networking can't be used with links. This would result in undefined behavior: %w", errdefs.ErrInvalidArgument)
	case strings.HasPrefix(mode, "container:"):
		return fmt.Errorf("conflicting options: container type network can't be used with links. This would result in undefined behavior: %w", errdefs.ErrInvalidArgument)
	}
	c, err := e.ctrs()
	if err != nil {
		return err
	}
	out := make([]string, 0, len(h.Links))
	for _, l := range h.Links {
		name, alias, err := parseLink(l)
		if err != nil {
			return err
		}
		ct, err := c.store.Get(name)
		if err != nil {
			// not 404, which the docker CLI takes for a missing image
			// and pulls (moby#37676)
			return fmt.Errorf("could not get container for %s: %w", name, errdefs.ErrInvalidArgument)
		}
		r := ct.Snapshot()
		if r.HostConfig != nil && r.HostConfig.NetworkMode == "host" {
			return fmt.Errorf("conflicting options: host type networking can't be used with links. This would result in undefined behavior: %w", errdefs.ErrInvalidArgument)
		}
		if e.linksReach(c, r.Name, parent, map[string]bool{}) {
			return fmt.Errorf("link %s: %s links back to /%s (links must not form a cycle): %w", l, r.Name, parent, errdefs.ErrInvalidArgument)
		}
		out = append(out, "/"+r.Name+":/"+parent+"/"+alias)
	}
	h.Links = out
	return nil
}

// linksReach says whether container name reaches target by its links.
func (e *Engine) linksReach(c *ctrs, name, target string, seen map[string]bool) bool {
	if name == target {
		return true
	}
	if seen[name] {
		return false
	}
	seen[name] = true
	ct, err := c.store.Get(name)
	if err != nil {
		return false
	}
	r := ct.Snapshot()
	if r.HostConfig == nil {
		return false
	}
	for _, l := range r.HostConfig.Links {
		if next, _, err := parseLink(l); err == nil && e.linksReach(c, next, target, seen) {
			return true
		}
	}
	return false
}

// startLinks is start's part, before the container's network comes up:
// the links for the manager and, on the default network, the environment
// they add. onDefault says whether the container attaches to the default
// network.
func (e *Engine) startLinks(r *container.Record, m *bnet.Manager, onDefault bool) ([]bnet.Link, []string, error) {
	if len(r.HostConfig.Links) == 0 {
		return nil, nil, nil
	}
	c, err := e.ctrs()
	if err != nil {
		return nil, nil, err
	}
	var links []bnet.Link
	var env []string
	for _, l := range r.HostConfig.Links {
		name, alias, err := parseLink(l)
		if err != nil {
			return nil, nil, err
		}
		ct, err := c.store.Get(name)
		if err != nil {
			return nil, nil, fmt.Errorf("could not get container for %s: %w", name, errdefs.ErrNotFound)
		}
		if ct.ID() == r.ID {
			return nil, nil, fmt.Errorf("link %s: a container cannot link to itself: %w", l, errdefs.ErrInvalidArgument)
		}
		lr := ct.Snapshot()
		links = append(links, bnet.Link{ContainerID: lr.ID, Name: lr.Name, Alias: alias})
		if !onDefault {
			continue
		}
		full := "/" + r.Name + "/" + alias
		if !lr.State.IsRunning() {
			return nil, nil, fmt.Errorf("Cannot link to a non running container: /%s AS %s: %w", lr.Name, full, errdefs.ErrConflict) //nolint:staticcheck // docker's words
		}
		var ip netip.Addr
		for _, ep := range m.Endpoints(lr.ID) {
			if ep.NetworkName == bnet.DefaultNetwork && ep.IPv4.IsValid() {
				ip = ep.IPv4.Addr()
			}
		}
		if !ip.IsValid() {
			return nil, nil, fmt.Errorf("container %s not attached to default bridge network: %w", lr.ID, errdefs.ErrConflict)
		}
		var ports networktypes.PortSet
		var lenv []string
		if lr.Config != nil {
			ports, lenv = lr.Config.ExposedPorts, lr.Config.Env
		}
		env = append(env, linkEnv(full, alias, ip, ports, lenv)...)
	}
	return links, env, nil
}

// endpointLinks are an endpoint's own links (network connect --link,
// EndpointsConfig.Links): aliases of other containers for the embedded
// DNS, on user-defined networks only.
func (e *Engine) endpointLinks(network string, links []string) ([]bnet.Link, error) {
	if len(links) == 0 {
		return nil, nil
	}
	if network == bnet.DefaultNetwork {
		return nil, fmt.Errorf("network-scoped links are only supported for user-defined networks (use --link at create on the default network): %w", errdefs.ErrInvalidArgument)
	}
	c, err := e.ctrs()
	if err != nil {
		return nil, err
	}
	var out []bnet.Link
	for _, l := range links {
		name, alias, err := parseLink(l)
		if err != nil {
			return nil, err
		}
		ct, err := c.store.Get(name)
		if err != nil {
			return nil, fmt.Errorf("could not get container for %s: %w", name, errdefs.ErrInvalidArgument)
		}
		out = append(out, bnet.Link{ContainerID: ct.ID(), Name: strings.TrimPrefix(name, "/"), Alias: alias})
	}
	return out, nil
}

// linkEnv is the environment one link gives on the default network.
func linkEnv(full, alias string, ip netip.Addr, ports networktypes.PortSet, env []string) []string {
	prefix := strings.ToUpper(strings.ReplaceAll(alias, "-", "_"))
	sorted := make([]networktypes.Port, 0, len(ports))
	for p := range ports {
		sorted = append(sorted, p)
	}
	// by number, tcp first among equals: the lowest is <ALIAS>_PORT
	slices.SortFunc(sorted, func(a, b networktypes.Port) int {
		if c := cmp.Compare(a.Num(), b.Num()); c != 0 {
			return c
		}
		if (a.Proto() == "tcp") != (b.Proto() == "tcp") {
			if a.Proto() == "tcp" {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Proto(), b.Proto())
	})
	var out []string
	for i, p := range sorted {
		proto, num := string(p.Proto()), strconv.Itoa(int(p.Num()))
		url := proto + "://" + netip.AddrPortFrom(ip, p.Num()).String()
		if i == 0 {
			out = append(out, prefix+"_PORT="+url)
		}
		key := prefix + "_PORT_" + num + "_" + strings.ToUpper(proto)
		out = append(out, key+"="+url, key+"_ADDR="+ip.String(), key+"_PORT="+num, key+"_PROTO="+proto)
	}
	out = append(out, prefix+"_NAME="+full)
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "HOME" || k == "PATH" {
			continue
		}
		out = append(out, prefix+"_ENV_"+k+"="+v)
	}
	return out
}

// addEnv appends to env the variables of more that env does not set: a
// container's own variables win over its links', as docker's.
func addEnv(env, more []string) []string {
	set := map[string]bool{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = true
	}
	for _, kv := range more {
		k, _, _ := strings.Cut(kv, "=")
		if !set[k] {
			env = append(env, kv)
			set[k] = true
		}
	}
	return env
}

// removeLink is `rm --link /parent/alias`: the link leaves the parent's
// record and, while it runs, its hosts file and DNS.
func (e *Engine) removeLink(ctx context.Context, ref string) error {
	ref = "/" + strings.TrimPrefix(ref, "/")
	parent, alias := path.Split(ref)
	if parent == "/" {
		return fmt.Errorf("Conflict, cannot remove the default link name: %w", errdefs.ErrConflict) //nolint:staticcheck // docker's words
	}
	parent = strings.Trim(parent, "/")
	ct, _, err := e.lookup(parent)
	if err != nil {
		return fmt.Errorf("Cannot get parent %s for link name %s: %w", "/"+parent, ref, errdefs.ErrNotFound) //nolint:staticcheck // docker's words
	}
	ct.Lock()
	defer ct.Unlock()
	r := ct.R()
	old := r.HostConfig.Links
	var keep []string
	for _, l := range old {
		if _, a, err := parseLink(l); err == nil && a == alias {
			continue
		}
		keep = append(keep, l)
	}
	if len(keep) == len(old) {
		return fmt.Errorf("no link %s in container /%s: %w", alias, r.Name, errdefs.ErrNotFound)
	}
	// a new HostConfig: snapshots share the old one
	h := *r.HostConfig
	h.Links = keep
	prev := r.HostConfig
	r.HostConfig = &h
	if err := ct.Save(); err != nil {
		r.HostConfig = prev
		return err
	}
	if m, err := e.netManager(); err == nil {
		return m.Unlink(ctx, r.ID, alias)
	}
	return nil
}
