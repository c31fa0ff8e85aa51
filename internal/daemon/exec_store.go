package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	containertypes "github.com/moby/moby/api/types/container"
	evtypes "github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/monitor"
)

// Exec sessions outlive the daemon. Each has a directory in its
// container's state directory, so a container's removal takes them along:
//
//	<exec-root>/containers/<id>/exec/<exec-id>/
//	    exec.json   execRecord: what was asked, written at create
//	    start.json  execStarted: the process and its holder, once it runs
//	    exit        execExit: written by the holder when the process ends
//	                (by the daemon for one that could not start)
//	    c.sock      a tty exec's console socket, while it starts
//
// A daemon's start (restoreExecs) reads them back: ended sessions with
// their exit codes, running ones with their pids (and a watch on their
// holders), created ones still startable. Sessions of a container that
// has started again since are dropped, as docker drops them.

// execRecord is exec.json.
type execRecord struct {
	ID          string                           `json:"id"`
	ContainerID string                           `json:"containerId"`
	Created     time.Time                        `json:"created"`
	Config      containertypes.ExecCreateRequest `json:"config"`
}

// execStarted is start.json, written by the holder.
type execStarted struct {
	Pid         int    `json:"pid"`
	PidStart    uint64 `json:"pidStart"` // clock ticks after boot
	HolderPid   int    `json:"holderPid"`
	HolderStart uint64 `json:"holderStart"`
}

const (
	execRecordFile  = "exec.json"
	execStartedFile = "start.json"
	execExitFile    = "exit"
)

// execDir is exec xid's directory.
func (c *ctrs) execDir(containerID, xid string) string {
	return filepath.Join(c.stateDir(containerID), "exec", xid)
}

// writeJSONAtomic writes v to path through a temp file and a rename: a
// daemon killed at any point leaves the old file or the new one, never a
// part. No fsync: these files live on the exec root (a tmpfs, /run), and
// what they describe, running processes, does not survive the power loss
// an fsync would guard against.
func writeJSONAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// saveExecRecord makes x's directory and writes its exec.json.
func saveExecRecord(x *execSession) error {
	if err := os.MkdirAll(x.dir, 0o700); err != nil {
		return fmt.Errorf("exec %s: %w", x.id, err)
	}
	return writeJSONAtomic(filepath.Join(x.dir, execRecordFile),
		execRecord{ID: x.id, ContainerID: x.containerID, Created: x.created, Config: x.req})
}

// saveExecExit records the status of an exec that could not start (the
// holder writes the others). The file exists if the holder was started;
// otherwise it is made here.
func saveExecExit(dir string, code int) error {
	f, err := os.OpenFile(filepath.Join(dir, execExitFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(0); err != nil {
		return err
	}
	return writeExecExit(f, execExit{Code: code, At: time.Now().UTC()})
}

// restoreExecs finds the exec sessions of c's containers after a daemon
// start (see above). Call it once containers are restored.
func (e *Engine) restoreExecs(ctx context.Context, c *ctrs) {
	for _, ct := range c.store.List() {
		r := ct.Snapshot()
		root := filepath.Join(c.stateDir(r.ID), "exec")
		ents, err := os.ReadDir(root)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				log.From(ctx).Warn("restore execs", log.KeyContainer, r.ID, log.KeyErr, err)
			}
			continue
		}
		for _, ent := range ents {
			dir := filepath.Join(root, ent.Name())
			x, err := loadExecSession(dir, r)
			if err != nil {
				log.From(ctx).Warn("restore execs: dropping an unreadable session", log.KeyContainer, r.ID, log.KeyPath, dir, log.KeyErr, err)
				_ = os.RemoveAll(dir)
				continue
			}
			if x == nil {
				_ = os.RemoveAll(dir) // the container started again since
				continue
			}
			e.execs().add(x)
			if x.running {
				e.watchRestoredExec(c, x, r)
			}
		}
	}
}

// loadExecSession reads one session's directory; nil if it belongs to an
// earlier run of its container.
func loadExecSession(dir string, r container.Record) (*execSession, error) {
	var rec execRecord
	if err := readJSON(filepath.Join(dir, execRecordFile), &rec); err != nil {
		return nil, err
	}
	if rec.ID != filepath.Base(dir) || rec.ContainerID != r.ID || len(rec.Config.Cmd) == 0 {
		return nil, fmt.Errorf("exec record %s: wrong identity: %w", dir, errdefs.ErrInvalidArgument)
	}
	if !r.State.StartedAt.IsZero() && rec.Created.Before(r.State.StartedAt) {
		return nil, nil
	}
	keys, _ := monitor.ParseDetachKeys(rec.Config.DetachKeys)
	x := &execSession{id: rec.ID, containerID: r.ID, req: rec.Config, detachKeys: keys, dir: dir,
		created: rec.Created, done: make(chan struct{})}
	if ex, err := readExecExit(filepath.Join(dir, execExitFile)); err == nil {
		x.started = true
		x.exitCode = &ex.Code
		x.setPid(dir)
		close(x.done)
		return x, nil
	}
	st, err := readExecStarted(dir)
	if err != nil {
		if _, err := os.Stat(filepath.Join(dir, execExitFile)); err == nil {
			// Handed to a holder that never started the process (or
			// died first): as a holder that died.
			code := 255
			x.started, x.exitCode = true, &code
			close(x.done)
		}
		return x, nil // created, never started: still startable
	}
	x.started, x.running, x.pid = true, true, st.Pid
	x.holder = &execHolder{pid: st.Pid, pidStart: st.PidStart, holder: st.HolderPid, holderStart: st.HolderStart,
		exitPath: filepath.Join(dir, execExitFile)}
	return x, nil
}

// setPid fills x.pid from start.json, if any: inspect shows the pid of an
// ended exec too.
func (x *execSession) setPid(dir string) {
	if st, err := readExecStarted(dir); err == nil {
		x.pid = st.Pid
	}
}

// readExecStarted reads start.json; errdefs.ErrNotFound while it holds
// nothing (never handed to a holder, or the holder has not started the
// process).
func readExecStarted(dir string) (execStarted, error) {
	var st execStarted
	b, err := os.ReadFile(filepath.Join(dir, execStartedFile))
	if err != nil || len(b) == 0 || json.Unmarshal(b, &st) != nil || st.Pid <= 0 {
		return execStarted{}, fmt.Errorf("exec start record in %s: %w", dir, errdefs.ErrNotFound)
	}
	return st, nil
}

// watchRestoredExec waits, in the engine's background, for a running
// exec found at start-up to end, and records the exit.
func (e *Engine) watchRestoredExec(c *ctrs, x *execSession, r container.Record) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ex, err := x.holder.wait(c.bg)
		if err != nil {
			return // the daemon is stopping; the next one watches again
		}
		e.execEnded(c.bg, x, &r, ex.Code)
	}()
}

// execEnded records that x's process ended with code and publishes
// exec_die.
func (e *Engine) execEnded(ctx context.Context, x *execSession, r *container.Record, code int) {
	x.mu.Lock()
	x.running, x.exitCode, x.master = false, &code, nil
	x.mu.Unlock()
	close(x.done)
	e.emitContainer(ctx, evtypes.ActionExecDie, r, map[string]string{"execID": x.id, "exitCode": strconv.Itoa(code)})
}

// ExecIDs lists the exec sessions running in container id, oldest first:
// container inspect's ExecIDs (nil when none, as docker's null).
func (e *Engine) ExecIDs(id string) []string {
	s := e.execs()
	s.mu.Lock()
	var running []*execSession
	for _, x := range s.sessions {
		if x.containerID != id {
			continue
		}
		x.mu.Lock()
		if x.running {
			running = append(running, x)
		}
		x.mu.Unlock()
	}
	s.mu.Unlock()
	slices.SortFunc(running, func(a, b *execSession) int { return a.created.Compare(b.created) })
	var out []string
	for _, x := range running {
		out = append(out, x.id)
	}
	return out
}
