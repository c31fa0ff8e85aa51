package monitor

import (
	"context"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestPoolHandsOutStartedMonitors: a start takes the pool's idle monitor
// (already past its process start), the pool fills again, the container
// runs as with a monitor of its own (log, exit, attach before start), and
// Close ends the idle one (the leak check sees no process left).
func TestPoolHandsOutStartedMonitors(t *testing.T) {
	testutil.RequireRoot(t)
	p := NewPool(1)
	defer p.Close()
	idle := func() *spawned {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			p.mu.Lock()
			var s *spawned
			if len(p.idle) > 0 {
				s = p.idle[0]
			}
			p.mu.Unlock()
			if s != nil {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatal("the pool did not fill")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if s := p.take(); s != nil {
		t.Fatal("a new pool has a monitor before its first use")
	}
	for i, code := range []int{3, 4} {
		warm := idle()
		e := newEnv(t, []string{"/bin/sh", "-c", "echo run; exit " + string(rune('0'+code))}, nil)
		e.cfg.Pool = p
		var out lockedBuffer
		e.cfg.Created = func(h *Handle) error {
			ready := make(chan struct{})
			go func() {
				_ = h.Attach(context.Background(), AttachOptions{Stdout: &out, Attached: func() { close(ready) }})
			}()
			<-ready
			return nil
		}
		h := e.start(t)
		if h.MonitorPid() != warm.cmd.Process.Pid {
			t.Fatalf("start %d: monitor %d, want the pool's %d", i, h.MonitorPid(), warm.cmd.Process.Pid)
		}
		if ex := wait(t, h); ex.Code != code {
			t.Fatalf("start %d: exit %+v", i, ex)
		}
		waitFor(t, func() bool { return out.String() == "run\n" })
		if got := e.logs(t); len(got) != 1 || got[0] != "stdout:run\n" {
			t.Fatalf("start %d: logs %q", i, got)
		}
	}
	idle()
	p.Close()
	p.mu.Lock()
	n := len(p.idle)
	p.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d idle monitors after Close", n)
	}
}
