package daemon

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	containertypes "github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/testutil"
)

// runRm is one `run --rm busybox true` on the Engine: create, wait
// registered, start, exit, removal.
func runRm(tb testing.TB, e *Engine, cmd ...string) {
	ctx := context.Background()
	res, err := e.ContainerCreate(ctx, ContainerCreateOptions{Config: &containertypes.Config{Image: "busybox", Cmd: cmd}, HostConfig: &containertypes.HostConfig{AutoRemove: true}})
	if err != nil {
		tb.Fatal(err)
	}
	ch, err := e.ContainerWait(ctx, res.ID, containertypes.WaitConditionRemoved)
	if err != nil {
		tb.Fatal(err)
	}
	if err := e.ContainerStart(ctx, res.ID); err != nil {
		tb.Fatal(err)
	}
	if r := <-ch; r.StatusCode != 0 {
		tb.Fatalf("exit %d", r.StatusCode)
	}
}

// BenchmarkContainerRunRm times run --rm busybox true inside the engine
// (no HTTP, no CLI): the engine's share of the end-to-end goal.
func BenchmarkContainerRunRm(b *testing.B) {
	testutil.RequireRoot(b)
	e := ctrEngineTB(b)
	runRm(b, e, "true")
	b.ResetTimer()
	for range b.N {
		runRm(b, e, "true")
	}
}

// BenchmarkContainerRunDetached times create + start of a sleeping
// container (run -d); the containers are removed after the timing.
func BenchmarkContainerRunDetached(b *testing.B) {
	testutil.RequireRoot(b)
	e := ctrEngineTB(b)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		res, err := e.ContainerCreate(ctx, ContainerCreateOptions{Config: &containertypes.Config{Image: "busybox", Cmd: []string{"sleep", "1000"}}})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.ContainerStart(ctx, res.ID); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
}

// TestContainerCycleLeaks runs many create/start/rm cycles and checks
// that none leaves a mount, cgroup, process (the leak check), snapshot,
// open file or goroutine behind.
func TestContainerCycleLeaks(t *testing.T) {
	testutil.RequireRoot(t)
	// 1000 cycles take ~50 s on the 2-core test machine, the whole
	// package's budget: the default run does 100, BERTH_CYCLES=1000 the
	// full drill.
	n := 100
	if v, err := strconv.Atoi(os.Getenv("BERTH_CYCLES")); err == nil && v > 0 {
		n = v
	}
	e := ctrEngine(t)
	ctx := context.Background()
	runRm(t, e, "true") // warm up lazily made things (runtime root, cgroup parent)
	count := func() (snaps, fds, goroutines int) {
		e.snaps.Walk(ctx, func(snapshot.Info) error { snaps++; return nil })
		ents, _ := os.ReadDir("/proc/self/fd")
		return snaps, len(ents), runtime.NumGoroutine()
	}
	s0, f0, g0 := count()
	for range n {
		runRm(t, e, "true")
	}
	// Goroutines of finished exit watchers may take a moment to return.
	var s1, f1, g1 int
	for range 50 {
		if s1, f1, g1 = count(); s1 == s0 && f1 <= f0 && g1 <= g0 {
			break
		}
		runtime.Gosched()
		testSleep()
	}
	if s1 != s0 || f1 > f0 || g1 > g0 {
		t.Fatalf("after %d cycles: snapshots %d→%d, fds %d→%d, goroutines %d→%d", n, s0, s1, f0, f1, g0, g1)
	}
	c, _ := e.ctrs()
	if list := c.store.List(); len(list) != 0 {
		t.Fatalf("%d containers left", len(list))
	}
	if ents, _ := os.ReadDir(c.stateRoot); len(ents) != 0 {
		t.Fatalf("monitor state left: %d", len(ents))
	}
	if ents, _ := os.ReadDir(c.runtimeRoot); len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("runtime state left: %s", strings.Join(names, " "))
	}
}
