package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/console"
)

// An exec's process is not the daemon's child but a holder's: the binary
// re-executed as "berth-exec", in a session of its own, that calls the
// runtime library to start processes (so each, re-parented past nsenter's
// fork, lands on the holder as child subreaper), reaps them and writes
// their exit status. A daemon killed with -9 leaves the holder running;
// the daemon started next reads the status, or waits for the process, as
// for a container's monitor (restoreExecs).
//
// One holder serves all of a daemon's execs, as the daemon did itself
// before: warm, it starts a process about as fast as the daemon did (an
// attached `exec true` in a loop, 12-14 ms median against 14-15 ms, on a
// loaded 2-core machine), where a fresh holder per exec cost a Go
// start-up and a cold first Exec (20 ms), and a process per running exec.
// It is started at the first exec. When its control socket closes (the engine stopping, or the
// daemon gone) it takes no more requests and exits once its processes
// have ended; the next daemon starts its own.
//
//	daemon (ExecStart)                     holder (execHolderMain)
//	  exec berth-exec, setsid, fd 3 the
//	  control socket (seqpacket), once
//	  pre-create <dir>/exit, start.json
//	  holderRequest + SCM_RIGHTS (the
//	  exec's own socket, exit,
//	  start.json, the process's stdio) -->  (a goroutine per exec)
//	                                         runtime Load, Exec (tty: the
//	                                         master arrives on <dir>/c.sock)
//	                                         write start.json (pids)
//	              exec socket <------------- holderReply {pid} or {error}
//	              exec socket <------------- tty: the pty master (SCM_RIGHTS)
//	  copy stdio                             close stdio, keep the master
//	                                         reap the process: write exit,
//	              exec socket <------------- close (EOF)
//	  read <dir>/exit
//
// The holder writes into the files the daemon made, through the fds it
// was given, and adds no name to the directory: a container removal's
// RemoveAll of the state directory racing an exec's end must not meet a
// file appearing (ENOTEMPTY). A tty's master stays open in the holder
// until the process ends, so a daemon going away does not hang the
// terminal up (SIGHUP) under a running exec; a detached one's output is
// drained by the holder, so no daemon is needed for it to go on.
const (
	execHolderArgv0 = "berth-exec"
	envExecHolder   = "_BERTH_EXEC_HOLDER"
	holderCtlFD     = 3
)

// holderRequest is the daemon's message to the holder, one per exec.
type holderRequest struct {
	ContainerID string         `json:"containerId"`
	RuntimeRoot string         `json:"runtimeRoot"`
	Dir         string         `json:"dir"` // the exec's directory (the console socket goes there)
	Process     *specs.Process `json:"process"`
	// NoSeccomp runs the process without the container's seccomp filter
	// (exec --privileged).
	NoSeccomp bool `json:"noSeccomp,omitempty"`
	// Stdio says which of stdin, stdout, stderr come with the request
	// (after the exec's socket, the exit and start files); the others
	// are /dev/null.
	Stdio [3]bool `json:"stdio"`
	// Drain makes the holder read a tty's output itself (detached).
	Drain bool `json:"drain,omitempty"`
}

// holderReply is the holder's answer: the process's pid, or why it could
// not start (the runtime's text; ClassifyExecError reads it).
type holderReply struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
}

// execExit is the exit file's content.
type execExit struct {
	Code  int       `json:"code"`
	At    time.Time `json:"at"`
	Error string    `json:"error,omitempty"` // the holder's own trouble waiting
}

// A package-level variable, not an init function: the holder must be
// recognised in any binary that links the daemon (berth, and this
// package's test binary) without cmd/berth's help, and before the rest
// of the binary's start-up.
var _ = execHolderEntry()

func execHolderEntry() bool {
	if len(os.Args) == 0 || os.Args[0] != execHolderArgv0 || os.Getenv(envExecHolder) != "1" {
		return false
	}
	os.Exit(execHolderMain())
	return true
}

// execHolderMain is the holder's life; it returns its exit status.
func execHolderMain() int {
	// Its stdio is /dev/null, but the runtime's logs go nowhere anyway.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	ctl, err := fileConn(os.NewFile(holderCtlFD, "control"))
	if err != nil {
		return 2
	}
	self, _ := procStartTime(os.Getpid())
	var wg sync.WaitGroup
	buf := make([]byte, 1<<20)
	oob := make([]byte, unix.CmsgSpace(8*4))
	for {
		n, oobn, _, _, err := ctl.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			break // the daemon went, or retired us
		}
		files, ferr := receivedFiles(oob[:oobn])
		var req holderRequest
		jerr := json.Unmarshal(buf[:n], &req)
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveExec(req, files, errors.Join(ferr, jerr), self)
		}()
	}
	ctl.Close()
	wg.Wait()
	return 0
}

// fileConn makes f, a unix socket, a *net.UnixConn (and closes f).
func fileConn(f *os.File) (*net.UnixConn, error) {
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("%s: not a unix socket", f.Name())
	}
	return uc, nil
}

// serveExec runs one request: files are the exec's socket, the exit and
// start files, then the stdio the request lists.
func serveExec(req holderRequest, files []*os.File, bad error, self uint64) {
	ctx := context.Background()
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	want := 3
	for _, ok := range req.Stdio {
		if ok {
			want++
		}
	}
	if len(files) == 0 {
		return // no socket to answer on
	}
	uc, err := fileConn(files[0])
	files = files[1:]
	if err != nil {
		return
	}
	// Closed last: EOF tells the daemon the exit file is written.
	defer uc.Close()
	reply := func(r holderReply) bool {
		b, _ := json.Marshal(r)
		_, err := uc.Write(b)
		return err == nil
	}
	if bad == nil && (req.Process == nil || len(files) != want-1) {
		bad = fmt.Errorf("got %d files, want %d", len(files)+1, want)
	}
	if bad != nil {
		reply(holderReply{Error: fmt.Sprintf("exec holder: bad request: %v", bad)})
		return
	}
	exitf, startf, stdio := files[0], files[1], files[2:]
	var pio runtime.IO
	for i, dst := range []**os.File{&pio.Stdin, &pio.Stdout, &pio.Stderr} {
		if req.Stdio[i] {
			*dst, stdio = stdio[0], stdio[1:]
		}
	}
	p, master, err := holderStart(ctx, req, pio)
	// The process has its own copies: ours would keep the daemon's pipes
	// open after it ends.
	for _, f := range files[2:] {
		f.Close()
	}
	if err != nil {
		reply(holderReply{Error: err.Error()})
		return
	}
	// Written before the answer: a daemon killed right after this must
	// still find the process (the daemon only reads it).
	st := execStarted{Pid: p.Pid(), HolderPid: os.Getpid(), HolderStart: self}
	st.PidStart, _ = procStartTime(st.Pid)
	if b, err := json.Marshal(st); err == nil {
		_, _ = startf.WriteAt(b, 0)
	}
	// A daemon gone before it learned the pid leaves the process running:
	// its status is still written, for the next daemon.
	if reply(holderReply{Pid: p.Pid()}) && master != nil {
		// As console.SendMasterTo does: the name, and the fd.
		_, _, _ = uc.WriteMsgUnix([]byte("/dev/ptmx"), unix.UnixRights(int(master.Fd())), nil)
	}
	if master != nil && req.Drain {
		go func() { _, _ = io.Copy(io.Discard, master) }()
	}
	code, werr := p.Wait(ctx)
	if master != nil {
		master.Close() // held until here, the terminal's last holder but the daemon
	}
	ex := execExit{Code: code, At: time.Now().UTC()}
	if werr != nil {
		ex.Code, ex.Error = 255, werr.Error()
	}
	_ = writeExecExit(exitf, ex)
}

// receivedFiles are the fds of a message's SCM_RIGHTS, in order.
func receivedFiles(oob []byte) ([]*os.File, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var out []*os.File
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_RIGHTS {
			continue
		}
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			return nil, err
		}
		for _, fd := range fds {
			// Go asks for MSG_CMSG_CLOEXEC; made sure of here, as no host
			// fd may reach the container (CVE-2024-21626).
			unix.CloseOnExec(fd)
			out = append(out, os.NewFile(uintptr(fd), "received"))
		}
	}
	return out, nil
}

// holderStart starts req's process in its container; with a terminal it
// also returns the pty master the runtime handed over.
func holderStart(ctx context.Context, req holderRequest, pio runtime.IO) (*runtime.Process, *os.File, error) {
	rt, err := runtime.New(req.RuntimeRoot)
	if err != nil {
		return nil, nil, err
	}
	rc, err := rt.Load(ctx, req.ContainerID)
	if err != nil {
		return nil, nil, fmt.Errorf("exec in %s: %w", req.ContainerID, err)
	}
	eo := runtime.ExecOptions{Process: req.Process, NoSeccomp: req.NoSeccomp}
	var masterCh chan *os.File
	if req.Process.Terminal {
		sock, l, done, err := consoleListener(req.Dir)
		if err != nil {
			return nil, nil, err
		}
		defer done()
		eo.ConsoleSocket = sock
		masterCh = make(chan *os.File, 1)
		go func() {
			conn, err := l.AcceptUnix()
			if err != nil {
				masterCh <- nil
				return
			}
			defer conn.Close()
			m, _ := console.ReceiveMaster(conn)
			masterCh <- m
		}()
	} else {
		eo.IO = pio
	}
	p, err := rc.Exec(ctx, eo)
	if err != nil {
		return nil, nil, err
	}
	var master *os.File
	if masterCh != nil {
		if master = <-masterCh; master == nil {
			_ = p.Signal(unix.SIGKILL)
			_, _ = p.Wait(ctx)
			return nil, nil, errors.New("exec: no terminal from the runtime")
		}
	}
	return p, master, nil
}

// writeExecExit writes ex into the pre-made exit file f in one write
// (not synced: see writeJSONAtomic). A reader that finds it empty or
// short treats the status as not yet written.
func writeExecExit(f *os.File, ex execExit) error {
	b, err := json.Marshal(ex)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, 0)
	return err
}

// readExecExit reads an exec's exit file; errdefs.ErrNotFound while it
// holds no status (the process runs, or never started).
func readExecExit(path string) (execExit, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return execExit{}, fmt.Errorf("exec exit status: %w", errdefs.ErrNotFound)
	}
	var ex execExit
	if len(b) == 0 || json.Unmarshal(b, &ex) != nil {
		return execExit{}, fmt.Errorf("exec exit status %s: %w", path, errdefs.ErrNotFound)
	}
	return ex, nil
}

// execHolder is the daemon's view of one exec's process under a holder.
type execHolder struct {
	pid         int    // the exec's process
	pidStart    uint64 // its start time (clock ticks after boot), against pid reuse
	holder      int    // the holder's pid
	holderStart uint64
	conn        *net.UnixConn // the exec's socket; nil after a restart
	exitPath    string
}

// holderOptions are startHolder's.
type holderOptions struct {
	req       holderRequest // Stdio is set from stdio
	exitPath  string
	startPath string
	stdio     [3]*os.File // nil entries are /dev/null
}

// sharedHolder is the engine's running holder.
type sharedHolder struct {
	cmd   *exec.Cmd
	ctl   *net.UnixConn
	start uint64
	done  chan struct{} // closed once it has exited
}

// spawnHolder starts a holder.
func spawnHolder() (*sharedHolder, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("exec holder: control socketpair: %w", err)
	}
	theirs := os.NewFile(uintptr(fds[1]), "exec-holder-control")
	defer theirs.Close()
	ctl, err := fileConn(os.NewFile(uintptr(fds[0]), "exec-control"))
	if err != nil {
		return nil, fmt.Errorf("exec holder: %w", err)
	}
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{execHolderArgv0},
		Env:        []string{envExecHolder + "=1"},
		Dir:        "/", // pins no directory of the daemon's
		ExtraFiles: []*os.File{theirs},
		// A session of its own: signals to the daemon's process group
		// (a terminal's ^C) must not reach it.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		ctl.Close()
		return nil, fmt.Errorf("exec holder: start: %w", err)
	}
	h := &sharedHolder{cmd: cmd, ctl: ctl, done: make(chan struct{})}
	h.start, _ = procStartTime(cmd.Process.Pid)
	go func() {
		_ = cmd.Wait()
		close(h.done)
	}()
	return h, nil
}

// holder returns the engine's holder, starting one if there is none yet
// or it died. The engine's stop closes its control socket.
func (s *execStore) holder(c *ctrs) (*sharedHolder, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.shared; h != nil {
		select {
		case <-h.done:
			h.ctl.Close()
			s.shared = nil
		default:
			return h, nil
		}
	}
	if c.bg.Err() != nil {
		return nil, fmt.Errorf("exec: the engine is stopping: %w", errdefs.ErrUnavailable)
	}
	h, err := spawnHolder()
	if err != nil {
		return nil, err
	}
	s.shared = h
	if !s.retireOnStop {
		s.retireOnStop = true
		context.AfterFunc(c.bg, func() {
			s.mu.Lock()
			h := s.shared
			s.shared = nil
			s.mu.Unlock()
			if h != nil {
				h.ctl.Close() // it exits once its processes have
			}
		})
	}
	return h, nil
}

// dropHolder forgets h, which could not take a request.
func (s *execStore) dropHolder(h *sharedHolder) {
	s.mu.Lock()
	if s.shared == h {
		s.shared = nil
	}
	s.mu.Unlock()
	h.ctl.Close()
}

// startHolder has the engine's holder run o.req and returns once the
// process runs (with its pty master when it has a terminal), or with the
// runtime's error.
func (e *Engine) startHolder(ctx context.Context, c *ctrs, o holderOptions) (*execHolder, *os.File, error) {
	id := o.req.ContainerID
	open := func(p string) (*os.File, error) {
		return os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	}
	exitf, err := open(o.exitPath)
	if err != nil {
		return nil, nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer exitf.Close()
	startf, err := open(o.startPath)
	if err != nil {
		return nil, nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer startf.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("exec in %s: socketpair: %w", id, err)
	}
	theirs := os.NewFile(uintptr(fds[1]), "exec-holder-conn")
	defer theirs.Close()
	uc, err := fileConn(os.NewFile(uintptr(fds[0]), "exec-conn"))
	if err != nil {
		return nil, nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	rights := []int{int(theirs.Fd()), int(exitf.Fd()), int(startf.Fd())}
	for i, f := range o.stdio {
		if o.req.Stdio[i] = f != nil; f != nil {
			rights = append(rights, int(f.Fd()))
		}
	}
	b, err := json.Marshal(o.req)
	if err != nil {
		uc.Close()
		return nil, nil, err
	}
	s := e.execs()
	var h *sharedHolder
	for try := 0; ; try++ {
		if h, err = s.holder(c); err != nil {
			uc.Close()
			return nil, nil, fmt.Errorf("exec in %s: %w", id, err)
		}
		if _, _, err = h.ctl.WriteMsgUnix(b, unix.UnixRights(rights...), nil); err == nil {
			break
		}
		// A holder someone killed: one more, fresh.
		s.dropHolder(h)
		if try == 1 {
			uc.Close()
			return nil, nil, fmt.Errorf("exec in %s: holder: %w", id, err)
		}
	}
	theirs.Close()
	fail := func(err error) (*execHolder, *os.File, error) {
		uc.Close()
		return nil, nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = uc.SetDeadline(dl)
	}
	buf := make([]byte, 64<<10)
	n, err := uc.Read(buf)
	if err != nil || n == 0 {
		return fail(fmt.Errorf("exec in %s: holder ended before answering: %v", id, err))
	}
	var rep holderReply
	if err := json.Unmarshal(buf[:n], &rep); err != nil {
		return fail(fmt.Errorf("exec in %s: holder reply: %w", id, err))
	}
	if rep.Error != "" {
		return fail(errors.New(rep.Error))
	}
	var master *os.File
	if o.req.Process.Terminal {
		if master, err = console.ReceiveMaster(uc); err != nil {
			return fail(fmt.Errorf("exec in %s: %w", id, err))
		}
	}
	_ = uc.SetDeadline(time.Time{})
	x := &execHolder{pid: rep.Pid, holder: h.cmd.Process.Pid, holderStart: h.start, conn: uc, exitPath: o.exitPath}
	x.pidStart, _ = procStartTime(rep.Pid)
	return x, master, nil
}

// wait waits for the process to end and returns its exit status. With
// the exec's socket, the holder's EOF says the status is written; without
// (found after a restart, or a holder that died), the process is watched
// through a pidfd. ctx ends the watch.
func (h *execHolder) wait(ctx context.Context) (execExit, error) {
	if h.conn != nil {
		stop := context.AfterFunc(ctx, func() { _ = h.conn.SetReadDeadline(time.Now()) })
		buf := make([]byte, 512)
		for {
			if _, err := h.conn.Read(buf); err != nil {
				break
			}
		}
		stop()
		h.conn.Close()
		if err := ctx.Err(); err != nil {
			return execExit{}, err
		}
		if ex, err := readExecExit(h.exitPath); err == nil {
			return ex, nil
		}
		// The holder died under a running process: watch the process.
	}
	if err := waitForeignPid(ctx, h.pid, h.pidStart); err != nil {
		return execExit{}, err
	}
	// The holder writes the status just after it reaps the process.
	for range 200 {
		if ex, err := readExecExit(h.exitPath); err == nil {
			return ex, nil
		}
		if st, err := procStartTime(h.holder); err != nil || st != h.holderStart {
			break
		}
		select {
		case <-ctx.Done():
			return execExit{}, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	if ex, err := readExecExit(h.exitPath); err == nil {
		return ex, nil
	}
	// The holder died without writing (killed): as docker reports a
	// process whose status was lost.
	return execExit{Code: 255, At: time.Now().UTC(), Error: "exec holder ended without a status"}, nil
}

// procStartTime is pid's start time in clock ticks after boot (field 22
// of /proc/<pid>/stat), which tells a process from a later one that got
// the same pid.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: count
	// from the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// waitForeignPid waits until pid, a process that is not our child, has
// ended. start, if not zero, is its start time: a different process under
// the same pid counts as ended.
func waitForeignPid(ctx context.Context, pid int, start uint64) error {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil // already gone
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	if start != 0 {
		// Checked after the pidfd is open: the pidfd pins the process we
		// compare.
		if st, err := procStartTime(pid); err != nil || st != start {
			return nil
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Now()) })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	// A pidfd polls readable once its process has exited (pidfd_open(2)).
	err = rc.Read(func(fd uintptr) bool {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 0)
		return err != unix.EINTR && n > 0
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("wait for pid %d: %w", pid, err)
	}
	return nil
}
