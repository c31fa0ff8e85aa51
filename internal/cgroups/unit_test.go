package cgroups

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }
func u32(v uint32) *uint32 { return &v }
func boolp(v bool) *bool   { return &v }

func TestResolve(t *testing.T) {
	tests := []struct {
		name, path, id string
		want           string
		err            error
	}{
		{"default", "", "c1", "berth/c1", nil},
		{"absolute", "/a/b", "c1", "a/b", nil},
		{"absolute dotdot stays under root", "/../../x", "c1", "x", nil},
		{"relative goes under berth", "pod/c1", "c1", "berth/pod/c1", nil},
		{"relative escaping", "../x", "c1", "", errdefs.ErrInvalidArgument},
		{"root itself", "/", "c1", "", errdefs.ErrInvalidArgument},
		{"systemd form", "system.slice:berth:c1", "c1", "", errdefs.ErrNotImplemented},
		{"no id", "", "", "", errdefs.ErrInvalidArgument},
		{"id with slash", "", "a/b", "", errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolve(tt.path, tt.id)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got %q, %v; want %v", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

const hybridMountinfo = `22 1 0:21 / / rw - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw
`

func TestParseLayout(t *testing.T) {
	ctrls := func(s string) func(string) ([]byte, error) {
		return func(string) ([]byte, error) { return []byte(s), nil }
	}
	tests := []struct {
		name      string
		mountinfo string
		v2ctrls   string
		mode      Mode
		v1        map[string]string
		unified   string
	}{
		{"hybrid", hybridMountinfo, "hugetlb\n", Hybrid,
			map[string]string{"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct", "memory": "/sys/fs/cgroup/memory"},
			"/sys/fs/cgroup/unified"},
		{"unified", "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n", "cpu memory pids", Unified,
			map[string]string{}, "/sys/fs/cgroup"},
		{"legacy", "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", "", Legacy,
			map[string]string{"memory": "/sys/fs/cgroup/memory"}, ""},
		{"escaped mount point", "35 31 0:32 / /cg\\040v2 rw - cgroup2 cgroup2 rw\n", "", Unified,
			map[string]string{}, "/cg v2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := parseLayout(strings.NewReader(tt.mountinfo), ctrls(tt.v2ctrls))
			if err != nil {
				t.Fatal(err)
			}
			if l.mode != tt.mode || l.unified != tt.unified || len(l.v1) != len(tt.v1) {
				t.Fatalf("got %v %q %v", l.mode, l.unified, l.v1)
			}
			for c, p := range tt.v1 {
				if l.v1[c] != p {
					t.Errorf("%s at %q, want %q", c, l.v1[c], p)
				}
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		if _, err := parseLayout(strings.NewReader("22 1 0:21 / / rw - ext4 /dev/vda rw\n"), ctrls("")); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("got %v, want not found", err)
		}
	})
	t.Run("hybrid lists v2 controllers", func(t *testing.T) {
		l, err := parseLayout(strings.NewReader(hybridMountinfo), ctrls("hugetlb\n"))
		if err != nil || !slices.Equal(l.unifiedControllers, []string{"hugetlb"}) {
			t.Fatalf("got %v, %v", l, err)
		}
	})
}

func TestSharesToWeight(t *testing.T) {
	for _, tt := range []struct{ shares, want uint64 }{
		{0, 1}, {2, 1}, {1024, 39}, {262144, 10000}, {1 << 30, 10000},
	} {
		if got := SharesToWeight(tt.shares); got != tt.want {
			t.Errorf("SharesToWeight(%d) = %d, want %d", tt.shares, got, tt.want)
		}
	}
	for _, tt := range []struct {
		w    uint16
		want uint64
	}{{10, 1}, {500, 4950}, {1000, 10000}, {5, 1}} {
		if got := BlkioToIOWeight(tt.w); got != tt.want {
			t.Errorf("BlkioToIOWeight(%d) = %d, want %d", tt.w, got, tt.want)
		}
	}
}

func TestDeviceLines(t *testing.T) {
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(136), Access: "rw"},
		{Allow: false, Type: "b", Major: i64(8), Minor: i64(-1), Access: "m"},
		{Allow: false, Type: "a", Major: i64(5), Access: "m"},
		{Allow: true, Type: "a"},
	}
	files, lines, err := deviceLines(rules)
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{"devices.deny", "devices.allow", "devices.allow", "devices.deny", "devices.deny", "devices.deny", "devices.allow"}
	wantLines := []string{"a", "c 1:3 rwm", "c 136:* rw", "b 8:* m", "c 5:* m", "b 5:* m", "a"}
	if !slices.Equal(files, wantFiles) || !slices.Equal(lines, wantLines) {
		t.Fatalf("got %q %q, want %q %q", files, lines, wantFiles, wantLines)
	}
	if _, _, err := deviceLines([]specs.LinuxDeviceCgroup{{Type: "q"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("bad type: got %v", err)
	}
}

func TestV1SetWritesFiles(t *testing.T) {
	l, root := fakeV1(t, "berth/c1")
	m := newV1(l, "berth/c1")
	weight := u16(300)
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(128 << 20), Reservation: i64(32 << 20),
			KernelTCP: i64(8 << 20), Swappiness: u64(10), DisableOOMKiller: boolp(true), UseHierarchy: boolp(true)},
		CPU: &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000), Burst: u64(1000),
			RealtimePeriod: u64(1000000), RealtimeRuntime: i64(5000), Cpus: "0", Mems: "0", Idle: i64(1)},
		Pids: &specs.LinuxPids{Limit: i64(42)},
		BlockIO: &specs.LinuxBlockIO{Weight: u16(500), LeafWeight: u16(200),
			WeightDevice:            []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Weight: weight}},
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1000}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, Rate: 7}}},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}},
		Devices:        []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rw"}},
		Network:        &specs.LinuxNetwork{ClassID: u32(0x100001), Priorities: []specs.LinuxInterfacePriority{{Name: "eth0", Priority: 5}}},
		Rdma:           map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: u32(3), HcaObjects: u32(100)}},
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"memory/berth/c1/memory.limit_in_bytes":            "67108864",
		"memory/berth/c1/memory.memsw.limit_in_bytes":      "134217728",
		"memory/berth/c1/memory.soft_limit_in_bytes":       "33554432",
		"memory/berth/c1/memory.kmem.tcp.limit_in_bytes":   "8388608",
		"memory/berth/c1/memory.swappiness":                "10",
		"memory/berth/c1/memory.oom_control":               "1",
		"memory/berth/c1/memory.use_hierarchy":             "1",
		"cpu/berth/c1/cpu.shares":                          "512",
		"cpu/berth/c1/cpu.cfs_quota_us":                    "50000",
		"cpu/berth/c1/cpu.cfs_period_us":                   "100000",
		"cpu/berth/c1/cpu.cfs_burst_us":                    "1000",
		"cpu/berth/c1/cpu.rt_period_us":                    "1000000",
		"cpu/berth/c1/cpu.rt_runtime_us":                   "5000",
		"cpu/berth/c1/cpu.idle":                            "1",
		"cpuset/berth/c1/cpuset.cpus":                      "0",
		"cpuset/berth/c1/cpuset.mems":                      "0",
		"pids/berth/c1/pids.max":                           "42",
		"blkio/berth/c1/blkio.weight":                      "500",
		"blkio/berth/c1/blkio.leaf_weight":                 "200",
		"blkio/berth/c1/blkio.weight_device":               "8:0 300",
		"blkio/berth/c1/blkio.throttle.read_bps_device":    "8:0 1000",
		"blkio/berth/c1/blkio.throttle.write_iops_device":  "8:16 7",
		"hugetlb/berth/c1/hugetlb.2MB.limit_in_bytes":      "4194304",
		"hugetlb/berth/c1/hugetlb.2MB.rsvd.limit_in_bytes": "4194304",
		"devices/berth/c1/devices.deny":                    "a",
		"devices/berth/c1/devices.allow":                   "c 1:3 rw",
		"net_cls/berth/c1/net_cls.classid":                 "1048577",
		"net_prio/berth/c1/net_prio.ifpriomap":             "eth0 5",
		"rdma/berth/c1/rdma.max":                           "mlx5_0 hca_handle=3 hca_object=100",
	}
	for p, v := range want {
		if got := readTree(t, filepath.Join(root, p)); got != v {
			t.Errorf("%s = %q, want %q", p, got, v)
		}
	}
}

// TestV1SetSkipsUnset checks the hot path: a spec with nothing set writes
// nothing, so even a tree without control files is fine.
func TestV1SetSkipsUnset(t *testing.T) {
	root := t.TempDir()
	l := &layout{mode: Legacy, v1: map[string]string{"memory": filepath.Join(root, "memory"), "cpu": filepath.Join(root, "cpu")}}
	m := newV1(l, "berth/c1")
	r := &specs.LinuxResources{Memory: &specs.LinuxMemory{}, CPU: &specs.LinuxCPU{}, BlockIO: &specs.LinuxBlockIO{}}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
}

func TestV1SetErrors(t *testing.T) {
	tests := []struct {
		name string
		r    specs.LinuxResources
		err  error
		text string
	}{
		{"unified on v1", specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}, errdefs.ErrNotImplemented, "unified"},
		{"swappiness range", specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: u64(101)}}, errdefs.ErrInvalidArgument, "swappiness"},
		{"bad page size", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2XB"}}}, errdefs.ErrInvalidArgument, "2XB"},
		{"missing page size file", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "1GB"}}}, errdefs.ErrNotImplemented, "hugetlb.1GB.limit_in_bytes"},
		{"bad device", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "c", Access: "x"}}}, errdefs.ErrInvalidArgument, "access"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := fakeV1(t, "berth/c1")
			err := newV1(l, "berth/c1").Set(&tt.r)
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("got %v, want %v naming %q", err, tt.err, tt.text)
			}
		})
	}
	t.Run("controller not mounted", func(t *testing.T) {
		l := &layout{mode: Legacy, v1: map[string]string{"memory": t.TempDir()}}
		err := newV1(l, "berth/c1").Set(&specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: u32(1)}})
		if !errors.Is(err, errdefs.ErrNotImplemented) || !strings.Contains(err.Error(), "net_cls") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestV2SetWritesFiles(t *testing.T) {
	l, root := fakeV2(t, "berth/c1")
	m := newV2(l.unified, "berth/c1", l.unifiedControllers)
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(96 << 20), Reservation: i64(16 << 20), Kernel: i64(1 << 20)},
		CPU:    &specs.LinuxCPU{Shares: u64(1024), Quota: i64(25000), Period: u64(50000), Burst: u64(500), Cpus: "0-1", Mems: "0", Idle: i64(0)},
		Pids:   &specs.LinuxPids{Limit: i64(-1)},
		BlockIO: &specs.LinuxBlockIO{Weight: u16(1000),
			ThrottleWriteBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 2048}}},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 2 << 20}},
		Rdma:           map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: u32(1)}},
		Unified:        map[string]string{"memory.high": "50000000"},
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"memory.max":           "67108864",
		"memory.swap.max":      "33554432",
		"memory.low":           "16777216",
		"cpu.weight":           "39",
		"cpu.max":              "25000 50000",
		"cpu.max.burst":        "500",
		"cpu.idle":             "0",
		"cpuset.cpus":          "0-1",
		"cpuset.mems":          "0",
		"pids.max":             "max",
		"io.weight":            "10000",
		"io.max":               "8:0 wbps=2048",
		"hugetlb.2MB.max":      "2097152",
		"hugetlb.2MB.rsvd.max": "2097152",
		"rdma.max":             "mlx5_0 hca_handle=1",
		"memory.high":          "50000000",
	}
	for f, v := range want {
		if got := readTree(t, filepath.Join(root, "berth/c1", f)); got != v {
			t.Errorf("%s = %q, want %q", f, got, v)
		}
	}
	// Only the quota changes: the period already in cpu.max stays.
	if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(-1)}}); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, filepath.Join(root, "berth/c1/cpu.max")); got != "max 50000" {
		t.Errorf("cpu.max = %q, want %q", got, "max 50000")
	}
}

func TestV2SetErrors(t *testing.T) {
	tests := []struct {
		name string
		r    specs.LinuxResources
		err  error
		text string
	}{
		{"swap below limit", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(100), Swap: i64(50)}}, errdefs.ErrInvalidArgument, "below"},
		{"swap without limit", specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: i64(50)}}, errdefs.ErrInvalidArgument, "needs a memory limit"},
		{"swappiness", specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: u64(1)}}, errdefs.ErrNotImplemented, "swappiness"},
		{"limit below usage", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(100), CheckBeforeUpdate: boolp(true)}}, errdefs.ErrConflict, "below current usage 4096"},
		{"realtime", specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: i64(1)}}, errdefs.ErrNotImplemented, "realtime"},
		{"leaf weight", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{LeafWeight: u16(10)}}, errdefs.ErrNotImplemented, "leaf"},
		{"net_cls", specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: u32(1)}}, errdefs.ErrNotImplemented, "net_cls"},
		{"unified escape", specs.LinuxResources{Unified: map[string]string{"../memory.max": "1"}}, errdefs.ErrInvalidArgument, "../memory.max"},
		{"unified subdir", specs.LinuxResources{Unified: map[string]string{"sub/memory.max": "1"}}, errdefs.ErrInvalidArgument, "sub/memory.max"},
		{"unified procs", specs.LinuxResources{Unified: map[string]string{"cgroup.procs": "1"}}, errdefs.ErrInvalidArgument, "runtime"},
		{"unified no dot", specs.LinuxResources{Unified: map[string]string{"memory": "1"}}, errdefs.ErrInvalidArgument, "control file"},
		{"unified unknown file", specs.LinuxResources{Unified: map[string]string{"misc.max": "1"}}, errdefs.ErrInvalidArgument, "misc"},
		{"unified symlink", specs.LinuxResources{Unified: map[string]string{"memory.evil": "1"}}, errdefs.ErrInvalidArgument, "memory.evil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, root := fakeV2(t, "berth/c1")
			outside := filepath.Join(root, "outside")
			writeTree(t, root, map[string]string{"outside": "keep", "berth/c1/memory.current": "4096"})
			if err := os.Symlink(outside, filepath.Join(root, "berth/c1/memory.evil")); err != nil {
				t.Fatal(err)
			}
			err := newV2(l.unified, "berth/c1", l.unifiedControllers).Set(&tt.r)
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("got %v, want %v naming %q", err, tt.err, tt.text)
			}
			if got := readTree(t, outside); got != "keep" {
				t.Fatalf("file outside the cgroup changed to %q", got)
			}
		})
	}
}

func TestV2EnableWritesOnlyMissing(t *testing.T) {
	l, root := fakeV2(t, "berth/c1")
	writeTree(t, root, map[string]string{"cgroup.subtree_control": "cpu memory"})
	m := newV2(l.unified, "berth/c1", []string{"cpu", "memory", "pids"})
	if err := m.enable(m.want); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, filepath.Join(root, "cgroup.subtree_control")); got != "+pids" {
		t.Errorf("root subtree_control got %q, want +pids", got)
	}
	if got := readTree(t, filepath.Join(root, "berth/cgroup.subtree_control")); got != "+cpu +memory +pids" {
		t.Errorf("berth subtree_control got %q", got)
	}
	// The leaf's own subtree_control is not touched: processes live there,
	// and v2 forbids controllers in a cgroup's subtree while it has them.
	if got := readTree(t, filepath.Join(root, "berth/c1/cgroup.subtree_control")); got != "" {
		t.Errorf("leaf subtree_control got %q", got)
	}
}

func TestHybridSplitsResources(t *testing.T) {
	l1, root1 := fakeV1(t, "berth/c1")
	delete(l1.v1, "hugetlb")
	l2, root2 := fakeV2(t, "berth/c1")
	l := &layout{mode: Hybrid, v1: l1.v1, unified: l2.unified, unifiedControllers: []string{"hugetlb"}}
	r := &specs.LinuxResources{
		Memory:         &specs.LinuxMemory{Limit: i64(1 << 20)},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 2 << 20}},
		Unified:        map[string]string{"memory.high": "7"},
		Devices:        []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
	}
	m := newManager(l, "berth/c1", r).(*hybrid)
	if !slices.Equal(m.v2.want, []string{"hugetlb"}) {
		t.Fatalf("v2 controllers to enable: %v, want [hugetlb]", m.v2.want)
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	for p, v := range map[string]string{
		filepath.Join(root1, "memory/berth/c1/memory.limit_in_bytes"): "1048576",
		filepath.Join(root1, "devices/berth/c1/devices.deny"):         "a",
		filepath.Join(root2, "berth/c1/hugetlb.2MB.max"):              "2097152",
		filepath.Join(root2, "berth/c1/memory.high"):                  "7",
		filepath.Join(root2, "berth/c1/memory.max"):                   "",
	} {
		if got := readTree(t, p); got != v {
			t.Errorf("%s = %q, want %q", p, got, v)
		}
	}
	paths := m.Paths()
	if paths[""] != filepath.Join(root2, "berth/c1") || paths["memory"] != filepath.Join(root1, "memory/berth/c1") {
		t.Fatalf("paths %v", paths)
	}
	back, err := load(l, paths)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := back.(*hybrid); !ok {
		t.Fatalf("load gave %T, want hybrid", back)
	}
}

func TestLoadChecksPaths(t *testing.T) {
	l, root := fakeV2(t, "berth/c1")
	tests := []struct {
		name  string
		paths map[string]string
		err   error
	}{
		{"outside the hierarchy", map[string]string{"": "/etc"}, errdefs.ErrInvalidArgument},
		{"the hierarchy root", map[string]string{"": root + "/"}, errdefs.ErrInvalidArgument},
		{"dotdot to the root", map[string]string{"": root + "/berth/.."}, errdefs.ErrInvalidArgument},
		{"controller not mounted", map[string]string{"memory": filepath.Join(root, "x")}, errdefs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := load(l, tt.paths); !errors.Is(err, tt.err) {
				t.Fatalf("got %v, want %v", err, tt.err)
			}
		})
	}
	m, err := load(l, map[string]string{"": filepath.Join(root, "berth/c1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.(*v2); !ok {
		t.Fatalf("got %T, want v2", m)
	}
}

func TestStatsFromFakeTrees(t *testing.T) {
	t.Run("v1", func(t *testing.T) {
		l, root := fakeV1(t, "berth/c1")
		writeTree(t, root, map[string]string{
			"memory/berth/c1/memory.usage_in_bytes":                    "1000",
			"memory/berth/c1/memory.max_usage_in_bytes":                "2000",
			"memory/berth/c1/memory.limit_in_bytes":                    "9223372036854771712",
			"memory/berth/c1/memory.failcnt":                           "3",
			"memory/berth/c1/memory.oom_control":                       "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
			"memory/berth/c1/memory.stat":                              "cache 5\nrss 6\n",
			"cpu/berth/c1/cpuacct.usage":                               "123456",
			"cpu/berth/c1/cpuacct.usage_percpu":                        "100000 23456 \n",
			"cpu/berth/c1/cpuacct.stat":                                "user 3\nsystem 1\n",
			"cpu/berth/c1/cpu.stat":                                    "nr_periods 10\nnr_throttled 4\nthrottled_time 999\n",
			"pids/berth/c1/pids.current":                               "3",
			"pids/berth/c1/pids.max":                                   "max",
			"blkio/berth/c1/blkio.throttle.io_service_bytes_recursive": "8:0 Read 4096\n8:0 Write 8192\nTotal 12288\n",
			"hugetlb/berth/c1/hugetlb.2MB.usage_in_bytes":              "2097152",
		})
		s, err := newV1(l, "berth/c1").Stats()
		if err != nil {
			t.Fatal(err)
		}
		if s.Memory.Usage != 1000 || s.Memory.MaxUsage != 2000 || s.Memory.Failcnt != 3 || s.Memory.OOMKill != 2 || s.Memory.Stat["rss"] != 6 {
			t.Errorf("memory %+v", s.Memory)
		}
		if s.CPU.Usage != 123456 || !slices.Equal(s.CPU.PerCPU, []uint64{100000, 23456}) || s.CPU.User != 3e7 || s.CPU.ThrottledPeriods != 4 {
			t.Errorf("cpu %+v", s.CPU)
		}
		if s.Pids.Current != 3 || s.Pids.Limit != math.MaxUint64 {
			t.Errorf("pids %+v", s.Pids)
		}
		if len(s.BlkIO.ServiceBytes) != 2 || s.BlkIO.ServiceBytes[1] != (BlkIOEntry{8, 0, "Write", 8192}) {
			t.Errorf("blkio %+v", s.BlkIO)
		}
		if s.Hugetlb["2MB"].Usage != 2097152 {
			t.Errorf("hugetlb %+v", s.Hugetlb)
		}
	})
	t.Run("v2", func(t *testing.T) {
		l, root := fakeV2(t, "berth/c1")
		writeTree(t, root, map[string]string{
			"berth/c1/memory.current":      "4096",
			"berth/c1/memory.max":          "max",
			"berth/c1/memory.peak":         "8192",
			"berth/c1/memory.events":       "low 0\nhigh 0\nmax 5\noom 2\noom_kill 1\n",
			"berth/c1/cpu.stat":            "usage_usec 10\nuser_usec 7\nsystem_usec 3\nnr_periods 2\nnr_throttled 1\nthrottled_usec 4\n",
			"berth/c1/pids.current":        "2",
			"berth/c1/pids.max":            "10",
			"berth/c1/io.stat":             "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
			"berth/c1/hugetlb.2MB.current": "0",
			"berth/c1/hugetlb.2MB.events":  "max 4\n",
		})
		s, err := newV2(l.unified, "berth/c1", nil).Stats()
		if err != nil {
			t.Fatal(err)
		}
		if s.Memory.Usage != 4096 || s.Memory.Limit != math.MaxUint64 || s.Memory.MaxUsage != 8192 || s.Memory.OOM != 2 || s.Memory.OOMKill != 1 || s.Memory.Failcnt != 5 {
			t.Errorf("memory %+v", s.Memory)
		}
		if s.CPU.Usage != 10000 || s.CPU.User != 7000 || s.CPU.ThrottledTime != 4000 {
			t.Errorf("cpu %+v", s.CPU)
		}
		if s.Pids != (PidsStats{2, 10}) {
			t.Errorf("pids %+v", s.Pids)
		}
		if len(s.BlkIO.ServiceBytes) != 2 || len(s.BlkIO.Serviced) != 2 || s.BlkIO.Serviced[1].Value != 2 {
			t.Errorf("io %+v", s.BlkIO)
		}
		if s.Hugetlb["2MB"].Failcnt != 4 {
			t.Errorf("hugetlb %+v", s.Hugetlb)
		}
	})
}

func TestWriteErrorNamesFileAndValue(t *testing.T) {
	dir := t.TempDir()
	err := writeFile(dir, "memory.max", "12")
	if !errors.Is(err, errdefs.ErrNotImplemented) || !strings.Contains(err.Error(), `"12"`) || !strings.Contains(err.Error(), filepath.Join(dir, "memory.max")) {
		t.Fatalf("got %v", err)
	}
}

// TestV2SetEnablesControllerOnDemand: a limit whose controller Apply did
// not enable gets it enabled down the tree, then the write is retried. The
// fake kernel makes no files on enabling, so the retry still fails, naming
// the file.
func TestV2SetEnablesControllerOnDemand(t *testing.T) {
	l, root := fakeV2(t, "berth/c1")
	if err := os.Remove(filepath.Join(root, "berth/c1/hugetlb.2MB.max")); err != nil {
		t.Fatal(err)
	}
	m := newV2(l.unified, "berth/c1", nil)
	err := m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 21}}})
	if !errors.Is(err, errdefs.ErrNotImplemented) || !strings.Contains(err.Error(), "hugetlb.2MB.max") {
		t.Fatalf("got %v", err)
	}
	for _, d := range []string{"", "berth"} {
		if got := readTree(t, filepath.Join(root, d, "cgroup.subtree_control")); got != "+hugetlb" {
			t.Errorf("%s/cgroup.subtree_control = %q, want +hugetlb", d, got)
		}
	}
}
