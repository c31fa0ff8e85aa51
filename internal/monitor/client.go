package monitor

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cleanup"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Config is what a monitor needs to run one container. It is written to
// <StateDir>/config.json for the monitor to read.
type Config struct {
	ID          string  `json:"id"`
	Bundle      string  `json:"bundle"`      // config.json written, rootfs mounted by the engine
	RuntimeRoot string  `json:"runtimeRoot"` // internal/runtime's state root
	StateDir    string  `json:"stateDir"`    // the monitor's files (see the package doc)
	LogPath     string  `json:"logPath"`     // json-file log; "" for none
	LogMaxSize  int64   `json:"logMaxSize"`  // bytes; 0: no rotation
	LogMaxFiles int     `json:"logMaxFiles"`
	Tty         bool    `json:"tty"` // must match the spec's process.terminal
	OpenStdin   bool    `json:"openStdin"`
	StdinOnce   bool    `json:"stdinOnce"`
	ConsoleSize [2]uint `json:"consoleSize"` // height, width; zero: the spec's

	// CallerDeletes says the caller follows the container with
	// Handle.WaitOwned and deletes the runtime's state itself when it
	// ends (runtime Container Kill(SIGKILL, all) and Delete): the monitor
	// then answers at the exit without deleting, which spares a process
	// start per exit. Start registers the wait before the process runs, so
	// even a container that exits at once is answered that way.
	CallerDeletes bool `json:"-"`

	// Pool, if set, supplies a monitor already started (see Pool).
	Pool *Pool `json:"-"`

	// Created, if set, is called once the container exists and before its
	// process runs, with the container's Handle: attach there to miss none
	// of its output (docker's attach-then-start). An error stops the start.
	Created func(h *Handle) error `json:"-"`
}

// exe is the binary re-executed as the monitor; tests leave it as is (the
// test binary answers as a monitor, see IsMonitor).
var exe = "/proc/self/exe"

// Start spawns the monitor of cfg.ID, which creates and starts the
// container. It returns once the container's process runs, or with the
// runtime's error (ErrCommandNotFound / ErrCommandNotExecutable for a
// command that cannot run; errdefs classes otherwise). The monitor runs in
// a session of its own and outlives the caller. ctx bounds the start only.
func Start(ctx context.Context, cfg Config) (*Handle, error) {
	if cfg.ID == "" || cfg.Bundle == "" || cfg.RuntimeRoot == "" || cfg.StateDir == "" {
		return nil, fmt.Errorf("start monitor: id, bundle, runtime root and state dir are required: %w", errdefs.ErrInvalidArgument)
	}
	for _, p := range []*string{&cfg.Bundle, &cfg.RuntimeRoot, &cfg.StateDir, &cfg.LogPath} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, fmt.Errorf("start monitor %s: %w", cfg.ID, err)
		}
		*p = abs
	}
	if err := os.MkdirAll(cfg.StateDir, 0o711); err != nil {
		return nil, fmt.Errorf("start monitor %s: %w", cfg.ID, err)
	}
	if _, err := dialInfo(cfg.StateDir); err == nil {
		return nil, fmt.Errorf("start monitor %s: a monitor is already running: %w", cfg.ID, errdefs.ErrConflict)
	}
	// A previous run's status must not answer for this one.
	_ = os.Remove(filepath.Join(cfg.StateDir, exitFile))
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(cfg.StateDir, configFile), b); err != nil {
		return nil, fmt.Errorf("start monitor %s: %w", cfg.ID, err)
	}
	var undo cleanup.Stack
	defer undo.Unwind()

	s := cfg.Pool.take()
	if s != nil {
		if err := sendSync(s.sync, syncMsg{StateDir: cfg.StateDir}); err != nil {
			s.stop()
			s = nil
		}
	}
	if s == nil {
		logf, err := os.OpenFile(filepath.Join(cfg.StateDir, logName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("start monitor %s: %w", cfg.ID, err)
		}
		s, err = spawn(cfg.StateDir, cfg.ID, logf)
		logf.Close()
		if err != nil {
			return nil, fmt.Errorf("start monitor %s: %w", cfg.ID, err)
		}
	}
	parent, cmd, exited := s.sync, s.cmd, s.exited
	defer parent.Close()
	undo.Push(func() { _ = cmd.Process.Kill(); <-exited })

	stop := context.AfterFunc(ctx, func() { _ = unix.Shutdown(int(parent.Fd()), unix.SHUT_RDWR) })
	defer stop()
	m, err := recvSync(parent)
	if err != nil {
		return nil, monitorGone(cfg, err, ctx)
	}
	if m.Error != "" {
		<-exited
		undo.Disarm()
		return nil, fromKind(fmt.Sprintf("start container %s: %s", cfg.ID, m.Error), m.Kind)
	}
	h := &Handle{stateDir: cfg.StateDir, pid: m.Pid, tty: cfg.Tty, self: cmd.Process.Pid}
	if cfg.Created != nil {
		if err := cfg.Created(h); err != nil {
			return nil, err // the monitor reads EOF and removes the container
		}
	}
	if cfg.CallerDeletes {
		c, r, err := dial(cfg.StateDir, request{Op: "wait", Owner: true})
		if err != nil {
			return nil, err // the monitor reads EOF and removes the container
		}
		h.owned = &ownedWait{c: c, r: r}
		undo.Push(func() { c.Close() })
	}
	if err := sendSync(parent, syncMsg{Start: true}); err != nil {
		return nil, monitorGone(cfg, err, ctx)
	}
	m, err = recvSync(parent)
	if err != nil {
		return nil, monitorGone(cfg, err, ctx)
	}
	if m.Error != "" {
		<-exited
		undo.Disarm()
		h.Close()
		return nil, fromKind(fmt.Sprintf("start container %s: %s", cfg.ID, m.Error), m.Kind)
	}
	undo.Disarm()
	return h, nil
}

// monitorEnv is a monitor's environment; with stateDir "" it is an idle
// one of a Pool, told its state directory later.
func monitorEnv(stateDir string) []string {
	env := []string{"GOGC=50", "GOMAXPROCS=1", "PATH=" + os.Getenv("PATH")}
	if stateDir == "" {
		env = append(env, envWarm+"=1")
	} else {
		env = append(env, envStateDir+"="+stateDir)
	}
	// BERTH_MONITOR_GO=1 keeps the Go monitor holding the container
	// instead of the C holder (to compare, or to debug).
	if v := os.Getenv("BERTH_MONITOR_GO"); v != "" {
		env = append(env, "BERTH_MONITOR_GO="+v)
	}
	return env
}

// monitorGone explains a sync socket that broke: ctx ended, or the
// monitor died (its log says why).
func monitorGone(cfg Config, err error, ctx context.Context) error {
	if ctx.Err() != nil {
		return fmt.Errorf("start container %s: %w", cfg.ID, ctx.Err())
	}
	b, _ := os.ReadFile(filepath.Join(cfg.StateDir, logName))
	if s := strings.TrimSpace(string(b)); s != "" {
		if i := strings.LastIndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
		return fmt.Errorf("start container %s: monitor: %s", cfg.ID, s)
	}
	return fmt.Errorf("start container %s: monitor exited: %w", cfg.ID, err)
}

func sendSync(f *os.File, m syncMsg) error {
	b, _ := json.Marshal(m)
	_, err := f.Write(b)
	return err
}

func recvSync(f *os.File) (syncMsg, error) {
	buf := make([]byte, 64<<10)
	n, err := f.Read(buf)
	if err != nil {
		return syncMsg{}, err
	}
	if n == 0 {
		return syncMsg{}, io.EOF
	}
	var m syncMsg
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		return syncMsg{}, err
	}
	return m, nil
}

// Connect finds the monitor of stateDir again (after a daemon restart).
// errdefs.ErrNotFound means it has gone; ReadExit then tells how the
// container ended.
func Connect(ctx context.Context, stateDir string) (*Handle, error) {
	rep, err := dialInfo(stateDir)
	if err != nil {
		return nil, err
	}
	return &Handle{stateDir: stateDir, pid: rep.Pid, tty: rep.Tty, self: rep.Self}, nil
}

func dialInfo(stateDir string) (reply, error) {
	c, r, err := dial(stateDir, request{Op: "info"})
	if err != nil {
		return reply{}, err
	}
	defer c.Close()
	rep, err := readReply(r)
	if err != nil {
		return reply{}, fmt.Errorf("monitor %s: %w", stateDir, errdefs.ErrNotFound)
	}
	return rep, nil
}

// Handle is the daemon's side of one monitor. It is safe for concurrent
// use. It holds no connection of its own, except the owning wait Start
// registers with CallerDeletes, which WaitOwned (or Close) ends.
type Handle struct {
	stateDir string
	pid      int
	tty      bool
	self     int // the monitor's pid

	mu    sync.Mutex
	owned *ownedWait // registered by Start; taken by WaitOwned
}

// ownedWait is a wait request with the owner flag, already sent.
type ownedWait struct {
	c *net.UnixConn
	r *bufio.Reader
}

// MonitorPid is the monitor process's pid.
func (h *Handle) MonitorPid() int { return h.self }

// Pid is the container init's pid.
func (h *Handle) Pid() int { return h.pid }

// Tty says whether the container has a terminal.
func (h *Handle) Tty() bool { return h.tty }

// StateDir is the monitor's state directory.
func (h *Handle) StateDir() string { return h.stateDir }

// Wait blocks until the container exits and returns how; any number of
// callers may wait. If the monitor is gone, the status it left is read.
// The answer comes once the monitor has deleted the runtime's state,
// unless an owner (WaitOwned) took that over.
func (h *Handle) Wait(ctx context.Context) (Exit, error) {
	return h.wait(ctx, false)
}

// WaitOwned is Wait for the one who deletes the container's runtime state
// when it ends (see Config.CallerDeletes): the monitor answers as soon as
// the exit is known and leaves the runtime's state (its directory, the
// cgroup, any process that escaped the init) to the caller, who must
// delete it whatever WaitOwned returns (it may have been deleted already).
// Only one caller should own a run.
func (h *Handle) WaitOwned(ctx context.Context) (Exit, error) {
	h.mu.Lock()
	o := h.owned
	h.owned = nil
	h.mu.Unlock()
	if o == nil {
		return h.wait(ctx, true)
	}
	return h.readWait(ctx, o.c, o.r)
}

func (h *Handle) wait(ctx context.Context, owner bool) (Exit, error) {
	c, r, err := dial(h.stateDir, request{Op: "wait", Owner: owner})
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return ReadExit(h.stateDir)
		}
		return Exit{}, err
	}
	return h.readWait(ctx, c, r)
}

func (h *Handle) readWait(ctx context.Context, c *net.UnixConn, r *bufio.Reader) (Exit, error) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	rep, err := readReply(r)
	if ctx.Err() != nil {
		return Exit{}, ctx.Err()
	}
	if err != nil || rep.Exit == nil {
		// The monitor went between the exit file and our answer, or died.
		return ReadExit(h.stateDir)
	}
	return *rep.Exit, nil
}

// Resize sets the terminal's size; without a terminal it does nothing.
func (h *Handle) Resize(ctx context.Context, height, width uint) error {
	c, r, err := dial(h.stateDir, request{Op: "resize", Height: height, Width: width})
	if err != nil {
		return err
	}
	defer c.Close()
	rep, err := readReply(r)
	if err != nil {
		return fmt.Errorf("resize: %w", err)
	}
	if rep.Error != "" {
		return fmt.Errorf("resize: %s", rep.Error)
	}
	return nil
}

// Close releases the handle: an owning wait not taken by WaitOwned is
// withdrawn, and the monitor deletes the runtime's state itself.
func (h *Handle) Close() error {
	h.mu.Lock()
	o := h.owned
	h.owned = nil
	h.mu.Unlock()
	if o != nil {
		return o.c.Close()
	}
	return nil
}

// AttachOptions say which streams to connect.
type AttachOptions struct {
	// Stdin is sent to the container's stdin (nil: none). When it ends,
	// the container's stdin is closed if the container has StdinOnce.
	Stdin io.Reader
	// Stdout and Stderr receive output; nil: not wanted. With a terminal
	// all output goes to Stdout.
	Stdout, Stderr io.Writer
	// DetachKeys, when seen on Stdin, end the attach with ErrDetached
	// (the keys are not sent). Nil: no detaching.
	DetachKeys []byte
	// Attached, if set, is called once the monitor has registered the
	// attach: output from then on reaches it.
	Attached func()
}

// ErrDetached ends an attach the user detached from.
var ErrDetached = errors.New("detached")

// Attach connects to the container's stdio and returns when its output
// ends (nil), the user detaches (ErrDetached) or ctx ends.
func (h *Handle) Attach(ctx context.Context, o AttachOptions) error {
	c, r, err := dial(h.stateDir, request{Op: "attach", Stdin: o.Stdin != nil, Stdout: o.Stdout != nil, Stderr: o.Stderr != nil})
	if err != nil {
		return err
	}
	defer c.Close()
	rep, err := readReply(r)
	if err != nil {
		return fmt.Errorf("attach: %w", errdefs.ErrNotFound)
	}
	if rep.Error != "" {
		return fmt.Errorf("attach: %s", rep.Error)
	}
	if o.Attached != nil {
		o.Attached()
	}
	detached := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if o.Stdin != nil {
		go func() {
			in := o.Stdin
			var dk *detachReader
			if len(o.DetachKeys) > 0 {
				dk = &detachReader{r: in, keys: o.DetachKeys}
				in = dk
			}
			_, err := io.Copy(c, in)
			if dk != nil && errors.Is(err, ErrDetached) {
				close(detached)
				c.Close()
				return
			}
			_ = c.CloseWrite()
		}()
	}
	err = copyOutput(r, rep.Tty, o.Stdout, o.Stderr)
	select {
	case <-detached:
		return ErrDetached
	default:
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("attach: %w", err)
	}
	return nil
}

// copyOutput demultiplexes the monitor's frames (or copies raw tty
// output) to the writers until EOF.
func copyOutput(r *bufio.Reader, tty bool, stdout, stderr io.Writer) error {
	if tty {
		if stdout == nil {
			stdout = io.Discard
		}
		_, err := io.Copy(stdout, r)
		return err
	}
	var hdr [8]byte
	buf := make([]byte, 32<<10)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		n := int(binary.BigEndian.Uint32(hdr[4:]))
		w := stdout
		if hdr[0] == 2 {
			w = stderr
		}
		if w == nil {
			w = io.Discard
		}
		for n > 0 {
			k := min(n, len(buf))
			if _, err := io.ReadFull(r, buf[:k]); err != nil {
				return err
			}
			if _, err := w.Write(buf[:k]); err != nil {
				return err
			}
			n -= k
		}
	}
}

// NewDetachReader returns a reader of r that fails with ErrDetached once
// it has seen keys (which it does not pass on).
func NewDetachReader(r io.Reader, keys []byte) io.Reader {
	return &detachReader{r: r, keys: keys}
}

// detachReader passes bytes through until it has seen keys, then fails
// with ErrDetached. Bytes that begin the sequence are held back until the
// sequence either completes (they are dropped) or breaks (they are sent).
type detachReader struct {
	r       io.Reader
	keys    []byte
	matched int
	out     []byte
	err     error
}

func (d *detachReader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		buf := make([]byte, len(p))
		n, err := d.r.Read(buf)
		for _, b := range buf[:n] {
			if b == d.keys[d.matched] {
				d.matched++
				if d.matched == len(d.keys) {
					d.err = ErrDetached
					break
				}
				continue
			}
			d.out = append(d.out, d.keys[:d.matched]...)
			d.matched = 0
			if b == d.keys[0] {
				d.matched = 1
				continue
			}
			d.out = append(d.out, b)
		}
		if err != nil && d.err == nil {
			// A sequence cut short by the end of input was typed, not
			// a detach.
			d.out = append(d.out, d.keys[:d.matched]...)
			d.matched = 0
			d.err = err
		}
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

// ParseDetachKeys reads docker's detach-key syntax: comma-separated keys,
// each a single character or ctrl-<x> (x in a-z, @, [, \, ], ^, _).
// "" gives docker's default, ctrl-p,ctrl-q.
func ParseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		s = "ctrl-p,ctrl-q"
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		if len(k) == 1 {
			out = append(out, k[0])
			continue
		}
		c, ok := strings.CutPrefix(strings.ToLower(k), "ctrl-")
		if !ok || len(c) != 1 {
			return nil, fmt.Errorf("invalid detach keys %q: unknown key %q: %w", s, k, errdefs.ErrInvalidArgument)
		}
		switch ch := c[0]; {
		case ch >= 'a' && ch <= 'z':
			out = append(out, ch-'a'+1)
		case ch == '@':
			out = append(out, 0)
		case ch == '[', ch == '\\', ch == ']', ch == '^', ch == '_':
			out = append(out, ch-'@')
		default:
			return nil, fmt.Errorf("invalid detach keys %q: unknown key %q: %w", s, k, errdefs.ErrInvalidArgument)
		}
	}
	return out, nil
}
