package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	containertypes "github.com/moby/moby/api/types/container"
	evtypes "github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/internal/events"
	"github.com/berth-dev/berth/internal/testutil"
)

func healthOf(t *testing.T, e *Engine, id string) *containertypes.Health {
	t.Helper()
	ins, err := e.ContainerInspect(context.Background(), id, false)
	if err != nil {
		t.Fatal(err)
	}
	return ins.State.Health
}

func waitHealth(t *testing.T, e *Engine, id string, want containertypes.HealthStatus) *containertypes.Health {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		h := healthOf(t, e, id)
		if h != nil && h.Status == want {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("health never became %s: %+v", want, h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A check that fails goes starting → unhealthy after Retries failures;
// once it passes the container is healthy; each change is an event.
func TestHealthcheck(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx := context.Background()
	stop := e.StartHealthchecks(ctx)
	defer stop()
	_, sub := e.Events().Subscribe(time.Time{}, events.Filter{})
	defer sub.Close()
	id := create(t, e, "", containertypes.Config{
		Cmd: []string{"sleep", "1000"},
		Healthcheck: &containertypes.HealthConfig{
			Test:     []string{"CMD-SHELL", "echo probing; test -e /tmp/ok"},
			Interval: 50 * time.Millisecond, Timeout: 2 * time.Second, Retries: 2,
		},
	}, nil)
	if h := healthOf(t, e, id); h == nil || h.Status != containertypes.Starting {
		t.Fatalf("health before start %+v", h)
	}
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	h := waitHealth(t, e, id, containertypes.Unhealthy)
	if h.FailingStreak < 2 || len(h.Log) == 0 || h.Log[0].ExitCode != 1 || h.Log[0].Output != "probing\n" {
		t.Fatalf("unhealthy %+v, log[0] %+v", h, h.Log[0])
	}
	if _, _, code, err := execRun(t, e, id, containertypes.ExecCreateRequest{Cmd: []string{"touch", "/tmp/ok"}}, nil); err != nil || code != 0 {
		t.Fatalf("touch: %d %v", code, err)
	}
	h = waitHealth(t, e, id, containertypes.Healthy)
	if h.FailingStreak != 0 || len(h.Log) > 5 {
		t.Fatalf("healthy %+v", h)
	}
	var seen []string
	deadline := time.After(5 * time.Second)
	for len(seen) < 2 {
		select {
		case m := <-sub.C:
			if m.Type == evtypes.ContainerEventType && strings.HasPrefix(string(m.Action), "health_status") {
				seen = append(seen, string(m.Action))
			}
		case <-deadline:
			t.Fatalf("health events %q", seen)
		}
	}
	if seen[0] != "health_status: unhealthy" || seen[1] != "health_status: healthy" {
		t.Fatalf("health events %q", seen)
	}
}

func TestHealthcheckTimeout(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx := context.Background()
	stop := e.StartHealthchecks(ctx)
	defer stop()
	id := create(t, e, "", containertypes.Config{
		Cmd: []string{"sleep", "1000"},
		Healthcheck: &containertypes.HealthConfig{
			Test:     []string{"CMD", "sleep", "10"},
			Interval: 50 * time.Millisecond, Timeout: 100 * time.Millisecond, Retries: 1,
		},
	}, nil)
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	h := waitHealth(t, e, id, containertypes.Unhealthy)
	if l := h.Log[len(h.Log)-1]; l.ExitCode != -1 || !strings.Contains(l.Output, "exceeded timeout") {
		t.Fatalf("timed-out probe %+v", l)
	}
}
