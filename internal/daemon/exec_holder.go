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
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/console"
)

// An exec's process is not the daemon's child but a small holder's: the
// binary re-executed as "berth-exec", in a session of its own, that calls
// the runtime library to start the process (so the process, re-parented
// past nsenter's fork, lands on the holder as child subreaper), reaps it
// and writes its exit status. A daemon killed with -9 leaves the holder
// running; the daemon started next reads the status, or waits for the
// holder, as for a container's monitor (restoreExecs).
//
// A holder costs a Go start-up, so the daemon keeps one started ahead,
// idle on its socket, and starts the next once the exec it handed one to
// runs (not before: on two cores the start-up would slow that exec):
// an exec pays a message, not a process start (isolated execs measured
// 24 ms median against 30-35 ms starting a holder each time; 19 ms for
// the daemon's own child before holders). An idle holder exits when its
// socket closes (the engine stopping, or the daemon gone).
//
//	daemon (ExecStart)                     holder (execHolderMain)
//	  exec berth-exec, setsid, fd 3 the
//	  sync socket (seqpacket) ----------->   (idle: waits for a request;
//	                                          EOF: exit)
//	  pre-create <dir>/exit, start.json
//	  holderRequest + SCM_RIGHTS (exit,
//	  start.json, the process's stdio) -->
//	                                         runtime Load, Exec (tty: the
//	                                         master arrives on <dir>/c.sock)
//	                                         write start.json (pids)
//	                    <------------------- holderReply {pid} or {error}
//	                    <------------------- tty: the pty master (SCM_RIGHTS)
//	                                         close stdio, keep the master
//	  copy stdio, wait for the holder        reap the process: write exit
//	  read <dir>/exit                        exit
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
	holderSyncFD    = 3
)

// holderRequest is the daemon's one message to a new holder.
type holderRequest struct {
	ContainerID string         `json:"containerId"`
	RuntimeRoot string         `json:"runtimeRoot"`
	Dir         string         `json:"dir"` // the exec's directory (the console socket goes there)
	Process     *specs.Process `json:"process"`
	// NoSeccomp runs the process without the container's seccomp filter
	// (exec --privileged).
	NoSeccomp bool `json:"noSeccomp,omitempty"`
	// Stdio says which of stdin, stdout, stderr come with the request
	// (after the exit and start files); the others are /dev/null.
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
	ctx := context.Background()
	syncf := os.NewFile(holderSyncFD, "sync")
	conn, err := net.FileConn(syncf)
	syncf.Close()
	if err != nil {
		return 2
	}
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return 2
	}
	reply := func(r holderReply) bool {
		b, _ := json.Marshal(r)
		_, err := uc.Write(b)
		return err == nil
	}
	buf := make([]byte, 1<<20)
	oob := make([]byte, unix.CmsgSpace(8*4))
	n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil || n == 0 {
		return 0 // retired while idle
	}
	files, ferr := receivedFiles(oob[:oobn])
	var req holderRequest
	if err := json.Unmarshal(buf[:n], &req); err != nil || req.Process == nil || ferr != nil {
		reply(holderReply{Error: fmt.Sprintf("exec holder: bad request: %v", errors.Join(err, ferr))})
		return 2
	}
	want := 2
	for _, ok := range req.Stdio {
		if ok {
			want++
		}
	}
	if len(files) != want {
		reply(holderReply{Error: fmt.Sprintf("exec holder: got %d files, want %d", len(files), want)})
		return 2
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
		return 1
	}
	// Written before the answer: a daemon killed right after this must
	// still find the process (the daemon only reads it).
	st := execStarted{Pid: p.Pid(), HolderPid: os.Getpid()}
	st.HolderStart, _ = procStartTime(st.HolderPid)
	if b, err := json.Marshal(st); err == nil {
		_, _ = startf.WriteAt(b, 0)
	}
	startf.Close()
	// A daemon gone before it learned the pid leaves the process running:
	// its status is still written, for the next daemon.
	if reply(holderReply{Pid: p.Pid()}) && master != nil {
		// As console.SendMasterTo does: the name, and the fd.
		_, _, _ = uc.WriteMsgUnix([]byte("/dev/ptmx"), unix.UnixRights(int(master.Fd())), nil)
	}
	uc.Close()
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
	if err := writeExecExit(exitf, ex); err != nil {
		return 1
	}
	return 0
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
	if req.NoSeccomp {
		// The runtime applies the container's filter to every exec and
		// has no per-process switch yet: Exec reads the spec Spec()
		// returns, so clearing it here, in this throwaway process, runs
		// the process unfiltered, as docker exec --privileged did (the
		// mount namespace, so the masked paths, stay the container's).
		if s := rc.Spec(); s.Linux != nil {
			s.Linux.Seccomp = nil
		}
	}
	eo := runtime.ExecOptions{Process: req.Process}
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

// execHolder is the daemon's view of one holder.
type execHolder struct {
	pid      int       // the exec's process
	holder   int       // the holder's pid
	start    uint64    // the holder's start time (clock ticks after boot), against pid reuse
	cmd      *exec.Cmd // set while the holder is our child; nil after a restart
	exitPath string
}

// holderOptions are startHolder's.
type holderOptions struct {
	req       holderRequest // Stdio is set from stdio
	exitPath  string
	startPath string
	stdio     [3]*os.File // nil entries are /dev/null
}

// idleHolder is a started holder waiting for its request.
type idleHolder struct {
	cmd *exec.Cmd
	uc  *net.UnixConn
}

// spawnHolder starts a holder; it waits on its socket for a request.
func spawnHolder() (*idleHolder, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("exec holder: sync socketpair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "exec-sync"), os.NewFile(uintptr(fds[1]), "exec-sync-holder")
	defer theirs.Close()
	conn, err := net.FileConn(ours)
	ours.Close()
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
		conn.Close()
		return nil, fmt.Errorf("exec holder: start: %w", err)
	}
	return &idleHolder{cmd: cmd, uc: conn.(*net.UnixConn)}, nil
}

// retire ends an idle holder: on EOF it exits.
func (h *idleHolder) retire() {
	h.uc.Close()
	go func() { _ = h.cmd.Wait() }()
}

// takeHolder hands out the idle holder, or starts one.
func (s *execStore) takeHolder(c *ctrs) (*idleHolder, error) {
	s.mu.Lock()
	h := s.idle
	s.idle = nil
	if !s.retireOnStop {
		s.retireOnStop = true
		context.AfterFunc(c.bg, func() {
			s.mu.Lock()
			h := s.idle
			s.idle = nil
			s.mu.Unlock()
			if h != nil {
				h.retire()
			}
		})
	}
	s.mu.Unlock()
	if h != nil {
		return h, nil
	}
	return spawnHolder()
}

// refill starts the successor of a holder just handed out, unless the
// engine stops. Called once the exec's process runs: the successor's
// start-up would otherwise take the CPU that exec needs.
func (s *execStore) refill(c *ctrs) {
	go func() {
		if c.bg.Err() != nil {
			return
		}
		next, err := spawnHolder()
		if err != nil {
			return // the next exec starts its own
		}
		s.mu.Lock()
		if s.idle == nil && c.bg.Err() == nil {
			s.idle, next = next, nil
		}
		s.mu.Unlock()
		if next != nil {
			next.retire()
		}
	}()
}

// startHolder has a holder run o.req and returns once the process runs
// (with its pty master when it has a terminal), or with the runtime's
// error.
func (e *Engine) startHolder(ctx context.Context, c *ctrs, o holderOptions) (*execHolder, *os.File, error) {
	id := o.req.ContainerID
	exitf, err := os.OpenFile(o.exitPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer exitf.Close()
	// The start file too is made here and written by the holder through
	// its fd, before it answers: a daemon killed between the answer and
	// its own write would lose a running process's pid.
	startf, err := os.OpenFile(o.startPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer startf.Close()
	rights := []int{int(exitf.Fd()), int(startf.Fd())}
	for i, f := range o.stdio {
		if o.req.Stdio[i] = f != nil; f != nil {
			rights = append(rights, int(f.Fd()))
		}
	}
	b, err := json.Marshal(o.req)
	if err != nil {
		return nil, nil, err
	}
	var h *idleHolder
	for try := 0; ; try++ {
		if h, err = e.execs().takeHolder(c); err != nil {
			return nil, nil, fmt.Errorf("exec in %s: %w", id, err)
		}
		_, _, err = h.uc.WriteMsgUnix(b, unix.UnixRights(rights...), nil)
		if err == nil {
			break
		}
		// An idle holder someone killed: one more, fresh.
		h.retire()
		if try == 1 {
			return nil, nil, fmt.Errorf("exec in %s: holder: %w", id, err)
		}
	}
	defer h.uc.Close()
	fail := func(err error) (*execHolder, *os.File, error) {
		_ = h.cmd.Process.Kill()
		_ = h.cmd.Wait()
		return nil, nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = h.uc.SetDeadline(dl)
	}
	buf := make([]byte, 64<<10)
	n, err := h.uc.Read(buf)
	if err != nil || n == 0 {
		return fail(fmt.Errorf("exec in %s: holder ended before answering: %v", id, err))
	}
	var rep holderReply
	if err := json.Unmarshal(buf[:n], &rep); err != nil {
		return fail(fmt.Errorf("exec in %s: holder reply: %w", id, err))
	}
	e.execs().refill(c)
	if rep.Error != "" {
		_ = h.cmd.Wait()
		return nil, nil, errors.New(rep.Error)
	}
	var master *os.File
	if o.req.Process.Terminal {
		if master, err = console.ReceiveMaster(h.uc); err != nil {
			return fail(fmt.Errorf("exec in %s: %w", id, err))
		}
	}
	x := &execHolder{pid: rep.Pid, holder: h.cmd.Process.Pid, cmd: h.cmd, exitPath: o.exitPath}
	x.start, _ = procStartTime(x.holder)
	return x, master, nil
}

// wait waits for the holder to end and returns the process's exit
// status. A holder that is not our child (found after a restart) is
// watched through a pidfd; ctx ends the watch.
func (h *execHolder) wait(ctx context.Context) (execExit, error) {
	if h.cmd != nil {
		_ = h.cmd.Wait()
	} else if err := waitForeignPid(ctx, h.holder, h.start); err != nil {
		return execExit{}, err
	}
	ex, err := readExecExit(h.exitPath)
	if err != nil {
		// The holder died without writing (killed): as docker reports a
		// process whose status was lost.
		return execExit{Code: 255, At: time.Now().UTC(), Error: "exec holder ended without a status"}, nil
	}
	return ex, nil
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
