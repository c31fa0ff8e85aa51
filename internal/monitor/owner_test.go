package monitor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestCallerDeletes: with CallerDeletes the owner's wait is answered at
// the exit, the runtime's state is left to it, and an attach made before
// the start sees all the output of a container that exits at once. Run
// with the C holder (which starts the init itself, or through the Go
// helper when there are poststart hooks) and with the Go monitor.
func TestCallerDeletes(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tc := range []struct {
		name      string
		goMonitor bool
		poststart bool
	}{
		{name: "C holder"},
		{name: "C holder with a poststart hook", poststart: true},
		{name: "Go monitor", goMonitor: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.goMonitor {
				t.Setenv("BERTH_MONITOR_GO", "1")
			}
			hookOut := filepath.Join(t.TempDir(), "poststart")
			e := newEnv(t, []string{"/bin/sh", "-c", "echo quick; exit 4"}, func(s *specs.Spec) {
				if tc.poststart {
					s.Hooks = &specs.Hooks{Poststart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo ran > " + hookOut}}}}
				}
			})
			e.cfg.CallerDeletes = true
			var out lockedBuffer
			attached := make(chan error, 1)
			e.cfg.Created = func(h *Handle) error {
				ready := make(chan struct{})
				go func() {
					attached <- h.Attach(context.Background(), AttachOptions{Stdout: &out, Attached: func() { close(ready) }})
				}()
				<-ready
				return nil
			}
			h, err := Start(context.Background(), e.cfg)
			if err != nil {
				t.Fatal(err)
			}
			rt, err := runtime.New(e.cfg.RuntimeRoot)
			if err != nil {
				t.Fatal(err)
			}
			deleted := false
			t.Cleanup(func() {
				if !deleted {
					deleteState(t, rt, e.cfg.ID)
				}
				killAndWait(t, e.cfg, h)
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ex, err := h.WaitOwned(ctx)
			if err != nil || ex.Code != 4 {
				t.Fatalf("WaitOwned: %+v, %v", ex, err)
			}
			if err := <-attached; err != nil || out.String() != "quick\n" {
				t.Fatalf("attach: %v, output %q", err, out.String())
			}
			if tc.poststart {
				if b, err := os.ReadFile(hookOut); err != nil || string(b) != "ran\n" {
					t.Fatalf("poststart hook: %q, %v", b, err)
				}
			}
			// The monitor left the runtime's state to us.
			if _, err := rt.Load(ctx, e.cfg.ID); err != nil {
				t.Fatalf("runtime state after WaitOwned: %v", err)
			}
			deleteState(t, rt, e.cfg.ID)
			deleted = true
			if _, err := rt.Load(ctx, e.cfg.ID); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("runtime state after delete: %v", err)
			}
		})
	}
}

// TestOwnerHangsUp: an owner that goes before the exit gives the delete
// back to the monitor.
func TestOwnerHangsUp(t *testing.T) {
	testutil.RequireRoot(t)
	e := newEnv(t, []string{"/bin/sh", "-c", "sleep 0.2"}, nil)
	e.cfg.CallerDeletes = true
	h := e.start(t)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if ex := wait(t, h); ex.Code != 0 {
		t.Fatalf("exit %+v", ex)
	}
	// killAndWait (the cleanup) fails the test unless the monitor deleted
	// the runtime's state itself.
}

func deleteState(t *testing.T, rt *runtime.Runtime, id string) {
	t.Helper()
	c, err := rt.Load(context.Background(), id)
	if err != nil {
		return
	}
	_ = c.Kill(context.Background(), unix.SIGKILL, true)
	if err := c.Delete(context.Background(), true); err != nil {
		t.Errorf("delete %s: %v", id, err)
	}
}
