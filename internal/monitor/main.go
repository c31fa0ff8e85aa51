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
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cgroups"
	"github.com/berth-dev/berth/internal/logfile"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/console"
)

// IsMonitor says whether this process was started by Start as a monitor.
// A binary that can be one checks it first thing and calls Main:
//
//	if monitor.IsMonitor() { monitor.Main() }
func IsMonitor() bool {
	return len(os.Args) > 0 && os.Args[0] == argv0 && (os.Getenv(envStateDir) != "" || os.Getenv(envWarm) != "")
}

// envOp asks a monitor binary for one helper step of the C holder:
// "start" or "delete" (see holder.c).
const envOp = "_BERTH_MONITOR_OP"

// Main is the monitor process. It never returns.
func Main() {
	dir := os.Getenv(envStateDir)
	os.Unsetenv(envStateDir)
	if op := os.Getenv(envOp); op != "" {
		os.Exit(helperMain(dir, op))
	}
	sync := os.NewFile(3, "sync")
	unix.CloseOnExec(3)
	if dir == "" {
		// An idle monitor of a Pool: the start that takes it says which
		// container is ours; EOF means the pool closed.
		os.Unsetenv(envWarm)
		msg, err := recvSync(sync)
		if err != nil || msg.StateDir == "" {
			os.Exit(0)
		}
		dir = msg.StateDir
		if f, err := os.OpenFile(filepath.Join(dir, logName), os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o600); err == nil {
			_ = unix.Dup3(int(f.Fd()), 1, 0)
			_ = unix.Dup3(int(f.Fd()), 2, 0)
			f.Close()
		}
	}
	err := run(dir, sync)
	if err != nil {
		fmt.Fprintln(os.Stderr, time.Now().UTC().Format(time.RFC3339), "monitor:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// mon is the monitor's state.
type mon struct {
	cfg  Config
	c    *runtime.Container
	logw *logfile.Writer

	stdin  *os.File // the container's stdin (write end), nil if closed or none
	master *os.File // the pty master with a terminal

	mu        sync.Mutex // guards attachers, waiters, exit, stdin
	attachers map[*attacher]struct{}
	waiters   []waiter
	exit      *Exit
	answered  bool          // waiters were told: the container is gone
	outDone   chan struct{} // closed when every output stream ended
}

// waiter is a wait request; an owner takes the runtime's delete over
// (Handle.WaitOwned).
type waiter struct {
	conn  net.Conn
	owner bool
}

type attacher struct {
	conn           net.Conn
	stdout, stderr bool
}

func run(dir string, syncf *os.File) (retErr error) {
	ctx := context.Background()
	defer syncf.Close()
	fail := func(err error) error {
		_ = sendSync(syncf, syncMsg{Error: err.Error(), Kind: errKind(err)})
		return err
	}
	b, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		return fail(err)
	}
	m := &mon{attachers: map[*attacher]struct{}{}, outDone: make(chan struct{})}
	if err := json.Unmarshal(b, &m.cfg); err != nil {
		return fail(fmt.Errorf("config: %w", err))
	}
	cfg := &m.cfg
	// Orphans of the container (without a pid namespace) come back to us
	// rather than to the host's init, so none is left a zombie.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("become child subreaper: %w", err))
	}
	if cfg.LogPath != "" {
		if m.logw, err = logfile.Open(cfg.LogPath, logfile.Options{MaxSize: cfg.LogMaxSize, MaxFiles: cfg.LogMaxFiles}); err != nil {
			return fail(err)
		}
		defer m.logw.Close()
	}
	rt, err := runtime.New(cfg.RuntimeRoot)
	if err != nil {
		return fail(err)
	}
	opts := runtime.CreateOptions{Bundle: cfg.Bundle}
	var outputs []*os.File // our ends of stdout, stderr (or the master)
	var theirs []*os.File  // the container's ends, closed after create
	closeTheirs := func() {
		for _, f := range theirs {
			f.Close()
		}
		theirs = nil
	}
	defer closeTheirs()
	var masterCh chan *os.File
	if cfg.Tty {
		p, done, err := sockPath(dir, consoleSk)
		if err != nil {
			return fail(err)
		}
		_ = os.Remove(filepath.Join(dir, consoleSk))
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
		if err != nil {
			done()
			return fail(fmt.Errorf("console socket: %w", err))
		}
		// The runtime connects from this same process, so a
		// /proc/self/fd path still names our directory.
		opts.ConsoleSocket = p
		defer done()
		defer l.Close()
		masterCh = make(chan *os.File, 1)
		go func() {
			c, err := l.AcceptUnix()
			if err != nil {
				masterCh <- nil
				return
			}
			defer c.Close()
			f, err := console.ReceiveMaster(c)
			if err != nil {
				f = nil
			}
			masterCh <- f
		}()
	} else {
		for range 2 {
			r, w, err := os.Pipe()
			if err != nil {
				return fail(err)
			}
			outputs = append(outputs, r)
			theirs = append(theirs, w)
		}
		opts.IO.Stdout, opts.IO.Stderr = theirs[0], theirs[1]
	}
	if cfg.OpenStdin {
		if cfg.Tty {
			// The terminal is the stdin; the master writes to it.
		} else {
			r, w, err := os.Pipe()
			if err != nil {
				return fail(err)
			}
			opts.IO.Stdin = r
			theirs = append(theirs, r)
			m.stdin = w
		}
	}
	c, err := rt.Create(ctx, cfg.ID, opts)
	if err != nil {
		return fail(err)
	}
	m.c = c
	closeTheirs()
	started := false
	defer func() {
		if !started {
			_ = c.Delete(context.WithoutCancel(ctx), true)
		}
	}()
	if cfg.Tty {
		select {
		case m.master = <-masterCh:
		case <-time.After(10 * time.Second):
		}
		if m.master == nil {
			return fail(errors.New("no pty master from the runtime"))
		}
		_ = os.Remove(filepath.Join(dir, consoleSk))
		if cfg.ConsoleSize[0] > 0 && cfg.ConsoleSize[1] > 0 {
			_ = console.SetSize(m.master, uint16(cfg.ConsoleSize[0]), uint16(cfg.ConsoleSize[1]))
		}
		outputs = []*os.File{m.master}
	}
	cg := cgroupPaths(cfg.RuntimeRoot, cfg.ID)

	sp, sdone, err := sockPath(dir, sockName)
	if err != nil {
		return fail(err)
	}
	_ = os.Remove(filepath.Join(dir, sockName))
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sp, Net: "unix"})
	sdone()
	if err != nil {
		return fail(fmt.Errorf("listen: %w", err))
	}
	l.SetUnlinkOnClose(false)
	defer func() {
		_ = os.Remove(filepath.Join(dir, sockName))
		l.Close()
	}()
	go m.serve(l)

	if holderLinked && os.Getenv("BERTH_MONITOR_GO") == "" {
		// Returns only if the exec failed: the Go monitor holds on.
		err := handOver(m, syncf, l, outputs, cg)
		fmt.Fprintln(os.Stderr, "monitor: hand over to the C holder:", err)
	}
	if err := sendSync(syncf, syncMsg{Pid: c.Pid()}); err != nil {
		return err
	}
	if msg, err := recvSync(syncf); err != nil || !msg.Start {
		return fmt.Errorf("daemon went before start (%v): container removed", err)
	}
	if err := c.Start(ctx); err != nil {
		return fail(err)
	}
	started = true
	initExit := make(chan syscall.WaitStatus, 1)
	reaped := make(chan struct{})
	go reap(c.Pid(), initExit, reaped)
	if err := sendSync(syncf, syncMsg{Running: true}); err != nil {
		// The daemon went; the container runs on without it.
		_ = err
	}
	syncf.Close()

	var wg sync.WaitGroup
	streams := []string{"stdout", "stderr"}
	for i, f := range outputs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.copyOut(f, streams[i])
		}()
	}
	go func() { wg.Wait(); close(m.outDone) }()
	// The start is done: give back what it took.
	debug.FreeOSMemory()

	ws := <-initExit
	at := time.Now().UTC()
	// Output still in the pipes belongs to the log. A process that
	// escaped the init (no pid namespace) may hold the pipes open; it is
	// killed below, so do not wait for it for long.
	select {
	case <-m.outDone:
	case <-time.After(2 * time.Second):
	}
	ex := Exit{At: at}
	if ws.Signaled() {
		ex.Code = 128 + int(ws.Signal())
		ex.Signal = unix.SignalName(ws.Signal())
	} else {
		ex.Code = ws.ExitStatus()
	}
	if len(cg) > 0 {
		if mgr, err := cgroups.Load(cg); err == nil {
			if st, err := mgr.Stats(); err == nil && st.Memory.OOMKill > 0 {
				ex.OOMKilled = true
			}
		}
	}
	eb, _ := json.Marshal(ex)
	if err := writeFileAtomic(filepath.Join(dir, exitFile), eb); err != nil {
		fmt.Fprintln(os.Stderr, "monitor:", err)
	}
	m.endAttaches(ex)

	for _, f := range outputs {
		f.Close()
	}
	// Whatever outlived the init (no pid namespace) goes with it, so the
	// cgroup can be removed; then the runtime's state. Unless a waiter
	// took that over (as holder.c).
	if !m.owned() {
		_ = c.Kill(ctx, unix.SIGKILL, true)
		select {
		case <-reaped:
		case <-time.After(5 * time.Second):
		}
		err = c.Delete(ctx, true)
	}
	// Waiters hear of the exit only now, with the socket gone and the
	// runtime's state deleted: a start of the same container right after
	// Wait returns (a restart policy, docker start) finds the id free.
	l.Close()
	_ = os.Remove(filepath.Join(dir, sockName))
	m.answerWaiters()
	if err != nil {
		return fmt.Errorf("delete container: %w", err)
	}
	return nil
}

// reap waits for every child: the init's status goes to initExit; orphans
// re-parented to us (we are the subreaper) are reaped too. It ends when
// no child is left.
func reap(initPid int, initExit chan<- syscall.WaitStatus, done chan<- struct{}) {
	defer close(done)
	sent := false
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			if !sent {
				// The init was reaped by someone else (cannot happen
				// while we are its parent); report it as killed.
				initExit <- syscall.WaitStatus(uint32(unix.SIGKILL))
			}
			return
		}
		if pid == initPid && !sent {
			sent = true
			initExit <- ws
		}
	}
}

// cgroupPaths reads the container's cgroup directories from the runtime's
// state file, to learn the OOM-kill count after the init is gone (the
// runtime answers Stats only for a running container).
func cgroupPaths(root, id string) map[string]string {
	b, err := os.ReadFile(filepath.Join(root, id, "state.json"))
	if err != nil {
		return nil
	}
	var st struct {
		Cgroups map[string]string `json:"cgroups"`
	}
	if json.Unmarshal(b, &st) != nil {
		return nil
	}
	return st.Cgroups
}

// maxLine is where a line without a newline is cut into a partial entry,
// as docker's log copier does.
const maxLine = 16 << 10

// copyOut reads one output stream until EOF: every chunk goes to the
// attachers as it comes, and to the log line by line.
func (m *mon) copyOut(f *os.File, stream string) {
	buf := make([]byte, 32<<10)
	var line []byte
	for {
		n, err := f.Read(buf)
		if n > 0 {
			p := buf[:n]
			m.broadcast(stream, p)
			if m.logw != nil {
				now := time.Now()
				for len(p) > 0 {
					i := indexNL(p)
					if i < 0 {
						line = append(line, p...)
						if len(line) >= maxLine {
							_ = m.logw.Write(stream, line, now)
							line = line[:0]
						}
						break
					}
					if len(line) > 0 {
						line = append(line, p[:i+1]...)
						_ = m.logw.Write(stream, line, now)
						line = line[:0]
					} else {
						_ = m.logw.Write(stream, p[:i+1], now)
					}
					p = p[i+1:]
				}
			}
		}
		if err != nil {
			// EIO: the pty's last slave closed.
			break
		}
	}
	if len(line) > 0 && m.logw != nil {
		_ = m.logw.Write(stream, line, time.Now())
	}
}

func indexNL(p []byte) int {
	for i, b := range p {
		if b == '\n' {
			return i
		}
	}
	return -1
}

// attachWriteTimeout drops an attacher that stops reading, rather than
// stalling the container's output (and the log) behind it.
const attachWriteTimeout = 10 * time.Second

func (m *mon) broadcast(stream string, p []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.attachers) == 0 {
		return
	}
	var hdr [8]byte
	if !m.cfg.Tty {
		hdr[0] = 1
		if stream == "stderr" {
			hdr[0] = 2
		}
		binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	}
	for a := range m.attachers {
		if stream == "stdout" && !a.stdout || stream == "stderr" && !a.stderr {
			continue
		}
		_ = a.conn.SetWriteDeadline(time.Now().Add(attachWriteTimeout))
		var err error
		if m.cfg.Tty {
			_, err = a.conn.Write(p)
		} else {
			_, err = (&net.Buffers{hdr[:], p}).WriteTo(a.conn)
		}
		if err != nil {
			a.conn.Close()
			delete(m.attachers, a)
		}
	}
}

// owned says whether a waiter took the runtime's delete over.
func (m *mon) owned() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range m.waiters {
		if w.owner {
			return true
		}
	}
	return false
}

func (m *mon) dropWaiter(c net.Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, w := range m.waiters {
		if w.conn == c {
			m.waiters = append(m.waiters[:i], m.waiters[i+1:]...)
			return
		}
	}
}

// answerWaiters tells every waiter how the container ended.
func (m *mon) answerWaiters() {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, _ := json.Marshal(reply{Exit: m.exit})
	b = append(b, '\n')
	for _, w := range m.waiters {
		_, _ = w.conn.Write(b)
		w.conn.Close()
	}
	m.waiters = nil
	m.answered = true
}

// endAttaches records the exit and ends the attaches: the output is over.
func (m *mon) endAttaches(ex Exit) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.exit = &ex
	for a := range m.attachers {
		a.conn.Close()
	}
	m.attachers = map[*attacher]struct{}{}
	if m.stdin != nil {
		m.stdin.Close()
		m.stdin = nil
	}
}

func (m *mon) serve(l *net.UnixListener) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return
		}
		go m.handle(c)
	}
}

func (m *mon) handle(c *net.UnixConn) {
	r := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := r.ReadBytes('\n')
	_ = c.SetReadDeadline(time.Time{})
	var req request
	if err != nil || json.Unmarshal(line, &req) != nil {
		c.Close()
		return
	}
	answer := func(rep reply) {
		b, _ := json.Marshal(rep)
		_, _ = c.Write(append(b, '\n'))
	}
	switch req.Op {
	case "info":
		answer(reply{Pid: m.c.Pid(), Self: os.Getpid(), Tty: m.cfg.Tty})
		c.Close()
	case "wait":
		m.mu.Lock()
		if m.answered {
			ex := *m.exit
			m.mu.Unlock()
			answer(reply{Exit: &ex})
			c.Close()
			return
		}
		m.waiters = append(m.waiters, waiter{conn: c, owner: req.Owner})
		m.mu.Unlock()
		if req.Owner {
			// An owner that goes (the daemon stopped) no longer deletes:
			// notice, so the monitor does it again.
			_, _ = io.Copy(io.Discard, r)
			m.dropWaiter(c)
		}
	case "resize":
		if m.master != nil {
			if err := console.SetSize(m.master, uint16(req.Height), uint16(req.Width)); err != nil {
				answer(reply{Error: err.Error()})
				c.Close()
				return
			}
		}
		answer(reply{})
		c.Close()
	case "attach":
		m.attach(c, r, req)
	default:
		answer(reply{Error: fmt.Sprintf("unknown request %q", req.Op)})
		c.Close()
	}
}

func (m *mon) attach(c *net.UnixConn, r *bufio.Reader, req request) {
	m.mu.Lock()
	if m.exit != nil {
		m.mu.Unlock()
		c.Close() // the attach ends at once: the output is over
		return
	}
	b, _ := json.Marshal(reply{Pid: m.c.Pid(), Tty: m.cfg.Tty})
	_, _ = c.Write(append(b, '\n'))
	a := &attacher{conn: c, stdout: req.Stdout, stderr: req.Stderr}
	m.attachers[a] = struct{}{}
	m.mu.Unlock()
	if !req.Stdin || !m.cfg.OpenStdin {
		// Read (and drop) until the client goes, so a closed connection
		// is noticed and the attacher removed.
		_, _ = io.Copy(io.Discard, r)
		if !req.Stdout && !req.Stderr {
			m.drop(a)
		}
		return
	}
	var dst io.Writer
	if m.cfg.Tty {
		dst = m.master
	} else {
		m.mu.Lock()
		if m.stdin != nil {
			dst = m.stdin
		}
		m.mu.Unlock()
	}
	if dst != nil {
		_, _ = io.Copy(dst, r)
	}
	// docker's StdinOnce: the container's stdin closes when the client
	// that attached it is done with it.
	if m.cfg.StdinOnce {
		m.mu.Lock()
		if m.cfg.Tty {
			// A terminal has no stdin to close but its EOF character.
			_, _ = m.master.Write([]byte{4})
		} else if m.stdin != nil {
			m.stdin.Close()
			m.stdin = nil
		}
		m.mu.Unlock()
	}
	if !req.Stdout && !req.Stderr {
		m.drop(a)
	}
}

func (m *mon) drop(a *attacher) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.attachers[a]; ok {
		a.conn.Close()
		delete(m.attachers, a)
	}
}

// handOver execs this binary as the C holder (holder.c), which keeps the
// container's stdio, the socket and the sync socket from here on: a Go
// runtime per running container costs megabytes, the holder a few hundred
// KiB. The process stays the init's parent and its subreaper across
// execve. It returns only on failure.
func handOver(m *mon, syncf *os.File, l *net.UnixListener, outputs []*os.File, cg map[string]string) error {
	lf, err := l.File()
	if err != nil {
		return err
	}
	// The dup must stay open until the exec: an unreachable *os.File is
	// closed by its finalizer.
	defer goruntime.KeepAlive(lf)
	fd := func(f *os.File) int {
		if f == nil {
			return -1
		}
		n := int(f.Fd())
		// The holder uses blocking I/O (poll tells it when to read).
		_ = unix.SetNonblock(n, false)
		if _, err := unix.FcntlInt(uintptr(n), unix.F_SETFD, 0); err != nil {
			return -1
		}
		return n
	}
	cfg := &m.cfg
	env := []string{
		"_BERTH_HOLDER=1",
		"_BH_STATE=" + cfg.StateDir, "_BH_ID=" + cfg.ID, "_BH_LOG=" + cfg.LogPath,
		"_BH_PID=" + strconv.Itoa(m.c.Pid()),
		"_BH_SYNC=" + strconv.Itoa(fd(syncf)), "_BH_LISTEN=" + strconv.Itoa(fd(lf)),
		"_BH_LOGMAX=" + strconv.FormatInt(cfg.LogMaxSize, 10), "_BH_LOGFILES=" + strconv.Itoa(max(cfg.LogMaxFiles, 1)),
		"_BH_OOM=" + oomFile(cg),
	}
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	env = append(env, "_BH_TTY="+b(cfg.Tty), "_BH_ONCE="+b(cfg.StdinOnce))
	if !m.c.HasPoststart() {
		// The holder starts the init itself (no Go helper); only the
		// runtime's Start runs poststart hooks.
		env = append(env, "_BH_FIFO="+m.c.ExecFifo())
	}
	if cfg.Tty {
		env = append(env, "_BH_MASTER="+strconv.Itoa(fd(m.master)))
	} else {
		env = append(env, "_BH_OUT="+strconv.Itoa(fd(outputs[0])), "_BH_ERR="+strconv.Itoa(fd(outputs[1])))
	}
	if m.stdin != nil {
		env = append(env, "_BH_IN="+strconv.Itoa(fd(m.stdin)))
	}
	return unix.Exec("/proc/self/exe", []string{argv0, cfg.ID}, env)
}

// oomFile is the cgroup file whose "oom_kill N" line counts the
// container's OOM kills: memory.oom_control on v1, memory.events on v2.
func oomFile(cg map[string]string) string {
	if d, ok := cg["memory"]; ok {
		return filepath.Join(d, "memory.oom_control")
	}
	if d, ok := cg[""]; ok {
		return filepath.Join(d, "memory.events")
	}
	return ""
}

// helperMain runs one step for the C holder: start the created container
// (its answer, a sync message, on stdout) or delete it (kill what is left,
// remove its cgroup and state).
func helperMain(dir, op string) int {
	ctx := context.Background()
	b, err := os.ReadFile(filepath.Join(dir, configFile))
	var cfg Config
	if err == nil {
		err = json.Unmarshal(b, &cfg)
	}
	var c *runtime.Container
	if err == nil {
		var rt *runtime.Runtime
		if rt, err = runtime.New(cfg.RuntimeRoot); err == nil {
			c, err = rt.Load(ctx, cfg.ID)
		}
	}
	switch op {
	case "start":
		if err == nil {
			err = c.Start(ctx)
		}
		if err != nil {
			out, _ := json.Marshal(syncMsg{Error: err.Error(), Kind: errKind(err)})
			os.Stdout.Write(out)
			return 1
		}
		out, _ := json.Marshal(syncMsg{Running: true})
		os.Stdout.Write(out)
		return 0
	case "delete":
		if err != nil {
			return 0 // nothing left to delete
		}
		_ = c.Kill(ctx, unix.SIGKILL, true)
		if err := c.Delete(ctx, true); err != nil {
			fmt.Fprintln(os.Stderr, "monitor: delete container:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "monitor: unknown helper step", op)
	return 2
}
