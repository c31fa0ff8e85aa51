package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cgroups/devicefilter"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

// newRoot returns a manager for a fresh container id on the host's real
// hierarchies, destroyed in t.Cleanup after the test's processes are gone.
func newRoot(t *testing.T, cfg Config) Manager {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = testID(t)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("destroy: %v", err)
		}
	})
	return m
}

func requireMode(t *testing.T, modes ...Mode) Mode {
	t.Helper()
	mode, err := HostMode()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(modes, mode) {
		t.Skipf("needs a %v cgroup host; this one is %v", modes, mode)
	}
	return mode
}

func TestRootPlacement(t *testing.T) {
	testutil.RequireRoot(t)
	l, err := hostLayout()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		rel  string
	}{
		{"default", Config{Name: "test-place"}, "berth/test-place"},
		{"relative", Config{Name: "x", Path: "test-pod/c1"}, "berth/test-pod/c1"},
		{"absolute", Config{Name: "x", Path: "/berth-test-abs/a/b"}, "berth-test-abs/a/b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = m.Destroy() }) // in case the test stops early
			if err := m.Apply(0); err != nil {
				t.Fatal(err)
			}
			paths := m.Paths()
			for c, root := range l.v1 {
				if paths[c] != filepath.Join(root, tt.rel) {
					t.Errorf("%s at %s, want %s", c, paths[c], filepath.Join(root, tt.rel))
				}
			}
			if l.unified != "" && paths[""] != filepath.Join(l.unified, tt.rel) {
				t.Errorf("v2 at %s", paths[""])
			}
			for _, p := range paths {
				if strings.Contains(p, "process_api") {
					t.Errorf("path %s is under the caller's cgroup", p)
				}
				if _, err := os.Stat(p); err != nil {
					t.Errorf("not created: %v", err)
				}
			}
			// A later process (the runtime's delete) destroys from the saved
			// paths; the leak check then sees every parent gone too.
			back, err := Load(paths)
			if err != nil {
				t.Fatal(err)
			}
			if err := back.Destroy(); err != nil {
				t.Fatal(err)
			}
			if err := m.Destroy(); err != nil {
				t.Fatal(err)
			}
			for _, p := range paths {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left: %v", p, err)
				}
			}
		})
	}
}

func TestRootBadInputLeavesNothing(t *testing.T) {
	testutil.RequireRoot(t)
	if _, err := New(Config{Name: "x", Path: "system.slice:berth:x"}); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Fatalf("systemd path: got %v", err)
	}
	m := newRoot(t, Config{})
	if err := m.Apply(0); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Paths()["cpu"]; ok {
		// The kernel refuses a CFS period below 1ms.
		err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64(10)}})
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "cpu.cfs_period_us") || !strings.Contains(err.Error(), `"10"`) {
			t.Fatalf("got %v, want invalid argument naming cpu.cfs_period_us and 10", err)
		}
	}
	if _, ok := m.Paths()["memory"]; ok {
		err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(32 << 20)}})
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "memsw") {
			t.Fatalf("got %v, want invalid argument naming memsw", err)
		}
	}
}

func TestRootMemoryLimitOOMKills(t *testing.T) {
	testutil.RequireRoot(t)
	requireMode(t, Legacy, Hybrid)
	m := newRoot(t, Config{})
	p := startGo(t, "alloc")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	limit := int64(48 << 20)
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}}); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, filepath.Join(m.Paths()["memory"], "memory.limit_in_bytes")); got != "50331648" {
		t.Fatalf("memory.limit_in_bytes = %s", got)
	}
	p.release(t)
	st := p.wait(t, 30*time.Second)
	if !signaled(st, unix.SIGKILL) {
		t.Fatalf("helper allocating 512MB under a 48MB limit ended with %v, output %q", st, output(p))
	}
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.Memory.OOMKill == 0 || s.Memory.Limit != uint64(limit) {
		t.Fatalf("memory stats after an OOM kill: %+v", s.Memory)
	}
}

func TestRootMemoryUpdateGrowsAndShrinks(t *testing.T) {
	testutil.RequireRoot(t)
	requireMode(t, Legacy, Hybrid)
	m := newRoot(t, Config{})
	if err := m.Apply(0); err != nil {
		t.Fatal(err)
	}
	dir := m.Paths()["memory"]
	for _, step := range []struct{ limit, swap int64 }{
		{64 << 20, 128 << 20},
		{256 << 20, 512 << 20}, // both above the old memsw: memsw must go first
		{32 << 20, 32 << 20},   // both below the old limit: limit must go first
	} {
		if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &step.limit, Swap: &step.swap}}); err != nil {
			t.Fatalf("limit %d swap %d: %v", step.limit, step.swap, err)
		}
		if got, want := readTree(t, filepath.Join(dir, "memory.limit_in_bytes")), limitString(step.limit); got != want {
			t.Errorf("limit %s, want %s", got, want)
		}
		if got, want := readTree(t, filepath.Join(dir, "memory.memsw.limit_in_bytes")), limitString(step.swap); got != want {
			t.Errorf("memsw %s, want %s", got, want)
		}
	}
}

func TestRootPidsLimitRefusesFork(t *testing.T) {
	testutil.RequireRoot(t)
	m := newRoot(t, Config{})
	if _, ok := m.Paths()["pids"]; !ok {
		t.Skip("no v1 pids hierarchy on this host")
	}
	p := startSh(t, `read x; "$BB" true; echo "rc=$?"`)
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(1)}}); err != nil {
		t.Fatal(err)
	}
	p.release(t)
	p.wait(t, 10*time.Second)
	out := output(p)
	if strings.Contains(out, "rc=0") || !strings.Contains(out, "fork") {
		t.Fatalf("fork under pids.max=1: output %q, want a refused fork", out)
	}
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.Pids.Limit != 1 {
		t.Fatalf("pids stats %+v", s.Pids)
	}
}

// checkFrozen asserts that a busy process gets no CPU time while frozen
// and gets it again after the thaw.
func checkFrozen(t *testing.T, freeze func(bool) error, pid int) {
	t.Helper()
	if err := freeze(true); err != nil {
		t.Fatal(err)
	}
	before := cpuTicks(t, pid)
	time.Sleep(200 * time.Millisecond)
	if after := cpuTicks(t, pid); after != before {
		t.Fatalf("frozen process used %d ticks", after-before)
	}
	if err := freeze(false); err != nil {
		t.Fatal(err)
	}
	before = cpuTicks(t, pid)
	deadline := time.Now().Add(2 * time.Second)
	for cpuTicks(t, pid) == before {
		if time.Now().After(deadline) {
			t.Fatal("thawed process got no CPU time in 2s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRootFreezeAndThaw(t *testing.T) {
	testutil.RequireRoot(t)
	m := newRoot(t, Config{})
	p := startSh(t, `read x; while :; do :; done`)
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	p.release(t)
	checkFrozen(t, m.Freeze, p.pid())
	if dir, ok := m.Paths()["freezer"]; ok {
		if got := readTree(t, filepath.Join(dir, "freezer.state")); got != "THAWED" {
			t.Fatalf("freezer.state %s after thaw", got)
		}
	}
}

func TestRootKillReachesEveryProcess(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tt := range []struct {
		name   string
		sig    unix.Signal
		paused bool
	}{
		{"SIGKILL", unix.SIGKILL, false},
		{"SIGTERM", unix.SIGTERM, false},
		{"SIGKILL while paused", unix.SIGKILL, true},
	} {
		sig := tt.sig
		t.Run(tt.name, func(t *testing.T) {
			m := newRoot(t, Config{})
			p := startSh(t, `read x; "$BB" sleep 100 & "$BB" sleep 100 & "$BB" sleep 100 & wait`)
			if err := m.Apply(p.pid()); err != nil {
				t.Fatal(err)
			}
			p.release(t)
			var pids []int
			for deadline := time.Now().Add(5 * time.Second); len(pids) < 4; {
				if time.Now().After(deadline) {
					t.Fatalf("cgroup holds %v, want the shell and 3 sleeps", pids)
				}
				time.Sleep(10 * time.Millisecond)
				var err error
				if pids, err = m.Pids(); err != nil {
					t.Fatal(err)
				}
			}
			if tt.paused {
				if err := m.Freeze(true); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.Kill(sig); err != nil {
				t.Fatal(err)
			}
			if st := p.wait(t, 5*time.Second); !signaled(st, sig) {
				t.Fatalf("shell ended with %v", st)
			}
			// The sleeps were the shell's children; with it gone they are
			// init's, so wait for the cgroup to empty rather than reaping.
			for deadline := time.Now().Add(5 * time.Second); ; {
				left, err := m.Pids()
				if err != nil {
					t.Fatal(err)
				}
				if len(left) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("still in the cgroup after kill: %v", left)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestRootStats(t *testing.T) {
	testutil.RequireRoot(t)
	m := newRoot(t, Config{})
	p := startSh(t, `read x; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; read y`)
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(50)}}); err != nil {
		t.Fatal(err)
	}
	p.release(t)
	var s *Stats
	for deadline := time.Now().Add(5 * time.Second); ; {
		var err error
		if s, err = m.Stats(); err != nil {
			t.Fatal(err)
		}
		if s.CPU.Usage > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	paths := m.Paths()
	if _, ok := paths["cpuacct"]; ok && (s.CPU.Usage == 0 || len(s.CPU.PerCPU) != runtime.NumCPU()) {
		t.Errorf("cpu stats %+v", s.CPU)
	}
	if _, ok := paths["memory"]; ok && s.Memory.Limit == 0 {
		t.Errorf("memory stats %+v", s.Memory)
	}
	if _, ok := paths["pids"]; ok && (s.Pids.Current != 1 || s.Pids.Limit != 50) {
		t.Errorf("pids stats %+v", s.Pids)
	}
}

// unifiedManager is a v2 manager on the host's cgroup2 hierarchy whatever
// the layout: on a hybrid host that hierarchy has no controllers to speak
// of, but cgroup.procs, cgroup.freeze, cgroup.kill and device filters need
// none.
func unifiedManager(t *testing.T) *v2 {
	t.Helper()
	l, err := hostLayout()
	if err != nil {
		t.Fatal(err)
	}
	if l.unified == "" {
		t.Skip("no cgroup2 hierarchy on this host")
	}
	m := newV2(l.unified, Parent+"/"+testID(t), nil)
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("destroy: %v", err)
		}
	})
	return m
}

func TestRootUnifiedProcsFreezeKill(t *testing.T) {
	testutil.RequireRoot(t)
	m := unifiedManager(t)
	p := startSh(t, `read x; while :; do :; done`)
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	if pids, err := m.Pids(); err != nil || !slices.Equal(pids, []int{p.pid()}) {
		t.Fatalf("cgroup.procs: %v, %v; want [%d]", pids, err, p.pid())
	}
	p.release(t)
	checkFrozen(t, m.Freeze, p.pid())
	if err := m.Kill(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if st := p.wait(t, 5*time.Second); !signaled(st, unix.SIGKILL) {
		t.Fatalf("process ended with %v", st)
	}
}

func TestRootUnifiedDeviceFilter(t *testing.T) {
	testutil.RequireRoot(t)
	m := unifiedManager(t)
	p := startGo(t, "open")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"}, // /dev/zero
	}
	if err := m.Set(&specs.LinuxResources{Devices: rules}); err != nil {
		t.Fatal(err)
	}
	p.release(t)
	p.wait(t, 10*time.Second)
	out := output(p)
	if !strings.Contains(out, "/dev/zero=ok") || !strings.Contains(out, "/dev/null=open /dev/null: operation not permitted") {
		t.Fatalf("with only /dev/zero allowed: %q", out)
	}

	// An update replaces the filter rather than adding one that would
	// still deny what the new rules allow.
	rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rw"})
	if err := m.Set(&specs.LinuxResources{Devices: rules}); err != nil {
		t.Fatal(err)
	}
	p2 := startGo(t, "open")
	if err := m.Apply(p2.pid()); err != nil {
		t.Fatal(err)
	}
	p2.release(t)
	p2.wait(t, 10*time.Second)
	if out := output(p2); !strings.Contains(out, "/dev/zero=ok") || !strings.Contains(out, "/dev/null=ok") {
		t.Fatalf("after allowing /dev/null too: %q", out)
	}
}

func TestRootV1DeviceRules(t *testing.T) {
	testutil.RequireRoot(t)
	m := newRoot(t, Config{})
	dir, ok := m.Paths()["devices"]
	if !ok {
		t.Skip("no v1 devices hierarchy on this host")
	}
	p := startGo(t, "open")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"}, // /dev/zero
		{Allow: true, Type: "c", Major: i64(136), Access: "rw"},
	}
	if err := m.Set(&specs.LinuxResources{Devices: rules}); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, filepath.Join(dir, "devices.list")); got != "c 1:5 rwm\nc 136:* rw" {
		t.Fatalf("devices.list %q", got)
	}
	p.release(t)
	p.wait(t, 10*time.Second)
	out := output(p)
	if !strings.Contains(out, "/dev/zero=ok") || !strings.Contains(out, "/dev/null=open /dev/null: operation not permitted") {
		t.Fatalf("with only /dev/zero allowed: %q", out)
	}
}

func TestRootV1Realtime(t *testing.T) {
	testutil.RequireRoot(t)
	m := newRoot(t, Config{})
	dir, ok := m.Paths()["cpu"]
	if !ok {
		t.Skip("no v1 cpu hierarchy on this host")
	}
	if err := m.Apply(0); err != nil {
		t.Fatal(err)
	}
	if !exists(dir, "cpu.rt_runtime_us") {
		t.Skip("kernel without realtime group scheduling")
	}
	if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimePeriod: u64(1000000), RealtimeRuntime: i64(5000)}}); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, filepath.Join(dir, "cpu.rt_runtime_us")); got != "5000" {
		t.Fatalf("cpu.rt_runtime_us %s", got)
	}
}

// BenchmarkCreateDestroy times what every container start and delete pays
// here: New, Apply (no process), Set of a typical spec, Destroy.
func BenchmarkCreateDestroy(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: creates cgroups")
	}
	r := benchRes()
	run := func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			m, err := New(Config{Name: "bench-cg-" + strconv.Itoa(i), Resources: r})
			if err != nil {
				b.Fatal(err)
			}
			if err := m.Apply(0); err != nil {
				b.Fatal(err)
			}
			if err := m.Set(r); err != nil {
				b.Fatal(err)
			}
			if err := m.Destroy(); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Alone, each round also creates and removes berth's parent cgroups.
	b.Run("alone", run)
	b.Run("beside another container", func(b *testing.B) {
		other, err := New(Config{Name: "bench-cg-other"})
		if err != nil {
			b.Fatal(err)
		}
		if err := other.Apply(0); err != nil {
			b.Fatal(err)
		}
		defer other.Destroy()
		run(b)
	})
}

func benchRes() *specs.LinuxResources {
	return &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(256 << 20)},
		Pids:   &specs.LinuxPids{Limit: i64(1024)},
		CPU:    &specs.LinuxCPU{Shares: u64(512)},
	}
}

func TestRootV1BlockIO(t *testing.T) {
	testutil.RequireRoot(t)
	m := newRoot(t, Config{})
	dir, ok := m.Paths()["blkio"]
	if !ok {
		t.Skip("no v1 blkio hierarchy on this host")
	}
	var dev unix.Stat_t
	if err := unix.Stat("/dev/vda", &dev); err != nil {
		t.Skip("no /dev/vda to throttle:", err)
	}
	maj, min := int64(unix.Major(dev.Rdev)), int64(unix.Minor(dev.Rdev))
	if err := m.Apply(0); err != nil {
		t.Fatal(err)
	}
	bd := specs.LinuxBlockIODevice{Major: maj, Minor: min}
	r := &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
		ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: bd, Rate: 1 << 20}},
		ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: bd, Rate: 100}},
	}}
	weightFile := ""
	for _, f := range []string{"blkio.weight", "blkio.bfq.weight"} {
		if exists(dir, f) {
			weightFile = f
			r.BlockIO.Weight = u16(200)
			break
		}
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	dev2 := strconv.FormatInt(maj, 10) + ":" + strconv.FormatInt(min, 10)
	if got := readTree(t, filepath.Join(dir, "blkio.throttle.read_bps_device")); got != dev2+" 1048576" {
		t.Errorf("read_bps_device %q", got)
	}
	if got := readTree(t, filepath.Join(dir, "blkio.throttle.write_iops_device")); got != dev2+" 100" {
		t.Errorf("write_iops_device %q", got)
	}
	if weightFile != "" {
		if got := readTree(t, filepath.Join(dir, weightFile)); !strings.Contains(got, "200") {
			t.Errorf("%s %q", weightFile, got)
		}
	}
}

func TestRootHybridUnifiedKeys(t *testing.T) {
	testutil.RequireRoot(t)
	requireMode(t, Hybrid, Unified)
	m := newRoot(t, Config{})
	if err := m.Apply(0); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{Unified: map[string]string{"cgroup.max.descendants": "3"}}); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, filepath.Join(m.Paths()[""], "cgroup.max.descendants")); got != "3" {
		t.Fatalf("cgroup.max.descendants %q", got)
	}
	for _, key := range []string{"../cgroup.max.descendants", "cgroup.procs", "nosuch.file"} {
		err := m.Set(&specs.LinuxResources{Unified: map[string]string{key: "1"}})
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), key) {
			t.Errorf("key %q: got %v", key, err)
		}
	}
}

// TestRootCpusetInherits checks that a container's cpuset gets CPUs and
// memory nodes whether or not berth's parent existed before.
func TestRootCpusetInherits(t *testing.T) {
	testutil.RequireRoot(t)
	first := newRoot(t, Config{})
	if _, ok := first.Paths()["cpuset"]; !ok {
		t.Skip("no v1 cpuset hierarchy on this host")
	}
	second := newRoot(t, Config{})
	for _, m := range []Manager{first, second} {
		if err := m.Apply(0); err != nil {
			t.Fatal(err)
		}
		dir := m.Paths()["cpuset"]
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if got, want := readTree(t, filepath.Join(dir, f)), readTree(t, filepath.Join(filepath.Dir(filepath.Dir(dir)), f)); got != want {
				t.Errorf("%s/%s = %q, want the root's %q", dir, f, got, want)
			}
		}
	}
}

// TestRootCpusetUnderUnfilledParent: a parent cpuset that another
// container's Apply has just made, but not yet filled, has no CPUs or
// memory nodes; a container made under it must not copy that emptiness
// (the kernel then refuses every task with ENOSPC).
func TestRootCpusetUnderUnfilledParent(t *testing.T) {
	testutil.RequireRoot(t)
	probe := newRoot(t, Config{})
	if _, ok := probe.Paths()["cpuset"]; !ok {
		t.Skip("no v1 cpuset hierarchy on this host")
	}
	parent := "berth-" + testID(t)
	dir := filepath.Join("/sys/fs/cgroup/cpuset", parent)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { _ = unix.Rmdir(dir) })
	if b, _ := os.ReadFile(filepath.Join(dir, "cpuset.cpus")); strings.TrimSpace(string(b)) != "" {
		t.Skipf("a new cpuset here starts with CPUs %q (clone_children set above it)", b)
	}
	m := newRoot(t, Config{Path: "/" + parent + "/c"})
	p := startSh(t, `read x`)
	if err := m.Apply(p.cmd.Process.Pid); err != nil {
		t.Fatalf("apply under an unfilled parent: %v", err)
	}
}

// TestRootConcurrentContainersShareParent creates and destroys containers
// from two goroutines: one's Destroy removing the empty berth parent must
// not break the other's Apply, and a cpuset made under a parent the other
// has just made (not yet filled) must still get CPUs and memory nodes.
func TestRootConcurrentContainersShareParent(t *testing.T) {
	testutil.RequireRoot(t)
	errs := make(chan error, 2)
	for g := range 2 {
		go func() {
			for i := range 40 {
				m, err := New(Config{Name: "test-race-" + strconv.Itoa(g) + "-" + strconv.Itoa(i)})
				if err == nil {
					err = m.Apply(0)
					if dir, ok := m.Paths()["cpuset"]; ok && err == nil {
						for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
							if b, rerr := os.ReadFile(filepath.Join(dir, f)); rerr != nil || strings.TrimSpace(string(b)) == "" {
								err = fmt.Errorf("%s/%s: %q, %v: empty", dir, f, b, rerr)
							}
						}
					}
					if derr := m.Destroy(); err == nil {
						err = derr
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestRootDestroyKillsNothing: Destroy of a cgroup with a live process
// fails and leaves the process alone; right after a Kill it waits for the
// dying process to leave and succeeds.
func TestRootDestroyKillsNothing(t *testing.T) {
	testutil.RequireRoot(t)
	m := newRoot(t, Config{})
	p := startSh(t, `read x`)
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	err := m.Destroy()
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("destroy with a live process: got %v, want conflict", err)
	}
	if err := unix.Kill(p.pid(), 0); err != nil {
		t.Fatalf("process gone after a failed destroy: %v", err)
	}
	if pids, _ := m.Pids(); !slices.Contains(pids, p.pid()) {
		t.Fatalf("process left its cgroup: %v", pids)
	}
	if err := m.Kill(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := m.Destroy(); err != nil {
		t.Fatalf("destroy right after kill: %v", err)
	}
}

// TestRootDeviceEmulationMatchesKernel writes rule lists to a real v1
// devices cgroup and checks that the eBPF filter's model of them (what v2
// enforces) leaves the same devices allowed as the kernel's devices.list.
func TestRootDeviceEmulationMatchesKernel(t *testing.T) {
	testutil.RequireRoot(t)
	deny := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	tests := []struct {
		name  string
		rules []specs.LinuxDeviceCgroup
	}{
		{"allow list", []specs.LinuxDeviceCgroup{deny,
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(136), Access: "rw"}}},
		{"merge and remove bits", []specs.LinuxDeviceCgroup{deny,
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "r"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "wm"},
			{Allow: false, Type: "c", Major: i64(1), Minor: i64(5), Access: "m"}}},
		{"all types, some access", []specs.LinuxDeviceCgroup{deny,
			{Allow: true, Type: "a", Major: i64(7), Access: "r"}}},
		{"reset in the middle", []specs.LinuxDeviceCgroup{deny,
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
			deny,
			{Allow: true, Type: "b", Major: i64(8), Minor: i64(0), Access: "rw"}}},
		{"deny removes exact only", []specs.LinuxDeviceCgroup{deny,
			{Allow: true, Type: "c", Major: i64(4), Access: "rwm"},
			{Allow: false, Type: "c", Major: i64(4), Minor: i64(1), Access: "rwm"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newRoot(t, Config{})
			dir, ok := m.Paths()["devices"]
			if !ok {
				t.Skip("no v1 devices hierarchy on this host")
			}
			if err := m.Apply(0); err != nil {
				t.Fatal(err)
			}
			if err := m.Set(&specs.LinuxResources{Devices: tt.rules}); err != nil {
				t.Fatal(err)
			}
			kernel := strings.Split(readTree(t, filepath.Join(dir, "devices.list")), "\n")
			model, err := devicefilter.Effective(tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			if len(model) == 0 {
				model = []string{""}
			}
			slices.Sort(kernel)
			slices.Sort(model)
			if !slices.Equal(kernel, model) {
				t.Fatalf("kernel devices.list %q, filter's model %q", kernel, model)
			}
		})
	}
}
