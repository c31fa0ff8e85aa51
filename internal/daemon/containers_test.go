package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	containertypes "github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// The test binary is the container's init and its monitor too.
func init() {
	if runtime.IsInit() {
		runtime.Init()
	}
	if monitor.IsMonitor() {
		monitor.Main()
	}
}

var cgroupSeq int

// ctrEngine is an Engine with containers on overlay (vfs when overlay is
// not available), the test image loaded, and a cgroup parent of its own
// that cleanup removes with everything else.
func ctrEngine(t *testing.T) *Engine { return ctrEngineTB(t) }

func testSleep() { time.Sleep(20 * time.Millisecond) }

func ctrEngineTB(t testing.TB) *Engine {
	t.Helper()
	root := t.TempDir()
	// BERTH_TEST_DRIVER=vfs runs the container tests on the copy
	// snapshotter.
	e, err := New(context.Background(), Config{Root: root, StorageDriver: os.Getenv("BERTH_TEST_DRIVER")})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(testutil.Images(t).DockerArchive)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.ImageLoad(context.Background(), ImageLoadOptions{Input: f})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	cgroupSeq++
	parent := fmt.Sprintf("/berth-test-%d-%d", os.Getpid(), cgroupSeq)
	if err := e.InitContainers(context.Background(), ContainerConfig{ExecRoot: filepath.Join(root, "run"), CgroupParent: parent}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if c, err := e.ctrs(); err == nil {
			for _, ct := range c.store.List() {
				if err := e.ContainerRemove(ctx, ct.ID(), ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
					t.Errorf("cleanup: rm %s: %v", ct.ID(), err)
				}
			}
		}
		e.ShutdownContainers()
		e.Close()
		removeCgroupParent(parent)
	})
	return e
}

func removeCgroupParent(parent string) {
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	for _, h := range ents {
		_ = os.Remove(filepath.Join("/sys/fs/cgroup", h.Name(), parent))
	}
}

func create(t testing.TB, e *Engine, name string, cfg containertypes.Config, host *containertypes.HostConfig) string {
	t.Helper()
	if cfg.Image == "" {
		cfg.Image = "busybox"
	}
	res, err := e.ContainerCreate(context.Background(), ContainerCreateOptions{Name: name, Config: &cfg, HostConfig: host})
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

func waitExit(t *testing.T, e *Engine, id string, cond containertypes.WaitCondition) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ch, err := e.ContainerWait(ctx, id, cond)
	if err != nil {
		t.Fatal(err)
	}
	res, ok := <-ch
	if !ok {
		t.Fatalf("wait %s: timed out", id)
	}
	return res.StatusCode
}

func TestContainerLifecycle(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx := context.Background()

	id := create(t, e, "life", containertypes.Config{Cmd: []string{"sh", "-c", "exit 3"}}, nil)
	ins, err := e.ContainerInspect(ctx, "life", false)
	if err != nil {
		t.Fatal(err)
	}
	if ins.Name != "/life" || ins.State.Status != "created" || ins.Path != "sh" || ins.Config.Hostname != id[:12] {
		t.Fatalf("inspect: %+v %+v", ins, ins.State)
	}
	next, err := e.ContainerWait(ctx, id, containertypes.WaitConditionNextExit)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	if res := <-next; res.StatusCode != 3 {
		t.Fatalf("exit %d", res.StatusCode)
	}
	ins, _ = e.ContainerInspect(ctx, id[:10], false)
	if ins.State.Status != "exited" || ins.State.ExitCode != 3 || ins.State.FinishedAt == zeroTimeString {
		t.Fatalf("state %+v", ins.State)
	}
	// Started again, it runs again.
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, e, id, containertypes.WaitConditionNotRunning); code != 3 {
		t.Fatalf("second exit %d", code)
	}
	if err := e.ContainerRemove(ctx, id, ContainerRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ContainerInspect(ctx, id, false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("inspect after rm: %v", err)
	}
}

const zeroTimeString = "0001-01-01T00:00:00Z"

func TestContainerStopKillPause(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx := context.Background()
	id := create(t, e, "", containertypes.Config{Cmd: []string{"sleep", "100"}}, nil)
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.ContainerStart(ctx, id); !errors.Is(err, errdefs.ErrNotModified) {
		t.Fatalf("second start: %v", err)
	}
	if err := e.ContainerRemove(ctx, id, ContainerRemoveOptions{}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("rm running: %v", err)
	}
	if err := e.ContainerPause(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ins, _ := e.ContainerInspect(ctx, id, false); !ins.State.Paused || !ins.State.Running {
		t.Fatalf("paused state %+v", ins.State)
	}
	if err := e.ContainerUnpause(ctx, id); err != nil {
		t.Fatal(err)
	}
	// sleep as pid 1 ignores SIGTERM: stop must SIGKILL after the timeout.
	zero := 0
	start := time.Now()
	if err := e.ContainerStop(ctx, id, ContainerStopOptions{Timeout: &zero}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stop took %v", d)
	}
	ins, _ := e.ContainerInspect(ctx, id, false)
	if ins.State.Running || ins.State.ExitCode != 137 {
		t.Fatalf("after stop %+v", ins.State)
	}
	if err := e.ContainerStop(ctx, id, ContainerStopOptions{}); !errors.Is(err, errdefs.ErrNotModified) {
		t.Fatalf("second stop: %v", err)
	}
	if err := e.ContainerKill(ctx, id, "TERM"); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("kill stopped: %v", err)
	}
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.ContainerKill(ctx, id, "NOPE"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("bad signal: %v", err)
	}
	if err := e.ContainerRemove(ctx, id, ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
}

func TestContainerCreateRefusals(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx := context.Background()
	create(t, e, "taken", containertypes.Config{Cmd: []string{"true"}}, nil)
	snaps := func() int {
		n := 0
		e.snaps.Walk(ctx, func(snapshot.Info) error { n++; return nil })
		return n
	}
	before := snaps()
	tests := []struct {
		name  string
		opts  ContainerCreateOptions
		class error
		msg   string
	}{
		{"name in use", ContainerCreateOptions{Name: "taken", Config: &containertypes.Config{Image: "busybox"}}, errdefs.ErrConflict, `The container name "/taken" is already in use`},
		{"bad name", ContainerCreateOptions{Name: "-x", Config: &containertypes.Config{Image: "busybox"}}, errdefs.ErrInvalidArgument, "Invalid container name"},
		{"missing image", ContainerCreateOptions{Config: &containertypes.Config{Image: "nope:1"}}, errdefs.ErrNotFound, "No such image: nope:1"},
		{"no config", ContainerCreateOptions{}, errdefs.ErrInvalidArgument, "config cannot be empty"},
		{"rm and restart", ContainerCreateOptions{Config: &containertypes.Config{Image: "busybox"}, HostConfig: &containertypes.HostConfig{AutoRemove: true, RestartPolicy: containertypes.RestartPolicy{Name: "always"}}}, errdefs.ErrInvalidArgument, "AutoRemove"},
		{"bad restart", ContainerCreateOptions{Config: &containertypes.Config{Image: "busybox"}, HostConfig: &containertypes.HostConfig{RestartPolicy: containertypes.RestartPolicy{Name: "sometimes"}}}, errdefs.ErrInvalidArgument, "restart policy"},
		{"bad bind", ContainerCreateOptions{Config: &containertypes.Config{Image: "busybox"}, HostConfig: &containertypes.HostConfig{Binds: []string{"/tmp:relative"}}}, errdefs.ErrInvalidArgument, "invalid volume specification"},
		{"bad ulimit", ContainerCreateOptions{Config: &containertypes.Config{Image: "busybox"}, HostConfig: &containertypes.HostConfig{Resources: containertypes.Resources{Ulimits: []*containertypes.Ulimit{{Name: "bogus"}}}}}, errdefs.ErrInvalidArgument, "ulimit"},
		{"unknown network", ContainerCreateOptions{Config: &containertypes.Config{Image: "busybox"}, HostConfig: &containertypes.HostConfig{NetworkMode: "mynet"}}, errdefs.ErrNotFound, "network mynet not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.ContainerCreate(ctx, tc.opts)
			if !errors.Is(err, tc.class) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %v, want %v containing %q", err, tc.class, tc.msg)
			}
		})
	}
	list, err := e.ContainerList(ctx, ContainerListOptions{All: true})
	if err != nil || len(list) != 1 {
		t.Fatalf("containers after refusals: %d %v", len(list), err)
	}
	if n := snaps(); n != before {
		t.Fatalf("snapshots %d → %d", before, n)
	}
}
