package daemon

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	containertypes "github.com/moby/moby/api/types/container"
	evtypes "github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/runtime"
)

// defaultStopTimeout is docker's: 10 s between the stop signal and SIGKILL.
const defaultStopTimeout = 10

// ContainerStopOptions are stop's and restart's.
type ContainerStopOptions struct {
	// Signal is the stop signal; "" is the container's (its config's
	// StopSignal, else SIGTERM).
	Signal string
	// Timeout is the seconds before SIGKILL; nil is the container's
	// StopTimeout (else 10); negative waits forever.
	Timeout *int
}

// ParseSignal reads a signal as docker takes it: a name with or without
// SIG (any case), or a number. "" is SIGKILL.
func ParseSignal(s string) (unix.Signal, error) {
	if s == "" {
		return unix.SIGKILL, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal: %s: %w", s, errdefs.ErrInvalidArgument)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("invalid signal: %s: %w", s, errdefs.ErrInvalidArgument)
}

// ContainerStop stops a running container: its stop signal, then SIGKILL
// after the timeout. Stopping a stopped container is ErrNotModified.
func (e *Engine) ContainerStop(ctx context.Context, ref string, opts ContainerStopOptions) error {
	ct, c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	ct.Lock()
	r := ct.R()
	if r.State.Status == container.Restarting {
		// Between two runs: cancel the pending restart.
		l := c.liveOf(r.ID)
		c.cancelRestart(l)
		r.State.ManuallyStopped = true
		err := ct.SetStatus(container.Exited)
		if err == nil {
			err = ct.Save()
		}
		ct.Unlock()
		e.emitContainer(ctx, evtypes.ActionStop, r, nil)
		return err
	}
	if !r.State.IsRunning() {
		ct.Unlock()
		return fmt.Errorf("container %s is already stopped: %w", r.ID, errdefs.ErrNotModified)
	}
	sig := opts.Signal
	if sig == "" {
		sig = r.Config.StopSignal
	}
	if sig == "" {
		sig = "SIGTERM"
	}
	s, err := ParseSignal(sig)
	if err != nil {
		ct.Unlock()
		return err
	}
	timeout := defaultStopTimeout
	if r.Config.StopTimeout != nil {
		timeout = *r.Config.StopTimeout
	}
	if opts.Timeout != nil {
		timeout = *opts.Timeout
	}
	e.markStopping(c, ct)
	ct.Unlock()
	if err := e.stopProcess(ctx, c, ct, s, timeout); err != nil {
		return err
	}
	e.emitContainer(ctx, evtypes.ActionStop, r, nil)
	return nil
}

// markStopping notes that the coming exit is the user's doing: no restart
// policy applies. The caller holds the lock.
func (e *Engine) markStopping(c *ctrs, ct *container.Container) {
	r := ct.R()
	c.liveOf(r.ID).stopping = true
	r.State.ManuallyStopped = true
	if err := ct.Save(); err != nil {
		log.From(context.Background()).Warn("stop: save", log.KeyContainer, r.ID, log.KeyErr, err)
	}
}

// stopProcess sends sig, waits up to timeout seconds (negative: forever)
// for the exit to be recorded, then SIGKILLs and waits for that. It is
// called without the container's lock, which the exit path takes.
func (e *Engine) stopProcess(ctx context.Context, c *ctrs, ct *container.Container, sig unix.Signal, timeout int) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Registered before the signal, so a fast exit is not missed.
	done := ct.Wait(wctx, containertypes.WaitConditionNotRunning)
	if err := e.signal(ctx, c, ct, sig); err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			// Exited meanwhile.
			<-done
			return nil
		}
		return err
	}
	if sig != unix.SIGKILL {
		var tc <-chan time.Time
		if timeout >= 0 {
			t := time.NewTimer(time.Duration(timeout) * time.Second)
			defer t.Stop()
			tc = t.C
		}
		select {
		case <-done:
			return nil
		case <-tc:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := e.signal(ctx, c, ct, unix.SIGKILL); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// signal sends sig to the container's init through the runtime, and a
// paused container is thawed so it can act on it. A container whose
// runtime state has gone (it exited) is ErrNotFound.
func (e *Engine) signal(ctx context.Context, c *ctrs, ct *container.Container, sig unix.Signal) error {
	rc, err := c.rt.Load(ctx, ct.ID())
	if err != nil {
		return err
	}
	if err := rc.Kill(ctx, sig, false); err != nil {
		// ESRCH, or the runtime saw the init exit before the monitor
		// deleted its state: either way it has exited meanwhile.
		if errors.Is(err, unix.ESRCH) || rc.Status() == runtime.StatusStopped {
			return fmt.Errorf("signal %s: %w", ct.ID(), errdefs.ErrNotFound)
		}
		return err
	}
	r := ct.Snapshot()
	paused := r.State.Status == container.Paused
	if paused && (sig == unix.SIGKILL || sig == unix.SIGTERM) {
		// A frozen process acts on no signal: thaw it, as docker does.
		if err := rc.Resume(ctx); err == nil {
			ct.Lock()
			if ct.R().State.Status == container.Paused {
				_ = ct.SetStatus(container.Running)
				_ = ct.Save()
			}
			ct.Unlock()
		}
	}
	e.emitContainer(ctx, evtypes.ActionKill, &r, map[string]string{"signal": strconv.Itoa(int(sig))})
	return nil
}

// ContainerKill sends a signal (name or number; "" is SIGKILL).
func (e *Engine) ContainerKill(ctx context.Context, ref, signal string) error {
	sig, err := ParseSignal(signal)
	if err != nil {
		return err
	}
	ct, c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	ct.Lock()
	r := ct.R()
	if !r.State.IsRunning() {
		ct.Unlock()
		return fmt.Errorf("Cannot kill container: %s: Container %s is not running: %w", ref, r.ID, errdefs.ErrConflict) //nolint:staticcheck // docker's words
	}
	// docker marks any kill as a manual stop: a restart policy does not
	// bring the container back if the signal ends it.
	e.markStopping(c, ct)
	ct.Unlock()
	if sig == unix.SIGKILL {
		return e.stopProcess(ctx, c, ct, sig, 0)
	}
	return e.signal(ctx, c, ct, sig)
}

// ContainerPause freezes a running container.
func (e *Engine) ContainerPause(ctx context.Context, ref string) error {
	return e.freeze(ctx, ref, true)
}

// ContainerUnpause thaws a paused container.
func (e *Engine) ContainerUnpause(ctx context.Context, ref string) error {
	return e.freeze(ctx, ref, false)
}

func (e *Engine) freeze(ctx context.Context, ref string, pause bool) error {
	ct, c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	ct.Lock()
	defer ct.Unlock()
	r := ct.R()
	switch {
	case pause && r.State.Status == container.Paused:
		return fmt.Errorf("container %s is already paused: %w", r.ID, errdefs.ErrConflict)
	case pause && r.State.Status != container.Running:
		return errNotRunning(r.ID)
	case !pause && r.State.Status != container.Paused:
		return fmt.Errorf("container %s is not paused: %w", r.ID, errdefs.ErrConflict)
	}
	rc, err := c.rt.Load(ctx, r.ID)
	if err != nil {
		return err
	}
	to, action := container.Running, evtypes.ActionUnPause
	if pause {
		err = rc.Pause(ctx)
		to, action = container.Paused, evtypes.ActionPause
	} else {
		err = rc.Resume(ctx)
	}
	if err != nil {
		return err
	}
	if err := ct.SetStatus(to); err != nil {
		return err
	}
	if err := ct.Save(); err != nil {
		return err
	}
	e.emitContainer(ctx, action, r, nil)
	return nil
}

// ContainerWait waits for cond (docker wait's not-running, next-exit,
// removed). The wait is registered before it returns; the channel yields
// once, or is closed if ctx ends.
func (e *Engine) ContainerWait(ctx context.Context, ref string, cond containertypes.WaitCondition) (<-chan containertypes.WaitResponse, error) {
	ct, _, err := e.lookup(ref)
	if err != nil {
		return nil, err
	}
	in := ct.Wait(ctx, cond)
	out := make(chan containertypes.WaitResponse, 1)
	go func() {
		defer close(out)
		res, ok := <-in
		if !ok {
			return
		}
		wr := containertypes.WaitResponse{StatusCode: int64(res.ExitCode)}
		if res.Error != "" {
			wr.Error = &containertypes.WaitExitError{Message: res.Error}
		}
		out <- wr
	}()
	return out, nil
}
