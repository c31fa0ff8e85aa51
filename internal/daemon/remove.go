package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"

	containertypes "github.com/moby/moby/api/types/container"
	evtypes "github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
)

// ContainerRemoveOptions are docker rm's.
type ContainerRemoveOptions struct {
	// Force kills a running container first.
	Force bool
	// RemoveVolumes removes the container's anonymous volumes too.
	RemoveVolumes bool
	// RemoveLink removes only a legacy link: ref is its name,
	// /parent/alias (links.go).
	RemoveLink bool
}

// ContainerRemove removes a container: its writable layer, its
// directories and its record. A running one needs Force (docker's
// conflict otherwise).
func (e *Engine) ContainerRemove(ctx context.Context, ref string, opts ContainerRemoveOptions) error {
	if opts.RemoveLink {
		return e.removeLink(ctx, ref)
	}
	ct, c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	ct.Lock()
	r := ct.R()
	switch st := r.State.Status; {
	case st == container.Removing:
		ct.Unlock()
		return fmt.Errorf("removal of container %s is already in progress: %w", r.ID, errdefs.ErrConflict)
	case st == container.Restarting || r.State.IsRunning():
		if !opts.Force {
			ct.Unlock()
			return fmt.Errorf("cannot remove container \"/%s\": container is %s: stop the container before removing or force remove: %w", r.Name, st, errdefs.ErrConflict)
		}
		l := c.liveOf(r.ID)
		c.cancelRestart(l)
		e.markStopping(c, ct)
		if st == container.Restarting {
			_ = ct.SetStatus(container.Exited)
			ct.Unlock()
		} else {
			ct.Unlock()
			if err := e.stopProcess(ctx, c, ct, unix.SIGKILL, 0); err != nil {
				return fmt.Errorf("remove %s: %w", r.ID, err)
			}
		}
		ct.Lock()
		if ct.R().State.IsRunning() {
			ct.Unlock()
			return fmt.Errorf("remove %s: still running after SIGKILL: %w", r.ID, errdefs.ErrConflict)
		}
	}
	defer ct.Unlock()
	if err := ct.SetStatus(container.Removing); err != nil {
		return err
	}
	if err := e.removeLocked(ctx, c, ct, opts.RemoveVolumes); err != nil {
		_ = ct.SetStatus(container.Dead)
		r.State.Error = err.Error()
		_ = ct.Save()
		return err
	}
	e.emitContainer(ctx, evtypes.ActionDestroy, r, nil)
	return nil
}

// removeLocked frees everything of a stopped container. The caller holds
// the lock.
func (e *Engine) removeLocked(ctx context.Context, c *ctrs, ct *container.Container, volumes bool) error {
	r := ct.R()
	l := c.liveOf(r.ID)
	if err := unmountRootfs(c.rootfsDir(r.ID)); err != nil {
		return fmt.Errorf("remove %s: %w", r.ID, err)
	}
	l.mounted = ""
	if err := e.networkDown(ctx, r.ID); err != nil {
		return fmt.Errorf("remove %s: %w", r.ID, err)
	}
	// The exit's handling deletes the runtime's state; what is left
	// belongs to a monitor (or daemon) that died first.
	e.deleteRuntime(ctx, c, r.ID, true)
	if err := e.snaps.Remove(ctx, r.SnapshotKey); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return fmt.Errorf("remove %s: %w", r.ID, err)
	}
	if err := os.RemoveAll(c.stateDir(r.ID)); err != nil {
		log.From(ctx).Warn("remove: monitor state", log.KeyContainer, r.ID, log.KeyErr, err)
	}
	if volumes {
		for _, v := range r.AnonymousVolumes {
			if e.volumeInUse(c, v, r.ID) {
				continue
			}
			if err := c.vols.Remove(v); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				log.From(ctx).Warn("remove: anonymous volume", log.KeyContainer, r.ID, "volume", v, log.KeyErr, err)
				continue
			}
			e.Emit(ctx, evtypes.VolumeEventType, evtypes.ActionDestroy, v, map[string]string{"driver": "local"})
		}
	}
	if err := c.store.Delete(ct); err != nil {
		return err
	}
	c.dropLive(r.ID)
	return nil
}

// volumeInUse says whether a container other than except mounts volume
// name.
func (e *Engine) volumeInUse(c *ctrs, name, except string) bool {
	for _, o := range c.store.List() {
		if o.ID() == except {
			continue
		}
		for _, m := range o.Snapshot().Mounts {
			if m.Name == name {
				return true
			}
		}
	}
	return false
}

// ContainersPrune removes every stopped container the filters select
// (until=<time>, label=, label!=).
func (e *Engine) ContainersPrune(ctx context.Context, f Filters) (containertypes.PruneReport, error) {
	c, err := e.ctrs()
	if err != nil {
		return containertypes.PruneReport{}, err
	}
	if err := f.check("until", "label", "label!"); err != nil {
		return containertypes.PruneReport{}, err
	}
	until, err := untilFilter(f)
	if err != nil {
		return containertypes.PruneReport{}, err
	}
	var rep containertypes.PruneReport
	for _, ct := range c.store.List() {
		r := ct.Snapshot()
		if r.State.IsRunning() || r.State.Status == container.Restarting || r.State.Status == container.Removing {
			continue
		}
		if !until.IsZero() && !r.Created.Before(until) {
			continue
		}
		if !f.labels("label", r.Config.Labels) || !notLabels(f, r.Config.Labels) {
			continue
		}
		size := e.sizeRw(ctx, r.SnapshotKey)
		if err := e.ContainerRemove(ctx, r.ID, ContainerRemoveOptions{}); err != nil {
			if errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrConflict) {
				continue // removed or started meanwhile
			}
			return rep, err
		}
		rep.ContainersDeleted = append(rep.ContainersDeleted, r.ID)
		rep.SpaceReclaimed += uint64(size)
	}
	e.Emit(ctx, evtypes.ContainerEventType, evtypes.ActionPrune, "", map[string]string{"reclaimed": itoa(int64(rep.SpaceReclaimed))})
	return rep, nil
}

// notLabels checks label!=key[=value] filters: none may match.
func notLabels(f Filters, labels map[string]string) bool {
	for _, want := range f["label!"] {
		if (Filters{"l": {want}}).labels("l", labels) {
			return false
		}
	}
	return true
}
