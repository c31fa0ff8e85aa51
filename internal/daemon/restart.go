package daemon

import (
	"context"
	"errors"
	"time"

	evtypes "github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/monitor"
)

// ContainerRestart stops the container if it runs (as ContainerStop) and
// starts it again.
func (e *Engine) ContainerRestart(ctx context.Context, ref string, opts ContainerStopOptions) error {
	ct, _, err := e.lookup(ref)
	if err != nil {
		return err
	}
	if err := e.ContainerStop(ctx, ct.ID(), opts); err != nil && !errors.Is(err, errdefs.ErrNotModified) {
		return err
	}
	if err := e.ContainerStart(ctx, ct.ID()); err != nil {
		return err
	}
	r := ct.Snapshot()
	e.emitContainer(ctx, evtypes.ActionRestart, &r, nil)
	return nil
}

// scheduleRestart starts the container again after delay, by its restart
// policy, unless something else (stop, rm, start) happened meanwhile. The
// caller holds the container's lock.
func (e *Engine) scheduleRestart(c *ctrs, ct *container.Container, l *liveState, delay time.Duration) {
	if c.bg.Err() != nil {
		return
	}
	gen := l.gen
	c.wg.Add(1)
	l.timer = time.AfterFunc(delay, func() {
		defer c.wg.Done()
		e.policyRestart(c.bg, c, ct, gen)
	})
}

// cancelRestart stops a pending restart of l. The caller holds the
// container's lock (or, at shutdown, c.mu).
func (c *ctrs) cancelRestart(l *liveState) {
	if l.timer != nil && l.timer.Stop() {
		c.wg.Done() // the timer's function will not run to do it
	}
	l.timer = nil
}

func (e *Engine) policyRestart(ctx context.Context, c *ctrs, ct *container.Container, gen int) {
	if ctx.Err() != nil {
		return
	}
	ct.Lock()
	defer ct.Unlock()
	l := c.liveOf(ct.ID())
	r := ct.R()
	l.timer = nil
	if l.gen != gen || r.State.Status != container.Restarting || l.stopping {
		return
	}
	r.RestartCount++
	if err := e.startLocked(ctx, c, ct, l); err != nil {
		log.From(ctx).Warn("restart policy: start failed", log.KeyContainer, r.ID, log.KeyErr, err)
		_ = ct.SetStatus(container.Exited)
		_ = ct.Save()
	}
}

// restore is live restore, at InitContainers: every container recorded as
// running (or paused, or restarting) is found again through its monitor;
// one whose monitor has gone gets the exit status the monitor wrote (or
// 255 if none), then its restart policy, as after any exit.
func (e *Engine) restore(ctx context.Context, c *ctrs) {
	for _, ct := range c.store.List() {
		ct.Lock()
		r := ct.R()
		st := r.State.Status
		switch {
		case st == container.Removing || st == container.Dead:
			// A removal the last daemon did not finish.
			ct.Unlock()
			if err := e.finishRemoval(ctx, c, ct); err != nil {
				log.From(ctx).Warn("restore: finish removal", log.KeyContainer, r.ID, log.KeyErr, err)
			}
			continue
		case st == container.Created || st == container.Exited:
			// Recorded as not running. A daemon that died between the
			// monitor's start and saving the running state leaves a
			// running container behind such a record: adopt it.
			if h, err := monitor.Connect(ctx, c.stateDir(r.ID)); err == nil {
				l := c.liveOf(r.ID)
				l.proc, l.mounted = h, c.rootfsDir(r.ID)
				l.gen++
				if err := ct.SetRunning(h.Pid(), time.Now().UTC()); err == nil {
					_ = ct.Save()
				}
				e.follow(c, ct, h, l.gen)
				ct.Unlock()
				log.From(ctx).Info("restore: adopted a container started just before the daemon went", log.KeyContainer, r.ID, log.KeyPID, h.Pid())
				continue
			}
			// Its rootfs may still be mounted if the daemon died
			// mid-start.
			_ = unmountRootfs(c.rootfsDir(r.ID))
			if st == container.Exited && r.State.StartedBefore && r.HostConfig.RestartPolicy.IsAlways() {
				// docker's always: a daemon start brings the container
				// back even if it was stopped by hand (unless-stopped
				// does not). After the back-off's first delay, so the
				// daemon's networks are up by then.
				r.State.ManuallyStopped = false
				if err := ct.SetStatus(container.Restarting); err == nil {
					_ = ct.Save()
					e.scheduleRestart(c, ct, c.liveOf(r.ID), container.BackoffStart)
				}
			}
			ct.Unlock()
			continue
		}
		l := c.liveOf(r.ID)
		h, err := monitor.Connect(ctx, c.stateDir(r.ID))
		if err == nil {
			l.proc = h
			l.mounted = c.rootfsDir(r.ID)
			l.gen++
			if st == container.Restarting {
				// It was restarted by the last daemon just before it went.
				_ = ct.SetRunning(h.Pid(), r.State.StartedAt)
				_ = ct.Save()
			}
			e.follow(c, ct, h, l.gen)
			ct.Unlock()
			log.From(ctx).Info("restore: container running", log.KeyContainer, r.ID, log.KeyPID, h.Pid())
			continue
		}
		if st == container.Restarting {
			// A restart was pending: the back-off begins again.
			e.scheduleRestart(c, ct, l, container.BackoffStart)
			ct.Unlock()
			continue
		}
		ex, err := monitor.ReadExit(c.stateDir(r.ID))
		if err != nil {
			ex = monitor.Exit{Code: 255, At: time.Now().UTC()}
		}
		// handleExit acts on the current run: give it one.
		l.gen++
		l.mounted = c.rootfsDir(r.ID)
		gen := l.gen
		ct.Unlock()
		log.From(ctx).Info("restore: container ended while the daemon was down", log.KeyContainer, r.ID, "exitCode", ex.Code)
		e.handleExit(ctx, c, ct, gen, ex)
	}
}

// finishRemoval completes a removal a crash interrupted.
func (e *Engine) finishRemoval(ctx context.Context, c *ctrs, ct *container.Container) error {
	ct.Lock()
	defer ct.Unlock()
	if ct.R().State.Status == container.Dead {
		if err := ct.SetStatus(container.Removing); err != nil {
			return err
		}
	}
	return e.removeLocked(ctx, c, ct, false)
}
