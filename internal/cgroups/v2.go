package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cgroups/devicefilter"
	"github.com/berth-dev/berth/internal/cleanup"
	"github.com/berth-dev/berth/internal/errdefs"
)

// v2Managed are the v2 controllers berth enables for a container on a
// unified host.
var v2Managed = []string{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"}

// v2 manages a container's cgroup on the unified hierarchy.
type v2 struct {
	root    string   // hierarchy mount point
	dir     string   // the container's cgroup
	want    []string // controllers Apply enables in every ancestor of dir
	created []string // directories Apply made, top first
	tried   []string // controllers Set already tried to enable
}

func newV2(root, rel string, available []string) *v2 {
	m := &v2{root: root, dir: filepath.Join(root, rel)}
	for _, c := range v2Managed {
		if slices.Contains(available, c) {
			m.want = append(m.want, c)
		}
	}
	return m
}

func (m *v2) Apply(pid int) error {
	var undo cleanup.Stack
	defer undo.Unwind()
	created, err := mkdirs(m.root, m.dir)
	for i := len(created) - 1; i >= 0; i-- {
		d := created[i]
		undo.Push(func() { _ = unix.Rmdir(d) })
	}
	if err != nil {
		return err
	}
	m.created = append(m.created, created...)
	if err := m.enable(m.want); err != nil {
		return err
	}
	if pid > 0 {
		if err := writeFile(m.dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	undo.Disarm()
	return nil
}

// enable turns controllers on in cgroup.subtree_control of every ancestor
// of the container's cgroup, top down: a controller shows up in a cgroup
// only if its parent delegates it (cgroup-v2.rst, "Top-down Constraint").
// It reads each ancestor's list first and writes only what is missing, so a
// second container under the same parent costs reads only.
func (m *v2) enable(ctrls []string) error {
	if len(ctrls) == 0 {
		return nil
	}
	rel, err := filepath.Rel(m.root, filepath.Dir(m.dir))
	if err != nil {
		return err
	}
	parent := m.root
	parts := []string{parent}
	if rel != "." {
		for _, p := range strings.Split(rel, "/") {
			parent = filepath.Join(parent, p)
			parts = append(parts, parent)
		}
	}
	for _, d := range parts {
		have, err := readFile(d, "cgroup.subtree_control")
		if err != nil {
			return err
		}
		var missing []string
		for _, c := range ctrls {
			if !slices.Contains(strings.Fields(have), c) {
				missing = append(missing, "+"+c)
			}
		}
		if len(missing) == 0 {
			continue
		}
		if err := writeFile(d, "cgroup.subtree_control", strings.Join(missing, " ")); err != nil {
			// One refused controller fails the whole write (cpu, say, while
			// a realtime process sits in a non-root cgroup: cgroup-v2.rst,
			// "CPU"). Enable the rest one by one; a limit that needs the
			// refused one then fails in Set, naming its file.
			var enabled int
			for _, c := range missing {
				if writeFile(d, "cgroup.subtree_control", c) == nil {
					enabled++
				}
			}
			if enabled == 0 {
				return fmt.Errorf("enable cgroup controllers: %w", err)
			}
		}
	}
	return nil
}

// write writes a control file of the container's cgroup. A missing file of
// a controller not yet enabled gets the controller enabled once, then the
// write is retried: Apply enables only what the create-time resources
// needed, and an update may ask for more.
func (m *v2) write(name, value string) error {
	err := writeFile(m.dir, name, value)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return err
	}
	ctrl, _, _ := strings.Cut(name, ".")
	if !slices.Contains(v2Managed, ctrl) || slices.Contains(m.tried, ctrl) {
		return err
	}
	m.tried = append(m.tried, ctrl)
	if m.controllerAvailable(ctrl) {
		if eerr := m.enable([]string{ctrl}); eerr != nil {
			return eerr
		}
		return writeFile(m.dir, name, value)
	}
	return fmt.Errorf("%w (cgroup v2 controller %s is not available here)", err, ctrl)
}

func (m *v2) controllerAvailable(c string) bool {
	s, err := readFile(m.root, "cgroup.controllers")
	return err == nil && slices.Contains(strings.Fields(s), c)
}

func (m *v2) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	for _, set := range []func(*specs.LinuxResources) error{
		m.setCPU, m.setMemory, m.setPids, m.setIO, m.setHugetlb, m.setRdma, m.setDevices, m.setUnified,
	} {
		if err := set(r); err != nil {
			return err
		}
	}
	if r.Network != nil && (r.Network.ClassID != nil || len(r.Network.Priorities) > 0) {
		return fmt.Errorf("network classID/priorities: cgroup v2 has no net_cls or net_prio: %w", errdefs.ErrNotImplemented)
	}
	return nil
}

func (m *v2) setCPU(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil {
		return nil
	}
	if (c.RealtimePeriod != nil && *c.RealtimePeriod != 0) || (c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0) {
		return fmt.Errorf("cpu realtime period/runtime: cgroup v2 has no realtime group scheduling: %w", errdefs.ErrNotImplemented)
	}
	if c.Shares != nil && *c.Shares != 0 {
		if err := m.write("cpu.weight", strconv.FormatUint(SharesToWeight(*c.Shares), 10)); err != nil {
			return err
		}
	}
	quotaSet, periodSet := c.Quota != nil && *c.Quota != 0, c.Period != nil && *c.Period != 0
	if quotaSet || periodSet {
		// cpu.max holds both: "$MAX $PERIOD". Keep the half not given.
		quota, period := "max", "100000"
		if !quotaSet || !periodSet {
			if cur, err := readFile(m.dir, "cpu.max"); err == nil {
				if f := strings.Fields(cur); len(f) == 2 {
					quota, period = f[0], f[1]
				}
			}
		}
		if quotaSet {
			quota = maxString(*c.Quota)
		}
		if periodSet {
			period = strconv.FormatUint(*c.Period, 10)
		}
		if err := m.write("cpu.max", quota+" "+period); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := m.write("cpu.max.burst", strconv.FormatUint(*c.Burst, 10)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := m.write("cpu.idle", strconv.FormatInt(*c.Idle, 10)); err != nil {
			return err
		}
	}
	if c.Cpus != "" {
		if err := m.write("cpuset.cpus", c.Cpus); err != nil {
			return err
		}
	}
	if c.Mems != "" {
		if err := m.write("cpuset.mems", c.Mems); err != nil {
			return err
		}
	}
	return nil
}

// swapMax turns the spec's memory+swap total into v2's swap-only
// memory.swap.max.
func swapMax(limit, swap *int64) (string, error) {
	if *swap == -1 {
		return "max", nil
	}
	if limit == nil || *limit <= 0 {
		return "", fmt.Errorf("memory swap %d: a memory+swap limit needs a memory limit: %w", *swap, errdefs.ErrInvalidArgument)
	}
	if *swap < *limit {
		return "", fmt.Errorf("memory swap %d: below the memory limit %d (swap counts memory plus swap): %w", *swap, *limit, errdefs.ErrInvalidArgument)
	}
	return strconv.FormatInt(*swap-*limit, 10), nil
}

func (m *v2) setMemory(r *specs.LinuxResources) error {
	mem := r.Memory
	if mem == nil {
		return nil
	}
	if mem.Swappiness != nil {
		return fmt.Errorf("memory swappiness: cgroup v2 has no per-cgroup swappiness: %w", errdefs.ErrNotImplemented)
	}
	if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
		return fmt.Errorf("disableOOMKiller: cgroup v2 cannot turn the OOM killer off: %w", errdefs.ErrNotImplemented)
	}
	if mem.KernelTCP != nil && *mem.KernelTCP != 0 {
		return fmt.Errorf("memory kernelTCP: cgroup v2 has no separate TCP memory limit: %w", errdefs.ErrNotImplemented)
	}
	// mem.Kernel: deprecated by the spec and absent from v2; ignored.
	// mem.UseHierarchy: v2 is always hierarchical.
	if err := checkBeforeUpdate(mem, m.dir, "memory.current"); err != nil {
		return err
	}
	var steps [][2]string
	if mem.Swap != nil && *mem.Swap != 0 {
		v, err := swapMax(mem.Limit, mem.Swap)
		if err != nil {
			return err
		}
		// Without swap accounting there is no file, and "max" is what
		// the host gives anyway.
		if v != "max" || exists(m.dir, "memory.swap.max") {
			steps = append(steps, [2]string{"memory.swap.max", v})
		}
	}
	if mem.Limit != nil && *mem.Limit != 0 {
		steps = append(steps, [2]string{"memory.max", maxString(*mem.Limit)})
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		steps = append(steps, [2]string{"memory.low", maxString(*mem.Reservation)})
	}
	for _, s := range steps {
		if err := m.write(s[0], s[1]); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2) setPids(r *specs.LinuxResources) error {
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil
	}
	return m.write("pids.max", maxString(pidsLimit(*r.Pids.Limit)))
}

func (m *v2) setIO(r *specs.LinuxResources) error {
	b := r.BlockIO
	if b == nil {
		return nil
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		return fmt.Errorf("blockIO leafWeight: cgroup v2 has no leaf weight: %w", errdefs.ErrNotImplemented)
	}
	// BFQ's io.bfq.weight takes the v1 scale as it is; io.weight (the
	// io.cost controller) wants 1..10000.
	bfq := exists(m.dir, "io.bfq.weight")
	if b.Weight != nil && *b.Weight != 0 {
		var err error
		if bfq {
			err = m.write("io.bfq.weight", strconv.FormatUint(uint64(*b.Weight), 10))
		} else {
			err = m.write("io.weight", strconv.FormatUint(BlkioToIOWeight(*b.Weight), 10))
		}
		if err != nil {
			return err
		}
	}
	for _, d := range b.WeightDevice {
		if d.LeafWeight != nil {
			return fmt.Errorf("blockIO leafWeight for %d:%d: cgroup v2 has no leaf weight: %w", d.Major, d.Minor, errdefs.ErrNotImplemented)
		}
		if d.Weight == nil {
			continue
		}
		var err error
		if bfq {
			err = m.write("io.bfq.weight", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, *d.Weight))
		} else {
			err = m.write("io.weight", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, BlkioToIOWeight(*d.Weight)))
		}
		if err != nil {
			return err
		}
	}
	for _, t := range []struct {
		key  string
		devs []specs.LinuxThrottleDevice
	}{
		{"rbps", b.ThrottleReadBpsDevice},
		{"wbps", b.ThrottleWriteBpsDevice},
		{"riops", b.ThrottleReadIOPSDevice},
		{"wiops", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			rate := strconv.FormatUint(d.Rate, 10)
			if d.Rate == 0 {
				rate = "max" // v1 took 0 to mean no limit
			}
			if err := m.write("io.max", fmt.Sprintf("%d:%d %s=%s", d.Major, d.Minor, t.key, rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v2) setHugetlb(r *specs.LinuxResources) error {
	for _, h := range r.HugepageLimits {
		if err := checkPagesize(h.Pagesize); err != nil {
			return err
		}
		v := strconv.FormatUint(h.Limit, 10)
		if err := m.write("hugetlb."+h.Pagesize+".max", v); err != nil {
			return err
		}
		if rsvd := "hugetlb." + h.Pagesize + ".rsvd.max"; exists(m.dir, rsvd) {
			if err := m.write(rsvd, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v2) setRdma(r *specs.LinuxResources) error {
	for _, dev := range slices.Sorted(rdmaKeys(r.Rdma)) {
		if err := m.write("rdma.max", rdmaLine(dev, r.Rdma[dev])); err != nil {
			return err
		}
	}
	return nil
}

// setDevices attaches the eBPF filter built from the rules: v2 has no
// devices files (cgroup-v2.rst, "Device controller").
func (m *v2) setDevices(r *specs.LinuxResources) error {
	if len(r.Devices) == 0 {
		return nil
	}
	p, err := devicefilter.Compile(r.Devices)
	if err != nil {
		return err
	}
	return devicefilter.Attach(m.dir, p)
}

func (m *v2) setUnified(r *specs.LinuxResources) error {
	for _, k := range slices.Sorted(mapKeys(r.Unified)) {
		if err := checkUnifiedKey(k); err != nil {
			return err
		}
		// The key names a file in the container's own cgroup; refuse
		// anything there that is not a plain file (cgroupfs has no
		// symlinks, but a fake or hostile tree might).
		fi, err := os.Lstat(filepath.Join(m.dir, k))
		if err != nil || !fi.Mode().IsRegular() {
			ctrl, _, _ := strings.Cut(k, ".")
			return fmt.Errorf("unified key %q: no such control file in %s (is controller %s enabled?): %w", k, m.dir, ctrl, errdefs.ErrInvalidArgument)
		}
		if err := writeFile(m.dir, k, r.Unified[k]); err != nil {
			return err
		}
	}
	return nil
}

// Freeze writes cgroup.freeze and waits for cgroup.events to say
// "frozen 1" (or 0): the write returns before every task has stopped.
func (m *v2) Freeze(frozen bool) error {
	want := "0"
	if frozen {
		want = "1"
	}
	if err := writeFile(m.dir, "cgroup.freeze", want); err != nil {
		return err
	}
	ok, err := pollUntil(5*time.Second, func(int) (bool, error) {
		ev, err := readKV(m.dir, "cgroup.events")
		if err != nil {
			return false, err
		}
		return strconv.FormatUint(ev["frozen"], 10) == want, nil
	})
	if err != nil {
		return err
	}
	if !ok {
		if frozen {
			_ = writeFile(m.dir, "cgroup.freeze", "0")
		}
		return fmt.Errorf("freeze %s to %s: cgroup.events does not agree after 5s: %w", m.dir, want, errdefs.ErrUnavailable)
	}
	return nil
}

// Kill uses cgroup.kill (Linux 5.14) for SIGKILL: the kernel signals every
// task in the subtree, forks included, in one write. Other signals, and
// older kernels, go through freeze, signal each pid, thaw.
func (m *v2) Kill(sig unix.Signal) error {
	if sig == unix.SIGKILL && exists(m.dir, "cgroup.kill") {
		return writeFile(m.dir, "cgroup.kill", "1")
	}
	return signalFrozen(m, sig)
}

func (m *v2) frozen() (bool, error) {
	s, err := readFile(m.dir, "cgroup.freeze")
	return s == "1", err
}

func (m *v2) Pids() ([]int, error) { return readPids(m.dir) }

func (m *v2) Destroy() error { return m.destroy(time.Now().Add(destroyGrace)) }

func (m *v2) destroy(deadline time.Time) error {
	if err := removeTree(m.dir, deadline); err != nil {
		return err
	}
	removeParents(m.root, m.dir, m.created)
	return nil
}

func (m *v2) Paths() map[string]string { return map[string]string{"": m.dir} }

func (m *v2) Stats() (*Stats, error) {
	s := &Stats{}
	if err := m.stats(s, true); err != nil {
		return nil, err
	}
	return s, nil
}

// stats fills what the enabled controllers report; all is false on a
// hybrid host, where only hugetlb comes from v2.
func (m *v2) stats(s *Stats, all bool) error {
	if all {
		if exists(m.dir, "memory.current") {
			ms := &s.Memory
			var err error
			if ms.Usage, err = readUint(m.dir, "memory.current"); err != nil {
				return err
			}
			ms.Limit, _ = readUint(m.dir, "memory.max")
			ms.MaxUsage, _ = readUint(m.dir, "memory.peak")
			ms.SwapUsage, _ = readUint(m.dir, "memory.swap.current")
			ms.SwapLimit, _ = readUint(m.dir, "memory.swap.max")
			if ev, err := readKV(m.dir, "memory.events"); err == nil {
				ms.Failcnt, ms.OOM, ms.OOMKill = ev["max"], ev["oom"], ev["oom_kill"]
			}
			ms.Stat, _ = readKV(m.dir, "memory.stat")
		}
		// cpu.stat's usage lines are there without the cpu controller.
		if st, err := readKV(m.dir, "cpu.stat"); err == nil {
			const us = 1000
			s.CPU.Usage, s.CPU.User, s.CPU.System = st["usage_usec"]*us, st["user_usec"]*us, st["system_usec"]*us
			s.CPU.Periods, s.CPU.ThrottledPeriods, s.CPU.ThrottledTime = st["nr_periods"], st["nr_throttled"], st["throttled_usec"]*us
		}
		if exists(m.dir, "pids.current") {
			s.Pids.Current, _ = readUint(m.dir, "pids.current")
			s.Pids.Limit, _ = readUint(m.dir, "pids.max")
		}
		if b, err := os.ReadFile(filepath.Join(m.dir, "io.stat")); err == nil {
			s.BlkIO.ServiceBytes, s.BlkIO.Serviced = parseIOStatV2(string(b))
		}
	}
	if h := hugetlbStats(m.dir, ".current", "", "events:max"); len(h) > 0 {
		s.Hugetlb = h
	}
	return nil
}
