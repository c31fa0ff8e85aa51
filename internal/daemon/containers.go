package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"

	evtypes "github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/mount"
)

// The container side of the Engine is spread over files by verb:
// containers_init.go (stores, InitContainers), create.go, start.go (and the
// exit path), stop.go (stop, kill, pause), restart.go (policies, live
// restore), remove.go, inspect.go, list.go, update.go (update, rename),
// archive.go (cp, export, diff, commit).
//
// On disk the container side owns:
//
//	<root>/containers/<id>/   config.v2.json (internal/container), hostname,
//	                          hosts, resolv.conf, config.json (the bundle's
//	                          spec, rebuilt at each start), rootfs/ (the
//	                          writable layer's mount point), <id>-json.log
//	<root>/volumes/<name>/    internal/volume
//	<exec-root>/runtime/      internal/runtime's state
//	<exec-root>/containers/<id>/  the monitor's state directory
//
// and in the snapshotter the active snapshot "container-<id>".
//
// For the monitor engineer's files (exec, attach, logs, stats, top,
// health), the entry points are:
//
//	e.lookup(ref) (*container.Container, *ctrs, error)  // by ID, prefix or name
//	e.procOf(id) procHandle                             // the running monitor, nil if none
//	c.stateDir(id)                                      // <exec-root>/containers/<id>
//	c.rt                                                // runtime.Runtime on the shared root
//	c.OnNextStart(id, fn)                               // run fn with the next run's handle before it starts

// OnNextStart registers fn to run when container id's next run exists
// and before its process runs: attach-then-start (docker run without -d)
// attaches there so no output is lost. An error from fn fails the start.
func (c *ctrs) OnNextStart(id string, fn func(procHandle) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hooks[id] = append(c.hooks[id], fn)
}

func (c *ctrs) takeStartHooks(id string) []func(procHandle) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.hooks[id]
	delete(c.hooks, id)
	return h
}

// snapshotKey is the writable layer's key of container id.
func snapshotKey(id string) string { return "container-" + id }

// lookup finds a container by ID, unique ID prefix or name.
func (e *Engine) lookup(ref string) (*container.Container, *ctrs, error) {
	c, err := e.ctrs()
	if err != nil {
		return nil, nil, err
	}
	ct, err := c.store.Get(ref)
	if err != nil {
		return nil, nil, err
	}
	return ct, c, nil
}

// stateDir is the monitor's directory of container id.
func (c *ctrs) stateDir(id string) string { return filepath.Join(c.stateRoot, id) }

// liveOf is id's in-memory state, made on first use.
func (c *ctrs) liveOf(id string) *liveState {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.live[id]
	if l == nil {
		l = &liveState{}
		c.live[id] = l
	}
	return l
}

func (c *ctrs) dropLive(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.live, id)
}

// procOf is the monitor handle of a running container, or nil.
func (e *Engine) procOf(id string) procHandle {
	c, err := e.ctrs()
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.live[id]; l != nil {
		return l.proc
	}
	return nil
}

// emitContainer publishes a container event with docker's attributes:
// the name, the image as the user gave it, the labels, and extra.
func (e *Engine) emitContainer(ctx context.Context, action evtypes.Action, r *container.Record, extra map[string]string) {
	attrs := map[string]string{"name": r.Name, "image": r.ImageName}
	if r.Config != nil {
		maps.Copy(attrs, r.Config.Labels)
	}
	maps.Copy(attrs, extra)
	e.Emit(ctx, evtypes.ContainerEventType, action, r.ID, attrs)
}

// rootfsDir is where a container's root filesystem is mounted.
func (c *ctrs) rootfsDir(id string) string { return filepath.Join(c.store.Dir(id), "rootfs") }

// mountRootfs mounts the container's writable layer at its rootfs
// directory, if it is not mounted yet. The caller holds the lock.
func (e *Engine) mountRootfs(ctx context.Context, c *ctrs, r *container.Record, l *liveState) (string, error) {
	if l.mounted != "" {
		return l.mounted, nil
	}
	dir := c.rootfsDir(r.ID)
	ms, err := e.snaps.Mounts(ctx, r.SnapshotKey)
	if err != nil {
		return "", fmt.Errorf("mount rootfs of %s: %w", r.ID, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("mount rootfs of %s: %w", r.ID, err)
	}
	if err := mount.All(ctx, ms, dir); err != nil {
		return "", fmt.Errorf("mount rootfs of %s: %w", r.ID, err)
	}
	l.mounted = dir
	return dir, nil
}

// unmountRootfs unmounts whatever is stacked on dir.
func unmountRootfs(dir string) error {
	if err := mount.UnmountAll(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// withRootfs calls fn with the container's root filesystem, mounting it
// for the call if the container is not running. The caller holds the
// container's lock.
func (e *Engine) withRootfs(ctx context.Context, c *ctrs, r *container.Record, fn func(root string) error) error {
	l := c.liveOf(r.ID)
	if l.mounted != "" {
		return fn(l.mounted)
	}
	root, err := e.mountRootfs(ctx, c, r, l)
	if err != nil {
		return err
	}
	defer func() {
		if err := unmountRootfs(root); err == nil {
			l.mounted = ""
		}
	}()
	return fn(root)
}

// errNotRunning is docker's conflict for a verb on a stopped container.
func errNotRunning(id string) error {
	return fmt.Errorf("container %s is not running: %w", id, errdefs.ErrConflict)
}
