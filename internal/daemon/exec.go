package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	containertypes "github.com/moby/moby/api/types/container"
	evtypes "github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/caps"
	"github.com/berth-dev/berth/internal/runtime/console"
	"github.com/berth-dev/berth/internal/specgen"
)

// AttachStreams are a hijacked client's stdio (attach, exec start). Stdin
// is nil unless asked for; Stdout and Stderr are nil unless asked for
// (with a tty, Stderr is Stdout). Close ends the session.
type AttachStreams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Close          func()
}

// ExecStartOptions are POST /exec/{id}/start's.
type ExecStartOptions struct {
	Detach, Tty bool
	ConsoleSize *[2]uint // height, width
	// Streams takes the connection over (not called when detached).
	Streams func(tty bool) (AttachStreams, error)
}

// execSession is one exec instance. mu guards the fields below it.
type execSession struct {
	id, containerID string
	req             containertypes.ExecCreateRequest
	detachKeys      []byte
	dir             string // on disk (exec_store.go)
	created         time.Time

	mu       sync.Mutex
	started  bool
	running  bool
	exitCode *int
	pid      int
	master   *os.File    // the pty master while a tty exec runs
	holder   *execHolder // while it runs
	done     chan struct{}
}

// execStore holds an Engine's exec sessions (beside Engine, as buses in
// events.go, so engine.go stays the images engineer's).
type execStore struct {
	mu       sync.Mutex
	sessions map[string]*execSession
	// shared is the engine's exec holder (exec_holder.go); retireOnStop
	// says the engine's stop closes its control socket.
	shared       *sharedHolder
	retireOnStop bool
}

var execStores sync.Map // *Engine → *execStore

func (e *Engine) execs() *execStore {
	v, _ := execStores.LoadOrStore(e, &execStore{sessions: map[string]*execSession{}})
	return v.(*execStore)
}

// maxFinishedExecs bounds the finished sessions kept for inspect; docker
// keeps them until the container goes, which grows without bound for a
// container exec'd into in a loop (a healthcheck).
const maxFinishedExecs = 256

func (s *execStore) add(x *execSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[x.id] = x
	if len(s.sessions) <= maxFinishedExecs*2 {
		return
	}
	n := 0
	for id, o := range s.sessions {
		o.mu.Lock()
		finished := o.exitCode != nil
		o.mu.Unlock()
		if finished && n < maxFinishedExecs {
			delete(s.sessions, id)
			if o.dir != "" {
				_ = os.RemoveAll(o.dir)
			}
			n++
		}
	}
}

func (s *execStore) get(id string) (*execSession, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x, ok := s.sessions[id]; ok {
		return x, nil
	}
	return nil, errNoExec(id)
}

func errNoExec(id string) error {
	return fmt.Errorf("No such exec instance: %s: %w", id, errdefs.ErrNotFound) //nolint:staticcheck // docker's words
}

// forget drops x, in memory and on disk.
func (s *execStore) forget(x *execSession) {
	s.mu.Lock()
	delete(s.sessions, x.id)
	s.mu.Unlock()
	if x.dir != "" {
		_ = os.RemoveAll(x.dir)
	}
}

// session finds exec id. One whose container has been removed, or has
// started again since the exec was created, is forgotten: docker keeps an
// exec until then.
func (e *Engine) session(id string) (*execSession, error) {
	s := e.execs()
	x, err := s.get(id)
	if err != nil {
		return nil, err
	}
	ct, _, err := e.lookup(x.containerID)
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
	case err != nil:
		return nil, err
	case !ct.Snapshot().State.StartedAt.After(x.created):
		return x, nil
	}
	s.forget(x)
	return nil, errNoExec(id)
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ExecCreate registers a process to run in a running container.
func (e *Engine) ExecCreate(ctx context.Context, ref string, req containertypes.ExecCreateRequest) (containertypes.ExecCreateResponse, error) {
	ct, c, err := e.lookup(ref)
	if err != nil {
		return containertypes.ExecCreateResponse{}, err
	}
	r := ct.Snapshot()
	switch r.State.Status {
	case container.Running:
	case container.Paused:
		return containertypes.ExecCreateResponse{}, fmt.Errorf("container %s is paused, unpause the container before exec: %w", r.ID, errdefs.ErrConflict)
	default:
		return containertypes.ExecCreateResponse{}, errNotRunning(r.ID)
	}
	if len(req.Cmd) == 0 {
		return containertypes.ExecCreateResponse{}, fmt.Errorf("no exec command specified: %w", errdefs.ErrInvalidArgument)
	}
	keys, err := monitor.ParseDetachKeys(req.DetachKeys)
	if err != nil {
		return containertypes.ExecCreateResponse{}, err
	}
	x := &execSession{id: randomID(), containerID: r.ID, req: req, detachKeys: keys, created: time.Now().UTC(), done: make(chan struct{})}
	x.dir = c.execDir(r.ID, x.id)
	if err := saveExecRecord(x); err != nil {
		return containertypes.ExecCreateResponse{}, err
	}
	e.execs().add(x)
	e.emitContainer(ctx, evtypes.Action(string(evtypes.ActionExecCreate)+": "+strings.Join(req.Cmd, " ")), &r, map[string]string{"execID": x.id})
	return containertypes.ExecCreateResponse{ID: x.id}, nil
}

// ExecStart runs the exec. Detached, it returns once the process runs.
// Attached, it calls opts.Streams once, just before the process starts,
// and returns when the process has exited and its output is copied. A
// command that cannot run fails with monitor.ErrCommandNotFound or
// ErrCommandNotExecutable, and the exec's exit code becomes 127 or 126.
// The process runs under a holder (exec_holder.go), so it and its exit
// status outlive this daemon.
func (e *Engine) ExecStart(ctx context.Context, id string, opts ExecStartOptions) (retErr error) {
	x, err := e.session(id)
	if err != nil {
		return err
	}
	x.mu.Lock()
	if x.started {
		x.mu.Unlock()
		return fmt.Errorf("exec %s has already been started: %w", id, errdefs.ErrConflict)
	}
	x.started = true
	x.mu.Unlock()
	failed := func(err error) error {
		code := 126
		if errors.Is(err, monitor.ErrCommandNotFound) {
			code = 127
		}
		if serr := saveExecExit(x.dir, code); serr != nil {
			log.From(ctx).Warn("exec: record the exit of a failed start", log.KeyContainer, x.containerID, log.KeyErr, serr)
		}
		x.mu.Lock()
		x.exitCode = &code
		x.mu.Unlock()
		close(x.done)
		return err
	}
	ct, c, err := e.lookup(x.containerID)
	if err != nil {
		return failed(err)
	}
	r := ct.Snapshot()
	if r.State.Status != container.Running {
		return failed(errNotRunning(r.ID))
	}
	rc, err := c.rt.Load(ctx, r.ID)
	if err != nil {
		return failed(fmt.Errorf("exec in %s: %w", r.ID, err))
	}
	tty := x.req.Tty || opts.Tty
	proc, err := execProcess(rc, x.req, tty, opts.ConsoleSize)
	if err != nil {
		return failed(err)
	}

	var streams AttachStreams
	attached := !opts.Detach && opts.Streams != nil
	if attached {
		if streams, err = opts.Streams(tty); err != nil {
			return failed(err)
		}
	}
	// The process's stdio: pipes to copy to the client, or (detached, or
	// a tty, whose master the holder hands over) /dev/null.
	var stdio [3]*os.File
	var ours [3]*os.File // our ends: stdin writer, stdout and stderr readers
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			if f != nil {
				f.Close()
			}
		}
	}
	defer closeAll(stdio[:])
	if !tty && attached {
		if x.req.AttachStdin && streams.Stdin != nil {
			pr, pw, err := os.Pipe()
			if err != nil {
				return failed(err)
			}
			stdio[0], ours[0] = pr, pw
		}
		for i := 1; i < 3; i++ {
			pr, pw, err := os.Pipe()
			if err != nil {
				closeAll(ours[:])
				return failed(err)
			}
			stdio[i], ours[i] = pw, pr
		}
	}
	// The holder must outlive a client's disconnect.
	h, master, err := e.startHolder(context.WithoutCancel(ctx), c, holderOptions{
		req: holderRequest{ContainerID: r.ID, RuntimeRoot: c.runtimeRoot, Dir: x.dir, Process: proc,
			NoSeccomp: x.req.Privileged, Drain: tty && !attached},
		exitPath:  filepath.Join(x.dir, execExitFile),
		startPath: filepath.Join(x.dir, execStartedFile),
		stdio:     stdio,
	})
	if err != nil {
		closeAll(ours[:])
		return failed(monitor.ClassifyExecError(err))
	}
	closeAll(stdio[:])
	stdio = [3]*os.File{}
	x.mu.Lock()
	x.running, x.pid, x.master, x.holder = true, h.pid, master, h
	x.mu.Unlock()
	e.emitContainer(ctx, evtypes.Action(string(evtypes.ActionExecStart)+": "+strings.Join(x.req.Cmd, " ")), &r, map[string]string{"execID": x.id})

	// Copy output to the client (or nowhere, detached) and stdin in.
	var wg sync.WaitGroup
	out := func(w io.Writer, f *os.File) {
		defer wg.Done()
		if w == nil {
			w = io.Discard
		}
		_, _ = io.Copy(w, f)
	}
	detached := make(chan struct{})
	stdin := func(w io.Writer, closeAfter *os.File) {
		err := copyStdin(w, streams.Stdin, x.detachKeys)
		if closeAfter != nil {
			closeAfter.Close()
		}
		if errors.Is(err, monitor.ErrDetached) {
			close(detached)
		}
	}
	switch {
	case tty && attached:
		wg.Add(1)
		go out(streams.Stdout, master)
		if x.req.AttachStdin && streams.Stdin != nil {
			go stdin(master, nil)
		}
	case tty:
		// Detached: the holder drains the output; the master is kept
		// for resize.
	case attached:
		wg.Add(2)
		go out(streams.Stdout, ours[1])
		go out(streams.Stderr, ours[2])
		if ours[0] != nil {
			go stdin(ours[0], ours[0])
		}
	}
	finish := func() {
		ex, err := h.wait(context.WithoutCancel(ctx))
		if err != nil {
			log.From(ctx).Warn("exec: wait", log.KeyContainer, r.ID, log.KeyErr, err)
		} else if ex.Error != "" {
			log.From(ctx).Warn("exec: holder", log.KeyContainer, r.ID, log.KeyErr, ex.Error)
		}
		wg.Wait()
		closeAll(ours[1:])
		if master != nil {
			master.Close()
		}
		e.execEnded(context.WithoutCancel(ctx), x, &r, ex.Code)
	}
	if !attached {
		go finish()
		return nil
	}
	ended := make(chan struct{})
	go func() { finish(); close(ended) }()
	select {
	case <-ended:
		return nil
	case <-detached:
		e.emitContainer(ctx, evtypes.ActionExecDetach, &r, map[string]string{"execID": x.id})
		return nil
	case <-ctx.Done():
		// The client went: the process runs on, as docker's does.
		return ctx.Err()
	}
}

// copyStdin copies the client's stdin to w, watching for detach keys.
func copyStdin(w io.Writer, r io.Reader, keys []byte) error {
	if len(keys) > 0 {
		r = monitor.NewDetachReader(r, keys)
	}
	_, err := io.Copy(w, r)
	return err
}

// execProcess builds the exec's process from the container's: its
// environment, user and limits, with the request's command, user,
// environment, directory and terminal.
func execProcess(rc *runtime.Container, req containertypes.ExecCreateRequest, tty bool, size *[2]uint) (*specs.Process, error) {
	base := rc.Spec().Process
	if base == nil {
		return nil, fmt.Errorf("exec in %s: the container has no process: %w", rc.ID(), errdefs.ErrConflict)
	}
	p := *base
	p.Args = append([]string(nil), req.Cmd...)
	p.Terminal = tty
	p.ConsoleSize = nil
	if size == nil {
		size = req.ConsoleSize
	}
	if tty && size != nil && size[0] > 0 && size[1] > 0 {
		p.ConsoleSize = &specs.Box{Height: size[0], Width: size[1]}
	}
	p.Env = mergeEnv(base.Env, req.Env)
	if req.WorkingDir != "" {
		p.Cwd = req.WorkingDir
	}
	if req.User != "" {
		root := rc.Spec().Root.Path
		if !filepath.IsAbs(root) {
			root = filepath.Join(rc.Bundle(), root)
		}
		u, err := specgen.LookupUser(root, req.User, nil)
		if err != nil {
			return nil, err
		}
		p.User = u.User
		p.Env = mergeEnv(p.Env, []string{"HOME=" + u.Home})
	}
	if req.Privileged {
		// Every capability this kernel has, as --privileged gives a
		// container.
		c, err := specgen.Capabilities(true, nil, nil)
		if err != nil {
			return nil, err
		}
		// What this daemon does not hold itself it cannot give (a root
		// without CAP_SYS_RESOURCE in its bounding set, as here).
		held := ownBounding()
		c.Bounding = slices.DeleteFunc(c.Bounding, func(n string) bool { return !held[n] })
		c.Effective = slices.Clone(c.Bounding)
		c.Permitted = slices.Clone(c.Bounding)
		p.Capabilities = c
	}
	return &p, nil
}

// ownBounding is this process's bounding set, by capability name.
func ownBounding() map[string]bool {
	out := map[string]bool{}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return out
	}
	for line := range strings.Lines(string(b)) {
		v, ok := strings.CutPrefix(line, "CapBnd:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return out
		}
		for n := uintptr(0); n < 64; n++ {
			if mask&(1<<n) != 0 {
				out[caps.Name(n)] = true
			}
		}
	}
	return out
}

// consoleListener listens on a fresh unix socket for the runtime's pty
// master; done removes it. The runtime connects from this process, so a
// long directory goes through /proc/self/fd (sun_path holds 108 bytes).
func consoleListener(dir string) (string, *net.UnixListener, func(), error) {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return "", nil, nil, err
	}
	name := "x" + randomID()[:8] + ".sock"
	p := filepath.Join(dir, name)
	closeDir := func() {}
	if len(p) >= 100 {
		d, err := os.Open(dir)
		if err != nil {
			return "", nil, nil, err
		}
		p = "/proc/self/fd/" + strconv.Itoa(int(d.Fd())) + "/" + name
		closeDir = func() { d.Close() }
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	if err != nil {
		closeDir()
		return "", nil, nil, fmt.Errorf("console socket: %w", err)
	}
	l.SetUnlinkOnClose(false)
	return p, l, func() {
		l.Close()
		_ = os.Remove(filepath.Join(dir, name))
		closeDir()
	}, nil
}

// ExecInspect describes an exec.
func (e *Engine) ExecInspect(ctx context.Context, id string) (containertypes.ExecInspectResponse, error) {
	x, err := e.session(id)
	if err != nil {
		return containertypes.ExecInspectResponse{}, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	priv := x.req.Privileged
	res := containertypes.ExecInspectResponse{
		ID: x.id, Running: x.running, Pid: x.pid, ContainerID: x.containerID,
		OpenStdin: x.req.AttachStdin, OpenStdout: x.req.AttachStdout, OpenStderr: x.req.AttachStderr,
		DetachKeys: x.detachKeys, CanRemove: x.exitCode != nil,
		ProcessConfig: &containertypes.ExecProcessConfig{
			Tty: x.req.Tty, Entrypoint: x.req.Cmd[0], Arguments: x.req.Cmd[1:], Privileged: &priv, User: x.req.User,
		},
	}
	if x.exitCode != nil {
		c := *x.exitCode
		res.ExitCode = &c
	}
	return res, nil
}

// ExecResize sets the size of a running exec's terminal.
func (e *Engine) ExecResize(ctx context.Context, id string, height, width uint) error {
	x, err := e.session(id)
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.running {
		return fmt.Errorf("exec %s is not running: %w", id, errdefs.ErrConflict)
	}
	if x.master == nil {
		return nil
	}
	return console.SetSize(x.master, uint16(height), uint16(width))
}
