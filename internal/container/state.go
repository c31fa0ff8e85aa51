package container

import (
	"fmt"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Status is docker's container state name.
type Status = container.ContainerState

// The states, as docker names them.
const (
	Created    = container.StateCreated
	Running    = container.StateRunning
	Paused     = container.StatePaused
	Restarting = container.StateRestarting
	Removing   = container.StateRemoving
	Exited     = container.StateExited
	Dead       = container.StateDead
)

// transitions is the one table of allowed state changes. A state change
// not listed here is a bug in the caller or a request that arrived in the
// wrong state; SetStatus refuses it with ErrConflict.
//
//	created    → running (start), removing (rm), dead (failed rm)
//	running    → paused, exited, restarting (policy), removing (rm -f)
//	paused     → running (unpause), exited (killed while frozen), removing
//	restarting → running (restarted), exited (gave up, or stopped), removing
//	exited     → running (start again), restarting (policy), removing
//	removing   → dead (removal failed half-way)
//	dead       → removing (retry)
var transitions = map[Status][]Status{
	Created:    {Running, Exited, Removing, Dead},
	Running:    {Paused, Exited, Restarting, Removing},
	Paused:     {Running, Exited, Removing},
	Restarting: {Running, Exited, Removing},
	Exited:     {Running, Restarting, Removing},
	Removing:   {Dead, Exited, Created},
	Dead:       {Removing},
}

// CanTransition says whether from → to is allowed.
func CanTransition(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// State is a container's run state as it is persisted.
type State struct {
	Status     Status    `json:"Status"`
	Pid        int       `json:"Pid"`
	ExitCode   int       `json:"ExitCode"`
	Error      string    `json:"Error,omitempty"`
	OOMKilled  bool      `json:"OOMKilled"`
	StartedAt  time.Time `json:"StartedAt"`
	FinishedAt time.Time `json:"FinishedAt"`
	// Health is nil without a healthcheck.
	Health *container.Health `json:"Health,omitempty"`
	// ManuallyStopped is set by stop and kill through the API and cleared
	// by start: unless-stopped and always do not restart such a container
	// after a daemon restart (unless-stopped) or at all (both, until
	// started again).
	ManuallyStopped bool `json:"ManuallyStopped,omitempty"`
	// StartedBefore says the container ran at least once.
	StartedBefore bool `json:"StartedBefore,omitempty"`
}

// IsRunning says the container's process exists (running or paused, or
// restarting between two runs does not count).
func (s State) IsRunning() bool { return s.Status == Running || s.Status == Paused }

// API is the state in the Engine API's shape.
func (s State) API() *container.State {
	out := &container.State{
		Status: s.Status,
		// docker reports Running while paused and between restarts too.
		Running:    s.Status == Running || s.Status == Paused || s.Status == Restarting,
		Paused:     s.Status == Paused,
		Restarting: s.Status == Restarting,
		OOMKilled:  s.OOMKilled,
		Dead:       s.Status == Dead,
		Pid:        s.Pid,
		ExitCode:   s.ExitCode,
		Error:      s.Error,
		StartedAt:  formatTime(s.StartedAt),
		FinishedAt: formatTime(s.FinishedAt),
		Health:     s.Health,
	}
	return out
}

// zeroTime is how docker shows a time that never happened.
const zeroTime = "0001-01-01T00:00:00Z"

func formatTime(t time.Time) string {
	if t.IsZero() {
		return zeroTime
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// errTransition is the refusal of a state change.
func errTransition(id string, from, to Status) error {
	return fmt.Errorf("container %s: cannot go from %s to %s: %w", id, from, to, errdefs.ErrConflict)
}
