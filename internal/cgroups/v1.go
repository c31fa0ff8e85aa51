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

	"github.com/berth-dev/berth/internal/cleanup"
	"github.com/berth-dev/berth/internal/errdefs"
)

// v1 manages a container's cgroups on the v1 hierarchies: one directory per
// mounted hierarchy, the same relative path in each.
type v1 struct {
	roots   map[string]string // controller -> hierarchy mount point
	paths   map[string]string // controller -> the container's directory
	created []string          // directories Apply made, top first per hierarchy
}

func newV1(l *layout, rel string) *v1 {
	m := &v1{roots: l.v1, paths: make(map[string]string, len(l.v1))}
	for c, root := range l.v1 {
		m.paths[c] = filepath.Join(root, rel)
	}
	return m
}

// dirs lists each distinct directory once (co-mounted controllers share
// one), with the controller that names it, in a stable order.
func (m *v1) dirs() []string {
	var out []string
	for _, c := range slices.Sorted(mapKeys(m.paths)) {
		if d := m.paths[c]; !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (m *v1) rootOf(dir string) string {
	for c, d := range m.paths {
		if d == dir {
			return m.roots[c]
		}
	}
	return ""
}

func (m *v1) Apply(pid int) error {
	var undo cleanup.Stack
	defer undo.Unwind()
	for _, dir := range m.dirs() {
		created, err := mkdirs(m.rootOf(dir), dir)
		for i := len(created) - 1; i >= 0; i-- {
			d := created[i]
			undo.Push(func() { _ = unix.Rmdir(d) })
		}
		if err != nil {
			return err
		}
		m.created = append(m.created, created...)
		if dir == m.paths["cpuset"] {
			if err := initCpuset(created); err != nil {
				return err
			}
		}
		if pid > 0 {
			if err := writeFile(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
				return err
			}
		}
	}
	undo.Disarm()
	return nil
}

// initCpuset fills each new cpuset directory from its parent: on v1 a new
// cpuset starts with no CPUs and no memory nodes, and the kernel refuses to
// attach a task to it (ENOSPC) until both are set. A parent berth creates
// also gets cgroup.clone_children, which makes the kernel copy the values
// into each new child itself, so the next container's Apply costs two
// reads here instead of reads and writes.
func initCpuset(created []string) error {
	for i, dir := range created {
		if err := fillCpuset(dir, 0); err != nil {
			return err
		}
		if i < len(created)-1 {
			if err := writeFile(dir, "cgroup.clone_children", "1"); err != nil {
				return err
			}
		}
	}
	return nil
}

// fillCpuset gives dir its parent's CPUs and memory nodes if it lacks
// either, filling the parent first the same way: a parent that another
// container's Apply has just made is empty until that Apply fills it, and
// copying its emptiness would leave dir unusable. The hierarchy's root
// always has both, which ends the climb.
func fillCpuset(dir string, depth int) error {
	filled := true
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		v, err := readFile(dir, f)
		if err != nil {
			return err
		}
		filled = filled && v != ""
	}
	if filled {
		return nil
	}
	parent := filepath.Dir(dir)
	if depth > 32 || parent == dir {
		return fmt.Errorf("cgroup %s: no cpuset to copy from", dir)
	}
	if err := fillCpuset(parent, depth+1); err != nil {
		return err
	}
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		v, err := readFile(parent, f)
		if err != nil {
			return err
		}
		if err := writeFile(dir, f, v); err != nil {
			return err
		}
	}
	return nil
}

// need returns the directory of controller c, or an error naming what
// asked for it when the host does not mount c.
func (m *v1) need(c, what string) (string, error) {
	d := m.paths[c]
	if d == "" {
		return "", fmt.Errorf("%s: cgroup v1 controller %s is not mounted on this host: %w", what, c, errdefs.ErrNotImplemented)
	}
	return d, nil
}

func (m *v1) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	for _, set := range []func(*specs.LinuxResources) error{
		m.setCpuset, m.setMemory, m.setCPU, m.setPids, m.setBlkio, m.setHugetlb,
		m.setDevices, m.setNetwork, m.setRdma,
	} {
		if err := set(r); err != nil {
			return err
		}
	}
	if len(r.Unified) > 0 {
		return fmt.Errorf("unified resources: need a cgroup v2 hierarchy: %w", errdefs.ErrNotImplemented)
	}
	return nil
}

func (m *v1) setCpuset(r *specs.LinuxResources) error {
	if r.CPU == nil || (r.CPU.Cpus == "" && r.CPU.Mems == "") {
		return nil
	}
	dir, err := m.need("cpuset", "cpu.cpus/mems")
	if err != nil {
		return err
	}
	if r.CPU.Cpus != "" {
		if err := writeFile(dir, "cpuset.cpus", r.CPU.Cpus); err != nil {
			return err
		}
	}
	if r.CPU.Mems != "" {
		if err := writeFile(dir, "cpuset.mems", r.CPU.Mems); err != nil {
			return err
		}
	}
	return nil
}

// setMemory treats 0 like unset for the byte limits, as runc does: specs
// in the wild carry 0 to mean "no limit given".
func (m *v1) setMemory(r *specs.LinuxResources) error {
	mem := r.Memory
	if mem == nil {
		return nil
	}
	set := func(p *int64) bool { return p != nil && *p != 0 }
	if !set(mem.Limit) && !set(mem.Reservation) && !set(mem.Swap) && !set(mem.Kernel) && !set(mem.KernelTCP) &&
		mem.Swappiness == nil && mem.DisableOOMKiller == nil && mem.UseHierarchy == nil {
		return nil
	}
	dir, err := m.need("memory", "memory limits")
	if err != nil {
		return err
	}
	if set(mem.Limit) || set(mem.Swap) {
		if err := checkBeforeUpdate(mem, dir, "memory.usage_in_bytes"); err != nil {
			return err
		}
		if err := setMemoryLimits(dir, mem.Limit, mem.Swap); err != nil {
			return err
		}
	}
	if set(mem.Reservation) {
		if err := writeFile(dir, "memory.soft_limit_in_bytes", limitString(*mem.Reservation)); err != nil {
			return err
		}
	}
	// Kernel memory limits are gone from v1 since Linux 6.1 and
	// deprecated before; write them only where the file still exists.
	if set(mem.Kernel) && exists(dir, "memory.kmem.limit_in_bytes") {
		if err := writeFile(dir, "memory.kmem.limit_in_bytes", limitString(*mem.Kernel)); err != nil {
			return err
		}
	}
	if set(mem.KernelTCP) {
		if err := writeFile(dir, "memory.kmem.tcp.limit_in_bytes", limitString(*mem.KernelTCP)); err != nil {
			return err
		}
	}
	if mem.Swappiness != nil {
		if *mem.Swappiness > 100 {
			return fmt.Errorf("memory swappiness %d: want 0 to 100: %w", *mem.Swappiness, errdefs.ErrInvalidArgument)
		}
		if err := writeFile(dir, "memory.swappiness", strconv.FormatUint(*mem.Swappiness, 10)); err != nil {
			return err
		}
	}
	if mem.DisableOOMKiller != nil {
		v := "0"
		if *mem.DisableOOMKiller {
			v = "1"
		}
		if err := writeFile(dir, "memory.oom_control", v); err != nil {
			return err
		}
	}
	if mem.UseHierarchy != nil {
		v := "0"
		if *mem.UseHierarchy {
			v = "1"
		}
		if err := writeFile(dir, "memory.use_hierarchy", v); err != nil {
			return err
		}
	}
	return nil
}

// setMemoryLimits writes memory.limit_in_bytes and memsw (memory+swap). The
// kernel keeps limit <= memsw at every instant, so which goes first depends
// on whether the limits grow or shrink: try the limit first (right for a
// new cgroup and for shrinking) and on EINVAL go memsw first (growing).
func setMemoryLimits(dir string, limit, swap *int64) error {
	var steps [][2]string
	if limit != nil && *limit != 0 {
		steps = append(steps, [2]string{"memory.limit_in_bytes", limitString(*limit)})
	}
	if swap != nil && *swap != 0 {
		if !exists(dir, "memory.memsw.limit_in_bytes") {
			if *swap == -1 {
				// No swap accounting: unlimited swap is what the host has.
				swap = nil
			} else {
				return fmt.Errorf("memory swap limit: %s: swap accounting is off on this host: %w",
					filepath.Join(dir, "memory.memsw.limit_in_bytes"), errdefs.ErrNotImplemented)
			}
		}
		if swap != nil {
			steps = append(steps, [2]string{"memory.memsw.limit_in_bytes", limitString(*swap)})
		}
	}
	if swap != nil && *swap == -1 && len(steps) == 2 {
		// Raising memsw to unlimited first always satisfies limit <= memsw.
		steps[0], steps[1] = steps[1], steps[0]
	}
	var first error
	for i, s := range steps {
		if err := writeFile(dir, s[0], s[1]); err != nil {
			if i == 0 && len(steps) == 2 && errors.Is(err, unix.EINVAL) {
				first = err
				break
			}
			return err
		}
	}
	if first == nil {
		return nil
	}
	for i := len(steps) - 1; i >= 0; i-- {
		if err := writeFile(dir, steps[i][0], steps[i][1]); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) setCPU(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil || (c.Shares == nil && c.Quota == nil && c.Period == nil && c.Burst == nil &&
		c.RealtimePeriod == nil && c.RealtimeRuntime == nil && c.Idle == nil) {
		return nil
	}
	dir, err := m.need("cpu", "cpu limits")
	if err != nil {
		return err
	}
	var steps [][2]string
	if c.Shares != nil && *c.Shares != 0 {
		steps = append(steps, [2]string{"cpu.shares", strconv.FormatUint(*c.Shares, 10)})
	}
	// The period goes before the quota: the kernel checks the quota
	// against the period it has.
	if c.Period != nil && *c.Period != 0 {
		steps = append(steps, [2]string{"cpu.cfs_period_us", strconv.FormatUint(*c.Period, 10)})
	}
	if c.Quota != nil && *c.Quota != 0 {
		steps = append(steps, [2]string{"cpu.cfs_quota_us", limitString(*c.Quota)})
	}
	if c.Burst != nil {
		steps = append(steps, [2]string{"cpu.cfs_burst_us", strconv.FormatUint(*c.Burst, 10)})
	}
	if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
		steps = append(steps, [2]string{"cpu.rt_period_us", strconv.FormatUint(*c.RealtimePeriod, 10)})
	}
	if c.Idle != nil {
		steps = append(steps, [2]string{"cpu.idle", strconv.FormatInt(*c.Idle, 10)})
	}
	for _, s := range steps {
		if err := writeFile(dir, s[0], s[1]); err != nil {
			return err
		}
	}
	if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
		return m.setRealtimeRuntime(dir, *c.RealtimeRuntime)
	}
	return nil
}

// setRealtimeRuntime writes cpu.rt_runtime_us. The kernel lets the
// children of a cgroup share at most its own realtime budget
// (Documentation/scheduler/sched-rt-group.rst), and a new cgroup has none,
// so a container below berth's parent would always be refused. When it is,
// raise the budget of the ancestors berth owns by what the container asks,
// top down, and try again; cgroups berth does not own are left alone.
func (m *v1) setRealtimeRuntime(dir string, runtime int64) error {
	v := limitString(runtime)
	err := writeFile(dir, "cpu.rt_runtime_us", v)
	if err == nil || runtime < 0 || !errors.Is(err, unix.EINVAL) {
		return err
	}
	period, perr := readUint(dir, "cpu.rt_period_us")
	if perr != nil || period == 0 {
		return err
	}
	own := filepath.Join(m.roots["cpu"], Parent)
	var chain []string
	for p := filepath.Dir(dir); within(own, p); p = filepath.Dir(p) {
		chain = append([]string{p}, chain...)
	}
	if len(chain) == 0 {
		return fmt.Errorf("%w (the parent cgroup has no realtime budget to share)", err)
	}
	for _, p := range chain {
		cur, rerr := readUint(p, "cpu.rt_runtime_us")
		if rerr != nil {
			return rerr
		}
		pperiod, rerr := readUint(p, "cpu.rt_period_us")
		if rerr != nil {
			return rerr
		}
		add := uint64(runtime) * pperiod / period
		if werr := writeFile(p, "cpu.rt_runtime_us", strconv.FormatUint(cur+add, 10)); werr != nil {
			return fmt.Errorf("cpu realtime runtime %d: raise the budget of %s: %w", runtime, p, werr)
		}
	}
	return writeFile(dir, "cpu.rt_runtime_us", v)
}

func (m *v1) setPids(r *specs.LinuxResources) error {
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil
	}
	dir, err := m.need("pids", "pids limit")
	if err != nil {
		return err
	}
	return writeFile(dir, "pids.max", maxString(pidsLimit(*r.Pids.Limit)))
}

// pidsLimit: the spec's 0 and -1 both mean no limit.
func pidsLimit(v int64) int64 {
	if v <= 0 {
		return -1
	}
	return v
}

func (m *v1) setBlkio(r *specs.LinuxResources) error {
	b := r.BlockIO
	if b == nil || (b.Weight == nil && b.LeafWeight == nil && len(b.WeightDevice) == 0 &&
		len(b.ThrottleReadBpsDevice) == 0 && len(b.ThrottleWriteBpsDevice) == 0 &&
		len(b.ThrottleReadIOPSDevice) == 0 && len(b.ThrottleWriteIOPSDevice) == 0) {
		return nil
	}
	dir, err := m.need("blkio", "blockIO limits")
	if err != nil {
		return err
	}
	// CFQ had blkio.weight; with it gone (Linux 5.0) BFQ offers
	// blkio.bfq.weight instead, on hosts that build it.
	weightFile, deviceFile := "blkio.weight", "blkio.weight_device"
	if !exists(dir, weightFile) && exists(dir, "blkio.bfq.weight") {
		weightFile, deviceFile = "blkio.bfq.weight", "blkio.bfq.weight_device"
	}
	if b.Weight != nil && *b.Weight != 0 {
		if err := writeFile(dir, weightFile, strconv.FormatUint(uint64(*b.Weight), 10)); err != nil {
			return err
		}
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		if err := writeFile(dir, "blkio.leaf_weight", strconv.FormatUint(uint64(*b.LeafWeight), 10)); err != nil {
			return err
		}
	}
	for _, d := range b.WeightDevice {
		if d.Weight != nil {
			if err := writeFile(dir, deviceFile, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, *d.Weight)); err != nil {
				return err
			}
		}
		if d.LeafWeight != nil {
			if err := writeFile(dir, "blkio.leaf_weight_device", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, *d.LeafWeight)); err != nil {
				return err
			}
		}
	}
	for _, t := range []struct {
		file string
		devs []specs.LinuxThrottleDevice
	}{
		{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			if err := writeFile(dir, t.file, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v1) setHugetlb(r *specs.LinuxResources) error {
	if len(r.HugepageLimits) == 0 {
		return nil
	}
	dir, err := m.need("hugetlb", "hugepage limits")
	if err != nil {
		return err
	}
	for _, h := range r.HugepageLimits {
		if err := checkPagesize(h.Pagesize); err != nil {
			return err
		}
		v := strconv.FormatUint(h.Limit, 10)
		if err := writeFile(dir, "hugetlb."+h.Pagesize+".limit_in_bytes", v); err != nil {
			return err
		}
		// Reservations (Linux 5.7) are what a process that mmaps but has
		// not faulted holds; the spec asks to limit them where supported.
		if rsvd := "hugetlb." + h.Pagesize + ".rsvd.limit_in_bytes"; exists(dir, rsvd) {
			if err := writeFile(dir, rsvd, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v1) setDevices(r *specs.LinuxResources) error {
	if len(r.Devices) == 0 {
		return nil
	}
	files, lines, err := deviceLines(r.Devices)
	if err != nil {
		return err
	}
	dir, err := m.need("devices", "device rules")
	if err != nil {
		return err
	}
	for i := range files {
		if err := writeFile(dir, files[i], lines[i]); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) setNetwork(r *specs.LinuxResources) error {
	n := r.Network
	if n == nil {
		return nil
	}
	if n.ClassID != nil {
		dir, err := m.need("net_cls", "network classID")
		if err != nil {
			return err
		}
		if err := writeFile(dir, "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10)); err != nil {
			return err
		}
	}
	if len(n.Priorities) > 0 {
		dir, err := m.need("net_prio", "network priorities")
		if err != nil {
			return err
		}
		for _, p := range n.Priorities {
			if p.Name == "" || strings.ContainsAny(p.Name, " \n") {
				return fmt.Errorf("network priority: interface name %q: %w", p.Name, errdefs.ErrInvalidArgument)
			}
			if err := writeFile(dir, "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v1) setRdma(r *specs.LinuxResources) error {
	if len(r.Rdma) == 0 {
		return nil
	}
	dir, err := m.need("rdma", "rdma limits")
	if err != nil {
		return err
	}
	for _, dev := range slices.Sorted(rdmaKeys(r.Rdma)) {
		if err := writeFile(dir, "rdma.max", rdmaLine(dev, r.Rdma[dev])); err != nil {
			return err
		}
	}
	return nil
}

func rdmaKeys(m map[string]specs.LinuxRdma) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Freeze writes freezer.state and polls until the kernel reports the state
// reached. Freezing can stall in FREEZING while tasks are mid-fork or in
// uninterruptible sleep; writing FROZEN again makes the kernel retry them.
func (m *v1) Freeze(frozen bool) error {
	dir, err := m.need("freezer", "freeze")
	if err != nil {
		return err
	}
	want := "THAWED"
	if frozen {
		want = "FROZEN"
	}
	ok, err := pollUntil(5*time.Second, func(i int) (bool, error) {
		if i%10 == 0 {
			if err := writeFile(dir, "freezer.state", want); err != nil {
				return false, err
			}
		}
		s, err := readFile(dir, "freezer.state")
		return s == want, err
	})
	if err != nil {
		return err
	}
	if !ok {
		if frozen {
			_ = writeFile(dir, "freezer.state", "THAWED")
		}
		return fmt.Errorf("set %s to %s: still not there after 5s: %w", filepath.Join(dir, "freezer.state"), want, errdefs.ErrUnavailable)
	}
	return nil
}

// trackDir is the directory whose cgroup.procs lists the container's
// processes: any joined hierarchy will do; prefer ones every host mounts.
func (m *v1) trackDir() string {
	for _, c := range []string{"pids", "freezer", "memory", "cpu", "devices"} {
		if d := m.paths[c]; d != "" {
			return d
		}
	}
	for _, d := range m.dirs() {
		return d
	}
	return ""
}

func (m *v1) Pids() ([]int, error) {
	dir := m.trackDir()
	if dir == "" {
		return nil, fmt.Errorf("list pids: no cgroup v1 hierarchy: %w", errdefs.ErrNotFound)
	}
	return readPids(dir)
}

// Kill freezes the cgroup so that no process can fork past the signal,
// signals every process, then thaws so the signal is delivered. Without a
// freezer it signals until the cgroup stays empty or 10 rounds pass.
func (m *v1) Kill(sig unix.Signal) error {
	if m.paths["freezer"] == "" {
		for range 10 {
			pids, err := m.Pids()
			if err != nil || len(pids) == 0 {
				return err
			}
			if err := signalAll(pids, sig); err != nil {
				return err
			}
			if sig != unix.SIGKILL {
				return nil
			}
			time.Sleep(10 * time.Millisecond)
		}
		return nil
	}
	return signalFrozen(m, sig)
}

func (m *v1) frozen() (bool, error) {
	s, err := readFile(m.paths["freezer"], "freezer.state")
	return s == "FROZEN", err
}

func (m *v1) Destroy() error { return m.destroy(time.Now().Add(destroyGrace)) }

func (m *v1) destroy(deadline time.Time) error {
	var errs []error
	for _, dir := range m.dirs() {
		if err := removeTree(dir, deadline); err != nil {
			errs = append(errs, err)
			continue
		}
		removeParents(m.rootOf(dir), dir, m.created)
	}
	return errors.Join(errs...)
}

func (m *v1) Paths() map[string]string {
	out := make(map[string]string, len(m.paths))
	for c, d := range m.paths {
		out[c] = d
	}
	return out
}

func (m *v1) Stats() (*Stats, error) {
	s := &Stats{}
	if dir := m.paths["memory"]; dir != "" {
		if err := memoryStatsV1(dir, &s.Memory); err != nil {
			return nil, err
		}
	}
	if dir := m.paths["cpuacct"]; dir != "" {
		if err := cpuacctStatsV1(dir, &s.CPU); err != nil {
			return nil, err
		}
	}
	if dir := m.paths["cpu"]; dir != "" {
		if st, err := readKV(dir, "cpu.stat"); err == nil {
			s.CPU.Periods, s.CPU.ThrottledPeriods, s.CPU.ThrottledTime = st["nr_periods"], st["nr_throttled"], st["throttled_time"]
		}
	}
	if dir := m.paths["pids"]; dir != "" {
		var err error
		if s.Pids.Current, err = readUint(dir, "pids.current"); err != nil {
			return nil, err
		}
		if s.Pids.Limit, err = readUint(dir, "pids.max"); err != nil {
			return nil, err
		}
	}
	if dir := m.paths["blkio"]; dir != "" {
		s.BlkIO = blkioStatsV1(dir)
	}
	if dir := m.paths["hugetlb"]; dir != "" {
		s.Hugetlb = hugetlbStats(dir, ".usage_in_bytes", ".max_usage_in_bytes", ".failcnt")
	}
	return s, nil
}

func memoryStatsV1(dir string, ms *MemoryStats) error {
	var err error
	for _, f := range []struct {
		name string
		dst  *uint64
	}{
		{"memory.usage_in_bytes", &ms.Usage},
		{"memory.max_usage_in_bytes", &ms.MaxUsage},
		{"memory.limit_in_bytes", &ms.Limit},
		{"memory.failcnt", &ms.Failcnt},
	} {
		if *f.dst, err = readUint(dir, f.name); err != nil {
			return err
		}
	}
	if exists(dir, "memory.memsw.usage_in_bytes") {
		ms.SwapUsage, _ = readUint(dir, "memory.memsw.usage_in_bytes")
		ms.SwapLimit, _ = readUint(dir, "memory.memsw.limit_in_bytes")
	}
	if oc, err := readKV(dir, "memory.oom_control"); err == nil {
		ms.OOMKill = oc["oom_kill"]
	}
	ms.Stat, _ = readKV(dir, "memory.stat")
	return nil
}

// userHZ is the unit of cpuacct.stat: USER_HZ, 100 on every Linux ABI.
const userHZ = 100

func cpuacctStatsV1(dir string, cs *CPUStats) error {
	var err error
	if cs.Usage, err = readUint(dir, "cpuacct.usage"); err != nil {
		return err
	}
	if s, err := readFile(dir, "cpuacct.usage_percpu"); err == nil {
		for _, f := range strings.Fields(s) {
			v, _ := strconv.ParseUint(f, 10, 64)
			cs.PerCPU = append(cs.PerCPU, v)
		}
	}
	if st, err := readKV(dir, "cpuacct.stat"); err == nil {
		cs.User = st["user"] * (1e9 / userHZ)
		cs.System = st["system"] * (1e9 / userHZ)
	}
	return nil
}

// blkioStatsV1 prefers the throttle counters: the block layer keeps them
// for every bio whatever the I/O scheduler, where the CFQ and BFQ files
// count only I/O their scheduler saw.
func blkioStatsV1(dir string) BlkIOStats {
	var s BlkIOStats
	for _, pair := range [][2]string{
		{"blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_serviced_recursive"},
		{"blkio.io_service_bytes_recursive", "blkio.io_serviced_recursive"},
		{"blkio.bfq.io_service_bytes_recursive", "blkio.bfq.io_serviced_recursive"},
	} {
		b, err := os.ReadFile(filepath.Join(dir, pair[0]))
		if err != nil {
			continue
		}
		s.ServiceBytes = parseBlkioV1(string(b))
		if b, err := os.ReadFile(filepath.Join(dir, pair[1])); err == nil {
			s.Serviced = parseBlkioV1(string(b))
		}
		return s
	}
	return s
}

// hugetlbStats reads hugetlb.<size><suffix> for each page size the
// directory has files for.
func hugetlbStats(dir, usage, maxUsage, fail string) map[string]HugetlbStats {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := map[string]HugetlbStats{}
	for _, e := range entries {
		name := e.Name()
		size, ok := strings.CutPrefix(name, "hugetlb.")
		if !ok {
			continue
		}
		size, ok = strings.CutSuffix(size, usage)
		if !ok || strings.Contains(size, ".") {
			continue
		}
		var h HugetlbStats
		h.Usage, _ = readUint(dir, name)
		if maxUsage != "" {
			h.MaxUsage, _ = readUint(dir, "hugetlb."+size+maxUsage)
		}
		if strings.HasPrefix(fail, "events:") {
			if ev, err := readKV(dir, "hugetlb."+size+".events"); err == nil {
				h.Failcnt = ev[strings.TrimPrefix(fail, "events:")]
			}
		} else {
			h.Failcnt, _ = readUint(dir, "hugetlb."+size+fail)
		}
		out[size] = h
	}
	return out
}
