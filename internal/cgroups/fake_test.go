package cgroups

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree creates files (path relative to root -> content) under root,
// making a fake cgroupfs: the kernel's control files exist, anything else
// does not, so a write to a file the kernel lacks fails as it would.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, v := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readTree(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// v1Files are the control files of a v1 container cgroup, per controller.
var v1Files = map[string][]string{
	"memory": {"memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes",
		"memory.kmem.tcp.limit_in_bytes", "memory.swappiness", "memory.oom_control", "memory.use_hierarchy",
		"memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.failcnt", "memory.stat",
		"memory.memsw.usage_in_bytes", "cgroup.procs"},
	"cpu": {"cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.cfs_burst_us", "cpu.rt_period_us",
		"cpu.rt_runtime_us", "cpu.idle", "cpu.stat", "cpuacct.usage", "cpuacct.usage_percpu", "cpuacct.stat", "cgroup.procs"},
	"cpuset":   {"cpuset.cpus", "cpuset.mems", "cgroup.procs"},
	"pids":     {"pids.max", "pids.current", "cgroup.procs"},
	"blkio":    {"blkio.weight", "blkio.weight_device", "blkio.leaf_weight", "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device", "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device", "blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_serviced_recursive", "cgroup.procs"},
	"devices":  {"devices.allow", "devices.deny", "cgroup.procs"},
	"freezer":  {"freezer.state", "cgroup.procs"},
	"hugetlb":  {"hugetlb.2MB.limit_in_bytes", "hugetlb.2MB.rsvd.limit_in_bytes", "hugetlb.2MB.usage_in_bytes", "hugetlb.2MB.max_usage_in_bytes", "hugetlb.2MB.failcnt", "cgroup.procs"},
	"net_cls":  {"net_cls.classid", "cgroup.procs"},
	"net_prio": {"net_prio.ifpriomap", "cgroup.procs"},
	"rdma":     {"rdma.max", "cgroup.procs"},
}

// fakeV1 builds a v1 layout in a temp dir with cpu and cpuacct mounted
// together, as many distributions do, and the container's directories made.
func fakeV1(t *testing.T, rel string) (*layout, string) {
	t.Helper()
	root := t.TempDir()
	l := &layout{mode: Legacy, v1: map[string]string{}}
	files := map[string]string{}
	for ctrl, names := range v1Files {
		l.v1[ctrl] = filepath.Join(root, ctrl)
		for _, n := range names {
			files[filepath.Join(ctrl, rel, n)] = ""
		}
	}
	l.v1["cpuacct"] = l.v1["cpu"]
	writeTree(t, root, files)
	return l, root
}

// v2Files are the control files of a v2 container cgroup with every
// controller enabled.
var v2Files = []string{
	"cgroup.procs", "cgroup.freeze", "cgroup.events", "cgroup.kill", "cgroup.subtree_control", "cgroup.controllers",
	"cpu.weight", "cpu.max", "cpu.max.burst", "cpu.idle", "cpu.stat", "cpuset.cpus", "cpuset.mems",
	"memory.max", "memory.low", "memory.high", "memory.swap.max", "memory.current", "memory.peak",
	"memory.swap.current", "memory.events", "memory.stat", "pids.max", "pids.current",
	"io.weight", "io.max", "io.stat", "hugetlb.2MB.max", "hugetlb.2MB.rsvd.max", "hugetlb.2MB.current",
	"hugetlb.2MB.events", "rdma.max",
}

func fakeV2(t *testing.T, rel string) (*layout, string) {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"cgroup.controllers":     "cpuset cpu io memory hugetlb pids rdma",
		"cgroup.subtree_control": "",
	}
	for d := rel; d != "."; d = filepath.Dir(d) {
		files[filepath.Join(d, "cgroup.subtree_control")] = ""
	}
	for _, n := range v2Files {
		if _, ok := files[filepath.Join(rel, n)]; !ok {
			files[filepath.Join(rel, n)] = ""
		}
	}
	files[filepath.Join(rel, "cpu.max")] = "max 100000"
	writeTree(t, root, files)
	return &layout{mode: Unified, unified: root, unifiedControllers: strings.Fields(files["cgroup.controllers"])}, root
}
