package cgroups

import (
	"errors"
	"slices"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hybrid manages a container on a host with v1 hierarchies and a v2 one
// beside them. Each controller is driven where the host put it: the v1
// hierarchies for those mounted there, the v2 cgroup for what its
// cgroup.controllers lists and no v1 hierarchy has (on the machines we
// test, hugetlb). The v2 cgroup also tracks the processes: it exists on
// every hybrid host, holds every process of the container whatever is
// mounted where, and offers cgroup.kill.
type hybrid struct {
	v1                 *v1
	v2                 *v2
	unifiedControllers []string
}

// v2Controllers returns the v2 controllers the resources need enabled on
// a hybrid host. Only what the spec uses is enabled, to leave the v2
// hierarchy of a host that runs it for process tracking as it is.
func (h *hybrid) v2Controllers(r *specs.LinuxResources) []string {
	if r == nil {
		return nil
	}
	var out []string
	add := func(c string, used bool) {
		if used && h.onV2(c) {
			out = append(out, c)
		}
	}
	add("hugetlb", len(r.HugepageLimits) > 0)
	add("rdma", len(r.Rdma) > 0)
	add("pids", r.Pids != nil)
	add("memory", r.Memory != nil)
	add("cpu", r.CPU != nil)
	add("io", r.BlockIO != nil)
	return out
}

// onV2 tells whether controller c is driven on the v2 hierarchy.
func (h *hybrid) onV2(c string) bool {
	v1name := c
	if c == "io" {
		v1name = "blkio"
	}
	_, onV1 := h.v1.paths[v1name]
	return !onV1 && slices.Contains(h.unifiedControllers, c)
}

// split hands each part of r to the hierarchy that has its controller.
// What neither has goes to v1, whose error names the missing controller.
func (h *hybrid) split(r *specs.LinuxResources) (r1, r2 *specs.LinuxResources) {
	a, b := *r, specs.LinuxResources{}
	if h.onV2("hugetlb") {
		a.HugepageLimits, b.HugepageLimits = nil, r.HugepageLimits
	}
	if h.onV2("rdma") {
		a.Rdma, b.Rdma = nil, r.Rdma
	}
	if h.onV2("pids") {
		a.Pids, b.Pids = nil, r.Pids
	}
	if h.onV2("io") {
		a.BlockIO, b.BlockIO = nil, r.BlockIO
	}
	if h.onV2("memory") {
		a.Memory, b.Memory = nil, r.Memory
	}
	if h.onV2("cpu") {
		a.CPU, b.CPU = nil, r.CPU
	}
	// Device filtering needs no controller on v2; use it only when the
	// host has no v1 devices hierarchy, or the two would both apply.
	if _, ok := h.v1.paths["devices"]; !ok {
		a.Devices, b.Devices = nil, r.Devices
	}
	a.Unified, b.Unified = nil, r.Unified
	return &a, &b
}

func (h *hybrid) Apply(pid int) error {
	if err := h.v1.Apply(pid); err != nil {
		return err
	}
	if err := h.v2.Apply(pid); err != nil {
		// Apply of v1 moved pid already; the caller destroys on error,
		// but undo our own directories if nothing is in them.
		if pid <= 0 {
			_ = h.v1.Destroy()
		}
		return err
	}
	return nil
}

func (h *hybrid) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	r1, r2 := h.split(r)
	if err := h.v1.Set(r1); err != nil {
		return err
	}
	return h.v2.Set(r2)
}

func (h *hybrid) Stats() (*Stats, error) {
	s, err := h.v1.Stats()
	if err != nil {
		return nil, err
	}
	if err := h.v2.stats(s, false); err != nil {
		return nil, err
	}
	if s.Pids == (PidsStats{}) && h.onV2("pids") {
		s.Pids.Current, _ = readUint(h.v2.dir, "pids.current")
		s.Pids.Limit, _ = readUint(h.v2.dir, "pids.max")
	}
	return s, nil
}

// Freeze uses the v1 freezer where mounted, else v2's cgroup.freeze,
// which needs no controller.
func (h *hybrid) Freeze(frozen bool) error {
	if _, ok := h.v1.paths["freezer"]; ok {
		return h.v1.Freeze(frozen)
	}
	return h.v2.Freeze(frozen)
}

// Kill uses the v2 cgroup's cgroup.kill for SIGKILL: every process of the
// container is in it. A v1-frozen container must then be thawed, since a
// task frozen by the v1 freezer acts on SIGKILL only once thawed.
func (h *hybrid) Kill(sig unix.Signal) error {
	if sig == unix.SIGKILL && exists(h.v2.dir, "cgroup.kill") {
		if err := writeFile(h.v2.dir, "cgroup.kill", "1"); err != nil {
			return err
		}
		if frozen, err := h.frozen(); err != nil || !frozen {
			return err
		}
		return h.Freeze(false)
	}
	return signalFrozen(h, sig)
}

func (h *hybrid) frozen() (bool, error) {
	if _, ok := h.v1.paths["freezer"]; ok {
		return h.v1.frozen()
	}
	return h.v2.frozen()
}

func (h *hybrid) Pids() ([]int, error) { return h.v2.Pids() }

func (h *hybrid) Destroy() error {
	deadline := time.Now().Add(destroyGrace)
	return errors.Join(h.v1.destroy(deadline), h.v2.destroy(deadline))
}

func (h *hybrid) Paths() map[string]string {
	p := h.v1.Paths()
	p[""] = h.v2.dir
	return p
}
