package daemon

import (
	"context"
	"errors"
	"fmt"
	"github.com/berth-dev/berth/internal/logfile"
	"os"
	"path/filepath"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/volume"
)

// ContainerConfig is how the Engine runs containers.
type ContainerConfig struct {
	// ExecRoot is the run-time state directory (/run/berth): the runtime
	// library's state (<exec-root>/runtime) and each container's monitor
	// (<exec-root>/containers/<id>).
	ExecRoot string
	// CgroupParent is the cgroup under which containers' cgroups go when
	// --cgroup-parent is not given ("" is /berth).
	CgroupParent string
	// LogMaxSize and LogMaxFiles are the json-file log's rotation when the
	// container's log options do not say: logs rotate by default.
	LogMaxSize  int64
	LogMaxFiles int
	// InitBinary is the host path of the init --init runs ("" looks for
	// docker-init, tini-static or tini on PATH).
	InitBinary string
}

// Default log rotation: logfile's (10 MiB × 3 files per container), so
// logs never grow until the disk is full.
const (
	defaultLogMaxSize  = logfile.DefaultMaxSize
	defaultLogMaxFiles = logfile.DefaultMaxFiles
)

// ctrs is the Engine's container side. It is safe for concurrent use.
// Lock order: a container's lock, then mu. mu guards live and hooks.
type ctrs struct {
	cfg         ContainerConfig
	store       *container.Store
	vols        *volume.Store
	rt          *runtime.Runtime
	runtimeRoot string
	stateRoot   string // <exec-root>/containers

	mu    sync.Mutex
	live  map[string]*liveState
	hooks map[string][]func(procHandle) error // OnNextStart's

	// monitors keeps one monitor process started ahead of the next
	// container start (monitor.Pool): its process start is off the path.
	monitors *monitor.Pool

	// bg is the context of the engine's own background work (exit
	// watchers, restart timers); cancel ends it and wg waits for it.
	bg     context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// liveState is what the engine holds in memory about a container while
// its process runs or a restart is pending: nothing here is persisted.
// Fields are guarded by the container's lock.
type liveState struct {
	proc    procHandle
	mounted string // the rootfs mount point, "" when not mounted
	// gen counts starts, so an exit watcher of an earlier run does not
	// act on a later one.
	gen int
	// backoff is the delay of the last restart; timer is a pending one.
	backoff time.Duration
	timer   *time.Timer
	// stopping is set by stop, kill and rm: the exit that follows is the
	// user's doing and no restart policy applies.
	stopping bool
}

// engineCtrs holds each Engine's container side (see buses in events.go
// for why this is not a field of Engine).
var engineCtrs sync.Map // *Engine → *ctrs

// errNoContainers is returned before InitContainers.
var errNoContainers = fmt.Errorf("containers are not initialised on this engine: %w", errdefs.ErrUnavailable)

func (e *Engine) ctrs() (*ctrs, error) {
	v, ok := engineCtrs.Load(e)
	if !ok {
		return nil, errNoContainers
	}
	return v.(*ctrs), nil
}

// InitContainers opens the container and volume stores, makes rmi refuse
// images in use, and restores the containers that were running when the
// daemon last stopped (live restore): a container whose monitor still
// runs is found again; one that ended meanwhile gets its exit status and
// its restart policy. Call it once, after New.
func (e *Engine) InitContainers(ctx context.Context, cfg ContainerConfig) error {
	if cfg.ExecRoot == "" {
		return fmt.Errorf("init containers: no exec root: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "/berth"
	}
	if cfg.LogMaxSize == 0 {
		cfg.LogMaxSize = defaultLogMaxSize
	}
	if cfg.LogMaxFiles == 0 {
		cfg.LogMaxFiles = defaultLogMaxFiles
	}
	execRoot, err := filepath.Abs(cfg.ExecRoot)
	if err != nil {
		return fmt.Errorf("init containers: %w", err)
	}
	cfg.ExecRoot = execRoot
	c := &ctrs{cfg: cfg, live: map[string]*liveState{}, hooks: map[string][]func(procHandle) error{}, monitors: monitor.NewPool(1),
		runtimeRoot: filepath.Join(execRoot, "runtime"), stateRoot: filepath.Join(execRoot, "containers")}
	if err := os.MkdirAll(c.stateRoot, 0o700); err != nil {
		return fmt.Errorf("init containers: %w", err)
	}
	if c.rt, err = runtime.New(c.runtimeRoot); err != nil {
		return fmt.Errorf("init containers: %w", err)
	}
	if c.vols, err = volume.Open(filepath.Join(e.root, "volumes")); err != nil {
		return fmt.Errorf("init containers: %w", err)
	}
	var orphans []string
	if c.store, orphans, err = container.Open(ctx, filepath.Join(e.root, "containers")); err != nil {
		return fmt.Errorf("init containers: %w", err)
	}
	c.bg, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if _, loaded := engineCtrs.LoadOrStore(e, c); loaded {
		c.cancel()
		return fmt.Errorf("init containers: already initialised: %w", errdefs.ErrConflict)
	}
	for _, id := range orphans {
		e.removeOrphan(ctx, c, id)
	}
	e.imageUsers = e.containersUsing
	e.restore(ctx, c)
	e.restoreExecs(ctx, c)
	return nil
}

// ShutdownContainers stops the engine's background work on containers
// (exit watchers, pending restarts). Containers keep running: a daemon
// started later finds them again. Call it before Close.
func (e *Engine) ShutdownContainers() {
	c, err := e.ctrs()
	if err != nil {
		return
	}
	c.cancel()
	c.mu.Lock()
	for _, l := range c.live {
		c.cancelRestart(l)
	}
	c.mu.Unlock()
	c.wg.Wait()
	c.monitors.Close()
	c.mu.Lock()
	for _, l := range c.live {
		if l.proc != nil {
			l.proc.Close()
		}
	}
	c.mu.Unlock()
	engineCtrs.Delete(e)
}

// removeOrphan cleans up after a create that a crash cut short: the
// directory has no record, so nothing refers to its snapshot or mounts.
func (e *Engine) removeOrphan(ctx context.Context, c *ctrs, id string) {
	dir := c.store.Dir(id)
	_ = unmountRootfs(filepath.Join(dir, "rootfs"))
	if err := e.snaps.Remove(ctx, snapshotKey(id)); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		log.From(ctx).Warn("containers: remove snapshot of an unfinished create; it may stay", log.KeyContainer, id, log.KeyErr, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		log.From(ctx).Warn("containers: remove an unfinished create", log.KeyContainer, id, log.KeyErr, err)
	}
}

// containersUsing is the imageUsers hook: which containers use image id.
func (e *Engine) containersUsing(_ context.Context, id digest.Digest) ([]ContainerRef, error) {
	c, err := e.ctrs()
	if err != nil {
		return nil, nil
	}
	var out []ContainerRef
	for _, ct := range c.store.List() {
		r := ct.Snapshot()
		if r.Image == id.String() {
			out = append(out, ContainerRef{ID: r.ID, Running: r.State.IsRunning() || r.State.Status == container.Restarting})
		}
	}
	return out, nil
}
