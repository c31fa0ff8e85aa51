package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
//	daemon (ExecStart)                     holder (execHolderMain)
//	  pre-create <dir>/exit (empty)
//	  exec berth-exec, setsid; fds:
//	  0-2 the process's stdio (pipes or
//	  /dev/null), 3 sync (seqpacket),
//	  4 the exit file
//	  holderRequest ---------------------->
//	                                         runtime Load, Exec (tty: the
//	                                         master arrives on <dir>/c.sock)
//	                    <------------------- holderReply {pid} or {error}
//	                    <------------------- tty: the pty master (SCM_RIGHTS)
//	  write <dir>/start.json                 close stdio, keep the master
//	  copy stdio, wait for the holder        reap the process: write exit
//	  read <dir>/exit                        exit
//
// The holder writes into the exit file the daemon made, through the fd it
// was given, and adds no name to the directory: a container removal's
// RemoveAll of the state directory racing an exec's end must not meet a
// file appearing (ENOTEMPTY). A tty's master stays open in the holder
// until the process ends, so a daemon going away does not hang the
// terminal up (SIGHUP) under a running exec.
const (
	execHolderArgv0 = "berth-exec"
	envExecHolder   = "_BERTH_EXEC_HOLDER"
	holderSyncFD    = 3
	holderExitFD    = 4
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
	// Its stderr is the exec's: nothing of ours may show there.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	ctx := context.Background()
	syncf := os.NewFile(holderSyncFD, "sync")
	exitf := os.NewFile(holderExitFD, "exit")
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
	n, err := uc.Read(buf)
	if err != nil {
		return 2
	}
	var req holderRequest
	if err := json.Unmarshal(buf[:n], &req); err != nil || req.Process == nil {
		reply(holderReply{Error: fmt.Sprintf("exec holder: bad request: %v", err)})
		return 2
	}
	p, master, err := holderStart(ctx, req)
	if err != nil {
		reply(holderReply{Error: err.Error()})
		return 1
	}
	// A daemon gone before it learned the pid leaves the process running:
	// its status is still written, for the next daemon.
	if reply(holderReply{Pid: p.Pid()}) && master != nil {
		// As console.SendMasterTo does: the name, and the fd.
		_, _, _ = uc.WriteMsgUnix([]byte("/dev/ptmx"), unix.UnixRights(int(master.Fd())), nil)
	}
	uc.Close()
	// The daemon holds the other ends of the process's stdio: ours would
	// keep them open after the process ends.
	if null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
		for fd := 0; fd < 3; fd++ {
			_ = unix.Dup3(int(null.Fd()), fd, 0)
		}
		null.Close()
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

// holderStart starts req's process in its container; with a terminal it
// also returns the pty master the runtime handed over.
func holderStart(ctx context.Context, req holderRequest) (*runtime.Process, *os.File, error) {
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
		eo.IO = runtime.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
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
	req      holderRequest
	exitPath string
	stdio    [3]*os.File // nil entries are /dev/null
}

// startHolder starts a holder for o.req and returns once the process runs
// (with its pty master when it has a terminal), or with the runtime's
// error.
func startHolder(ctx context.Context, o holderOptions) (*execHolder, *os.File, error) {
	exitf, err := os.OpenFile(o.exitPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("exec in %s: %w", o.req.ContainerID, err)
	}
	defer exitf.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("exec in %s: sync socketpair: %w", o.req.ContainerID, err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "exec-sync"), os.NewFile(uintptr(fds[1]), "exec-sync-holder")
	defer theirs.Close()
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("exec in %s: %w", o.req.ContainerID, err)
	}
	uc := conn.(*net.UnixConn)
	defer uc.Close()
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{execHolderArgv0},
		Env:        []string{envExecHolder + "=1"},
		ExtraFiles: []*os.File{theirs, exitf},
		// A session of its own: signals to the daemon's process group
		// (a terminal's ^C) must not reach it.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	// Only non-nil files become the interfaces: a nil *os.File in an
	// io.Reader is not nil. Left unset, exec.Cmd gives /dev/null.
	if o.stdio[0] != nil {
		cmd.Stdin = o.stdio[0]
	}
	if o.stdio[1] != nil {
		cmd.Stdout = o.stdio[1]
	}
	if o.stdio[2] != nil {
		cmd.Stderr = o.stdio[2]
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("exec in %s: start holder: %w", o.req.ContainerID, err)
	}
	theirs.Close()
	fail := func(err error) (*execHolder, *os.File, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = uc.SetDeadline(dl)
	}
	b, err := json.Marshal(o.req)
	if err != nil {
		return fail(err)
	}
	if _, err := uc.Write(b); err != nil {
		return fail(fmt.Errorf("exec in %s: holder: %w", o.req.ContainerID, err))
	}
	buf := make([]byte, 64<<10)
	n, err := uc.Read(buf)
	if err != nil {
		return fail(fmt.Errorf("exec in %s: holder ended before answering: %w", o.req.ContainerID, err))
	}
	var rep holderReply
	if err := json.Unmarshal(buf[:n], &rep); err != nil {
		return fail(fmt.Errorf("exec in %s: holder reply: %w", o.req.ContainerID, err))
	}
	if rep.Error != "" {
		_ = cmd.Wait()
		return nil, nil, errors.New(rep.Error)
	}
	var master *os.File
	if o.req.Process.Terminal {
		if master, err = console.ReceiveMaster(uc); err != nil {
			return fail(fmt.Errorf("exec in %s: %w", o.req.ContainerID, err))
		}
	}
	h := &execHolder{pid: rep.Pid, holder: cmd.Process.Pid, cmd: cmd, exitPath: o.exitPath}
	h.start, _ = procStartTime(h.holder)
	return h, master, nil
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
