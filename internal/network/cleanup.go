package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/network/netns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// CleanupResult says what Cleanup removed.
type CleanupResult struct {
	Containers []string // released: records of dead containers
	Veths      []string // stray host ends on our bridges
	Netns      []string // stray namespace files
}

// Cleanup removes what belongs to containers that are not alive, as after
// a daemon crash: their endpoints (veths, addresses, host ports, rules),
// DNS servers, files and namespaces; then veths on our bridges and
// namespace files under exec-root that no record knows. The engine calls it
// once at start, after New, with its own idea of which containers live; a
// container that starts meanwhile must not be one it calls dead.
func (m *Manager) Cleanup(ctx context.Context, alive func(containerID string) bool) (CleanupResult, error) {
	// alive runs without m.mu held: the engine answers it under its
	// containers' locks, which it also holds while calling Attach.
	m.mu.Lock()
	ids := map[string]bool{}
	for _, sb := range m.st.Containers {
		ids[sb.ContainerID] = true
	}
	for _, ep := range m.st.Endpoints {
		ids[ep.ContainerID] = true
	}
	m.mu.Unlock()
	dead := map[string]bool{}
	for id := range ids {
		if !alive(id) {
			dead[id] = true
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var res CleanupResult
	var errs []error
	for id := range dead {
		res.Containers = append(res.Containers, id)
		errs = append(errs, m.releaseLocked(ctx, id))
	}

	known := map[string]bool{}
	for _, ep := range m.st.Endpoints {
		known[ep.HostVeth] = true
	}
	bridges := map[int]bool{}
	for _, n := range m.st.Networks {
		if l, err := netlink.LinkByName(n.Bridge); err == nil {
			bridges[l.Attrs().Index] = true
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		errs = append(errs, fmt.Errorf("list links: %w", err))
	}
	for _, l := range links {
		a := l.Attrs()
		if l.Type() == "veth" && strings.HasPrefix(a.Name, "vb") && bridges[a.MasterIndex] && !known[a.Name] {
			if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
				errs = append(errs, fmt.Errorf("delete stray veth %s: %w", a.Name, err))
				continue
			}
			res.Veths = append(res.Veths, a.Name)
		}
	}

	dir := filepath.Join(m.cfg.ExecRoot, "netns")
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if slices.ContainsFunc(m.st.Containers, func(sb *Sandbox) bool { return sb.Netns == path }) {
			continue
		}
		if err := netns.Remove(path); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Netns = append(res.Netns, e.Name())
	}
	filesRoot := filepath.Join(m.cfg.ExecRoot, "network", "containers")
	entries, _ = os.ReadDir(filesRoot)
	for _, e := range entries {
		if m.sandbox(e.Name()) == nil {
			errs = append(errs, os.RemoveAll(filepath.Join(filesRoot, e.Name())))
		}
	}
	errs = append(errs, m.applyRules(), m.save())
	if len(res.Containers)+len(res.Veths)+len(res.Netns) > 0 {
		log.From(ctx).Info("network cleanup", "containers", len(res.Containers), "veths", len(res.Veths), "netns", len(res.Netns))
	}
	return res, errors.Join(errs...)
}
