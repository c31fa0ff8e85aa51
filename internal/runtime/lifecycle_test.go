package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestLifecycleStates(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	b := newBundle(t, shell("sleep 60"))
	c, err := rt.Create(ctx, "life", CreateOptions{Bundle: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(ctx, true) })

	check := func(want Status) {
		t.Helper()
		c2, err := rt.Load(ctx, "life")
		if err != nil {
			t.Fatal(err)
		}
		st := c2.State(ctx)
		if st.Status != specs.ContainerState(want) {
			t.Fatalf("status %q, want %q", st.Status, want)
		}
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		for _, k := range []string{"ociVersion", "id", "status", "pid", "bundle"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("state JSON %s lacks %q", b, k)
			}
		}
		if want != StatusStopped && st.Pid <= 0 {
			t.Fatalf("state pid %d", st.Pid)
		}
	}
	check(StatusCreated)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	check(StatusRunning)
	if err := c.Start(ctx); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("second start: %v, want ErrConflict", err)
	}
	if err := c.Delete(ctx, false); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("delete of a running container: %v, want ErrConflict", err)
	}
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	check(StatusPaused)
	// Frozen: the process sits in the freezer, not sleeping.
	if s := procState(t, c.Pid()); s != "D" && s != "S" {
		t.Logf("paused process state %q", s)
	}
	if err := c.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	check(StatusRunning)
	if err := c.Kill(ctx, unix.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if code, err := c.Wait(ctx); err != nil || code != 128+9 {
		t.Fatalf("wait: %d %v", code, err)
	}
	check(StatusStopped)
	if err := c.Kill(ctx, unix.SIGTERM, false); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("kill of a stopped container: %v, want ErrConflict", err)
	}
	if err := c.Delete(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Load(ctx, "life"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("load after delete: %v, want ErrNotFound", err)
	}
}

func procState(t *testing.T, pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", itoa(pid), "stat"))
	if err != nil {
		return ""
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
}

func itoa(i int) string { return jsonNum(i) }

func jsonNum(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestDeleteCreatedAndForce(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	b := newBundle(t, shell("sleep 60"))
	c, err := rt.Create(ctx, "created", CreateOptions{Bundle: b})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, false); err != nil {
		t.Fatalf("delete of a created container: %v", err)
	}
	c, err = rt.Create(ctx, "running", CreateOptions{Bundle: b})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, true); err != nil {
		t.Fatalf("force delete: %v", err)
	}
	if cs, _ := rt.List(ctx); len(cs) != 0 {
		t.Fatalf("containers left: %d", len(cs))
	}
}

func TestStartAfterInitDied(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	b := newBundle(t, shell("true"))
	c, err := rt.Create(ctx, "died", CreateOptions{Bundle: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(ctx, true) })
	_ = unix.Kill(c.Pid(), unix.SIGKILL)
	_, _ = c.Wait(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, errdefs.ErrConflict) {
			t.Fatalf("start of a dead init: %v, want ErrConflict", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("start hung")
	}
}

func TestNoPivot(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	b := newBundle(t, shell("cat /etc/motd; ls /"))
	r, w, _ := os.Pipe()
	c, err := rt.Create(ctx, "nopivot", CreateOptions{Bundle: b, NoPivot: true, IO: IO{Stdout: w, Stderr: w}})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(ctx, true) })
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(r)
	if code, _ := c.Wait(ctx); code != 0 || !strings.Contains(string(out), "berth test image") {
		t.Fatalf("exit %d, output %q", code, out)
	}
}

// Two handles start the same container at once: one wins, the other gets
// a conflict instead of blocking on the exec fifo forever.
func TestConcurrentStartsOneWins(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	c, err := rt.Create(ctx, "race", CreateOptions{Bundle: newBundle(t, shell("sleep 600"))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(ctx, true) })
	other, err := rt.Load(ctx, "race")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { errs <- c.Start(ctx) }()
	go func() { errs <- other.Start(ctx) }()
	var ok, conflict int
	for range 2 {
		select {
		case err := <-errs:
			switch {
			case err == nil:
				ok++
			case errors.Is(err, errdefs.ErrConflict):
				conflict++
			default:
				t.Fatalf("start: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a start hung")
		}
	}
	if ok != 1 || conflict != 1 {
		t.Fatalf("%d starts succeeded, %d conflicted", ok, conflict)
	}
}
