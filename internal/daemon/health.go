package daemon

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	containertypes "github.com/moby/moby/api/types/container"
	evtypes "github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/events"
	"github.com/berth-dev/berth/internal/log"
)

// Docker's healthcheck defaults and limits.
const (
	defaultHealthInterval      = 30 * time.Second
	defaultHealthTimeout       = 30 * time.Second
	defaultHealthStartInterval = 5 * time.Second
	defaultHealthRetries       = 3
	healthLogEntries           = 5    // results kept in State.Health.Log
	healthMaxOutput            = 4096 // bytes of a probe's output kept
)

// StartHealthchecks runs the healthchecks (the image's HEALTHCHECK or
// --health-*) of running containers: of those running now (after a
// restore) and of each container as it starts, until ctx ends or stop is
// called. cmd/berth calls it once after InitContainers.
//
// A probe is an exec of the check's command in the container, every
// Interval (StartInterval during the start period), killed after Timeout.
// Exit 0 makes the container healthy; Retries failures in a row make it
// unhealthy, except during the start period, where failures do not count.
// Each status change publishes docker's "health_status: <status>" event.
func (e *Engine) StartHealthchecks(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	h := &healthRunner{e: e, running: map[string]context.CancelFunc{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.watch(ctx, &wg)
	}()
	return func() { cancel(); wg.Wait() }
}

type healthRunner struct {
	e       *Engine
	mu      sync.Mutex // guards running
	running map[string]context.CancelFunc
}

// watch starts a probe loop for every container start event, and for the
// containers already running. A feed the bus dropped (we fell behind) is
// taken up again with a new scan.
func (h *healthRunner) watch(ctx context.Context, wg *sync.WaitGroup) {
	for ctx.Err() == nil {
		_, sub := h.e.Events().Subscribe(time.Time{}, events.Filter{})
		if c, err := h.e.ctrs(); err == nil {
			for _, ct := range c.store.List() {
				if ct.Snapshot().State.Status == container.Running {
					h.run(ctx, ct.ID(), wg)
				}
			}
		}
		for open := true; open; {
			select {
			case <-ctx.Done():
				sub.Close()
				return
			case m, ok := <-sub.C:
				if !ok {
					open = false
					break
				}
				if m.Type == evtypes.ContainerEventType && m.Action == evtypes.ActionStart {
					h.run(ctx, m.Actor.ID, wg)
				}
			}
		}
	}
}

// run (re)starts the probe loop of container id, if it has a healthcheck.
func (h *healthRunner) run(ctx context.Context, id string, wg *sync.WaitGroup) {
	ct, _, err := h.e.lookup(id)
	if err != nil {
		return
	}
	r := ct.Snapshot()
	hc := r.Config.Healthcheck
	if hc == nil || len(hc.Test) == 0 || hc.Test[0] == "NONE" || r.State.Health == nil {
		return
	}
	lctx, cancel := context.WithCancel(ctx)
	h.mu.Lock()
	if old := h.running[id]; old != nil {
		old()
	}
	h.running[id] = cancel
	h.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cancel()
		h.loop(lctx, ct, *hc, r.State.StartedAt)
	}()
}

func (h *healthRunner) loop(ctx context.Context, ct *container.Container, hc containertypes.HealthConfig, started time.Time) {
	interval, timeout, startInterval := hc.Interval, hc.Timeout, hc.StartInterval
	if interval <= 0 {
		interval = defaultHealthInterval
	}
	if timeout <= 0 {
		timeout = defaultHealthTimeout
	}
	if startInterval <= 0 {
		startInterval = defaultHealthStartInterval
	}
	retries := hc.Retries
	if retries <= 0 {
		retries = defaultHealthRetries
	}
	stopped := ct.Wait(ctx, containertypes.WaitConditionNotRunning)
	for {
		inStart := time.Since(started) < hc.StartPeriod
		wait := interval
		if inStart && hc.StartInterval > 0 {
			wait = startInterval
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-stopped:
			t.Stop()
			return
		case <-t.C:
		}
		res := h.probe(ctx, ct.ID(), hc.Test, timeout)
		if ctx.Err() != nil {
			return
		}
		inStart = time.Since(started) < hc.StartPeriod
		h.record(ctx, ct, res, retries, inStart)
	}
}

// record adds a probe result to the container's health and publishes a
// status change.
func (h *healthRunner) record(ctx context.Context, ct *container.Container, res containertypes.HealthcheckResult, retries int, inStart bool) {
	ct.Lock()
	r := ct.R()
	hs := r.State.Health
	if hs == nil || r.State.Status != container.Running {
		ct.Unlock()
		return
	}
	before := hs.Status
	hs.Log = append(hs.Log, &res)
	if len(hs.Log) > healthLogEntries {
		hs.Log = hs.Log[len(hs.Log)-healthLogEntries:]
	}
	if res.ExitCode == 0 {
		hs.FailingStreak = 0
		hs.Status = containertypes.Healthy
	} else if !inStart || hs.Status != containertypes.Starting {
		// During the start period a failure does not count, unless the
		// container was already healthy once.
		hs.FailingStreak++
		if hs.FailingStreak >= retries {
			hs.Status = containertypes.Unhealthy
		}
	}
	after := hs.Status
	if err := ct.Save(); err != nil {
		log.From(ctx).Warn("health: save", log.KeyContainer, r.ID, log.KeyErr, err)
	}
	snap := *r
	ct.Unlock()
	if after != before {
		h.e.emitContainer(ctx, evtypes.Action(string(evtypes.ActionHealthStatus)+": "+string(after)), &snap, nil)
	}
}

// limitedBuffer keeps the first n bytes written to it.
type limitedBuffer struct {
	mu sync.Mutex
	b  []byte
	n  int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.n - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// probe runs one check as an exec and returns its result.
func (h *healthRunner) probe(ctx context.Context, id string, test []string, timeout time.Duration) containertypes.HealthcheckResult {
	res := containertypes.HealthcheckResult{Start: time.Now()}
	var cmd []string
	switch test[0] {
	case "CMD":
		cmd = test[1:]
	case "CMD-SHELL":
		cmd = []string{"/bin/sh", "-c", strings.Join(test[1:], " ")}
	default:
		cmd = test // docker's shorthand: a bare command
	}
	if len(cmd) == 0 {
		res.End, res.ExitCode, res.Output = time.Now(), -1, "healthcheck has no command"
		return res
	}
	x, err := h.e.ExecCreate(ctx, id, containertypes.ExecCreateRequest{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		res.End, res.ExitCode, res.Output = time.Now(), -1, err.Error()
		return res
	}
	out := &limitedBuffer{n: healthMaxOutput}
	done := make(chan error, 1)
	go func() {
		done <- h.e.ExecStart(context.WithoutCancel(ctx), x.ID, ExecStartOptions{Streams: func(bool) (AttachStreams, error) {
			return AttachStreams{Stdout: out, Stderr: out, Close: func() {}}, nil
		}})
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err = <-done:
	case <-t.C:
		if ins, err := h.e.ExecInspect(ctx, x.ID); err == nil && ins.Pid > 0 && ins.Running {
			_ = unix.Kill(ins.Pid, unix.SIGKILL)
		}
		<-done
		res.End, res.ExitCode = time.Now(), -1
		res.Output = fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
		return res
	case <-ctx.Done():
		res.End, res.ExitCode = time.Now(), -1
		return res
	}
	res.End = time.Now()
	ins, ierr := h.e.ExecInspect(ctx, x.ID)
	switch {
	case err != nil:
		res.ExitCode, res.Output = -1, err.Error()
		if ierr == nil && ins.ExitCode != nil {
			res.ExitCode = *ins.ExitCode
		}
	case ierr != nil || ins.ExitCode == nil:
		res.ExitCode = -1
	default:
		res.ExitCode = *ins.ExitCode
		res.Output = out.String()
	}
	return res
}
