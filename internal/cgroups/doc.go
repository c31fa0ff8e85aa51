// Package cgroups puts a container's processes in cgroups, writes their
// limits, and reads, freezes, signals and removes them, on cgroup v1,
// cgroup v2 and hybrid hosts behind one Manager.
//
// # Layouts
//
// The layout comes from /proc/self/mountinfo, read once per process:
//
//   - Unified: only a cgroup2 mount. One directory; limits in memory.max,
//     cpu.max, io.max and so on; devices through an eBPF program
//     (package devicefilter); freeze with cgroup.freeze; SIGKILL with
//     cgroup.kill.
//   - Legacy: only v1 hierarchies. One directory per hierarchy, the same
//     relative path in each; devices.allow/deny; freezer.state.
//   - Hybrid: v1 hierarchies plus a cgroup2 mount beside them whose
//     cgroup.controllers lists what no v1 hierarchy took. Each controller
//     is driven where it is mounted, the v2 cgroup tracks every process
//     (Pids, and Kill by cgroup.kill) and takes the unified key/values.
//     On the machines berth is developed on, hugetlb is the only v2
//     controller; crun refuses such hosts, runc copes, and so do we.
//
// # Where a container's cgroup goes
//
// Config.Path is linux.cgroupsPath. Absolute: that path under each
// hierarchy's root. Relative: under <root>/berth. Empty: <root>/berth/<id>.
// Never under the caller's own cgroup, which may belong to someone else.
// runc's systemd form "slice:prefix:name" is refused with ErrNotImplemented
// (berth has no systemd driver). Destroy removes the container's cgroup and
// the empty parents berth owns (below and including <root>/berth, and any
// this process's Apply created); it never signals a process, and gives
// exiting processes about a second to leave before it fails with
// ErrConflict. Load refuses paths outside a hierarchy or at its root.
//
// # Semantics worth knowing
//
//   - Fields left nil are not written; as in runc, 0 also means "unset" for
//     the memory byte limits, cpu shares/quota/period and blkio weights.
//     The spec's -1 means "no limit" (v1 "-1", v2 "max").
//   - Device rules mean the same on both versions: v1 gets them written in
//     order to devices.allow/deny; v2 gets an eBPF program built from the
//     v1 controller's model of them (package devicefilter), checked
//     against a real v1 devices.list by a root test.
//   - cpu.shares become cpu.weight on v2 (SharesToWeight), blkio weights
//     io.weight (BlkioToIOWeight) or io.bfq.weight as is; memory.swap is
//     memory+swap on v1 and becomes swap alone (memory.swap.max) on v2.
//   - v1 cpu.rt_runtime_us: the realtime budget of berth-owned parents is
//     raised as needed, since a new cgroup has none to share.
//   - Kill freezes, signals every process, thaws (so nothing forks past
//     it); a frozen container stays frozen except for SIGKILL, which also
//     thaws it so v1-frozen tasks can die. On v2 and hybrid hosts SIGKILL
//     is one write to cgroup.kill.
//   - Where a limit's controller is not mounted (net_cls here, or v2 for
//     swappiness, realtime, kernelTCP, leaf weights, disableOOMKiller), Set
//     fails with ErrNotImplemented naming it rather than drop the limit.
//     Kernel memory (deprecated, a no-op since Linux 6.1) is written on v1
//     where the file still exists and ignored on v2.
//   - On a hybrid host the v2 controllers a spec needs are enabled in the
//     v2 hierarchy on demand, which means writing e.g. +hugetlb to its root's
//     cgroup.subtree_control; nothing is written there otherwise.
//
// The Manager methods take no context: the runtime engineers agreed the
// signatures up front, and every call is a bounded number of writes to
// cgroupfs (Freeze waits at most 5s, Destroy about 1s).
//
// # Cost
//
// Apply and Set are on the path of every container start. New touches no
// file; Apply is one mkdir and one write of cgroup.procs per hierarchy
// (plus the cpuset copy-down when it creates a cpuset directory, and on v2
// one read of each ancestor's cgroup.subtree_control, writing only the
// controllers missing there); Set writes only fields the spec sets and
// reads nothing except where the kernel's ordering rules force it.
//
// # What it must not know
//
// Nothing about containers beyond an id and a spec's resources: no state
// directory, no processes it did not get a pid for. It owns, on disk, only
// the cgroup directories it creates under the hierarchies.
//
// # Tests
//
// Unit tests run on fake cgroupfs trees in t.TempDir() for all three
// layouts: the files each resource writes, shares→weight, device rules to
// v1 lines, unified key checks, path resolution, mountinfo detection. Root
// tests use the real hierarchies of the host: on this hybrid host, v1
// memory limits (a process allocating past it is OOM-killed), pids limits
// (a fork is refused), freeze and thaw, Kill, Stats; and on the v2
// hierarchy, which lists no controller but hugetlb, what works without
// controllers: a cgroup, cgroup.procs, cgroup.freeze, cgroup.kill and the
// eBPF device filter (a process in the cgroup cannot open /dev/null but can
// open /dev/zero). v2 limits (memory.max, cpu.max, io.max, pids.max) are
// tested only against the fake tree, since this host cannot enable those
// controllers on v2.
//
// # API
//
//	type Config struct{ Path, Name string; Resources *specs.LinuxResources }
//	func New(cfg Config) (Manager, error)               // detects the layout; creates nothing
//	func Load(paths map[string]string) (Manager, error) // from Manager.Paths() saved in state
//	func HostMode() (Mode, error)                       // Legacy, Hybrid or Unified
//	type Manager interface {
//		Apply(pid int) error                // create the cgroup(s), move pid in (pid <= 0: create only)
//		Set(r *specs.LinuxResources) error  // write limits (create and update)
//		Stats() (*Stats, error)
//		Freeze(frozen bool) error           // returns when the state is reached
//		Kill(sig unix.Signal) error         // every process in the cgroup
//		Destroy() error                     // remove the cgroup(s); kills nothing
//		Pids() ([]int, error)
//		Paths() map[string]string           // v1 controller, or "" for v2 -> absolute dir
//	}
//	func SharesToWeight(shares uint64) uint64
//	func BlkioToIOWeight(w uint16) uint64
package cgroups
