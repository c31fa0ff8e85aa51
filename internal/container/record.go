package container

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// Record is what the engine knows about one container. It is persisted as
// JSON; field names follow docker's inspect where one exists.
type Record struct {
	ID      string    `json:"ID"`
	Name    string    `json:"Name"` // without docker's leading slash
	Created time.Time `json:"Created"`
	Path    string    `json:"Path"`
	Args    []string  `json:"Args"`
	// Image is the image ID (sha256:…); ImageName what the user asked for.
	Image     string `json:"Image"`
	ImageName string `json:"ImageName"`
	Platform  string `json:"Platform,omitempty"`

	Config     *container.Config     `json:"Config"`
	HostConfig *container.HostConfig `json:"HostConfig"`
	// Endpoints are the create request's per-network settings (aliases,
	// static addresses), applied when the container's network comes up.
	Endpoints map[string]*network.EndpointSettings `json:"Endpoints,omitempty"`

	State        State `json:"State"`
	RestartCount int   `json:"RestartCount"`

	// SnapshotKey is the writable layer's key in the snapshotter; Driver
	// the snapshotter's name.
	SnapshotKey string `json:"SnapshotKey"`
	Driver      string `json:"Driver"`

	// Mounts are the container's volumes, binds and tmpfs mounts as
	// inspect shows them; AnonymousVolumes the volumes created for it
	// alone, removed with rm -v.
	Mounts           []container.MountPoint `json:"Mounts,omitempty"`
	AnonymousVolumes []string               `json:"AnonymousVolumes,omitempty"`
	// CopyUp lists the destinations of volumes created for this container
	// that still get the image's files there at the first start (docker
	// fills a new, empty volume from the image).
	CopyUp []string `json:"CopyUp,omitempty"`

	LogPath        string `json:"LogPath,omitempty"`
	ResolvConfPath string `json:"ResolvConfPath,omitempty"`
	HostnamePath   string `json:"HostnamePath,omitempty"`
	HostsPath      string `json:"HostsPath,omitempty"`
}

// Container is a record with its lock and the means to wait for its state.
// It is safe for concurrent use: mu guards rec, changed, exits and
// removed. Lock order: Store.mu before Container.mu is never needed; the
// store is only read under its own lock and never calls out while held.
type Container struct {
	mu      sync.Mutex
	rec     Record
	created int64 // rec.Created, immutable: read without the lock
	store   *Store
	changed chan struct{} // closed and replaced at every state change
	exits   uint64        // how many times the container exited
	removed bool
}

func newContainer(s *Store, r Record) *Container {
	return &Container{rec: r, store: s, changed: make(chan struct{}), created: r.Created.UnixNano()}
}

// ID is the container's ID (immutable).
func (c *Container) ID() string { return c.rec.ID }

// Lock takes the container's lock; R and the state methods need it held.
func (c *Container) Lock() { c.mu.Lock() }

// Unlock releases the lock.
func (c *Container) Unlock() { c.mu.Unlock() }

// R is the record, for reading and changing under the lock.
func (c *Container) R() *Record { return &c.rec }

// Snapshot copies the record under the lock, for readers that do not
// change it (inspect, list). Config and HostConfig are shared and must not
// be changed through the copy.
func (c *Container) Snapshot() Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rec
	r.Mounts = slices.Clone(r.Mounts)
	return r
}

// SetStatus moves the container to status to, if the transition table
// allows it, and wakes waiters. The caller holds the lock and saves.
func (c *Container) SetStatus(to Status) error {
	from := c.rec.State.Status
	if from == to {
		return nil
	}
	if !CanTransition(from, to) {
		return errTransition(c.rec.ID, from, to)
	}
	c.rec.State.Status = to
	if to == Exited || to == Restarting && (from == Running || from == Paused) {
		c.exits++
	}
	c.notify()
	return nil
}

// SetRunning records a started process. The caller holds the lock.
func (c *Container) SetRunning(pid int, at time.Time) error {
	if err := c.SetStatus(Running); err != nil {
		return err
	}
	st := &c.rec.State
	st.Pid, st.StartedAt, st.ExitCode, st.Error, st.OOMKilled = pid, at, 0, "", false
	st.StartedBefore = true
	if st.Health != nil {
		st.Health = &container.Health{Status: container.Starting}
	}
	return nil
}

// SetExited records the end of the process (to exited, or restarting when
// a restart policy takes it on). The caller holds the lock.
func (c *Container) SetExited(to Status, code int, oom bool, at time.Time, errMsg string) error {
	st := &c.rec.State
	st.Pid, st.ExitCode, st.OOMKilled, st.FinishedAt, st.Error = 0, code, oom, at, errMsg
	if st.Health != nil {
		st.Health.Status = container.Unhealthy
		if to == Exited {
			st.Health = &container.Health{Status: container.Unhealthy, FailingStreak: st.Health.FailingStreak, Log: st.Health.Log}
		}
	}
	if c.rec.State.Status == to {
		// restarting → exited counts as an exit too.
		c.exits++
		c.notify()
		return nil
	}
	return c.SetStatus(to)
}

// SetError records a start failure (docker's State.Error and exit code).
// The caller holds the lock.
func (c *Container) SetError(code int, msg string) {
	c.rec.State.ExitCode, c.rec.State.Error = code, msg
	c.notify()
}

func (c *Container) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Save writes the record to disk atomically. The caller holds the lock.
func (c *Container) Save() error { return c.store.save(&c.rec) }

// WaitResult is the outcome docker's wait reports.
type WaitResult struct {
	ExitCode int
	Error    string
}

// Wait registers a wait for cond now (so an exit right after the call is
// not missed) and returns a channel that yields once when it is met, or
// is closed if ctx ends first.
func (c *Container) Wait(ctx context.Context, cond container.WaitCondition) <-chan WaitResult {
	c.mu.Lock()
	startExits := c.exits
	c.mu.Unlock()
	out := make(chan WaitResult, 1)
	go func() {
		defer close(out)
		for {
			c.mu.Lock()
			done := false
			switch cond {
			case container.WaitConditionNextExit:
				done = c.exits > startExits || c.removed
			case container.WaitConditionRemoved:
				done = c.removed
			default: // not-running
				s := c.rec.State.Status
				done = s != Running && s != Paused && s != Restarting || c.removed
			}
			res := WaitResult{ExitCode: c.rec.State.ExitCode, Error: c.rec.State.Error}
			ch := c.changed
			c.mu.Unlock()
			if done {
				out <- res
				return
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// Changed returns a channel closed at the next state change. The caller
// holds the lock.
func (c *Container) Changed() <-chan struct{} { return c.changed }
