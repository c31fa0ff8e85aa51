package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cleanup"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/runtime/console"
	"github.com/berth-dev/berth/internal/runtime/nsenter"
)

// ExecOptions describe a process to run in a running container.
type ExecOptions struct {
	Process       *specs.Process
	IO            IO
	ConsoleSocket string
	PidFile       string
	// ExtraFiles are passed to the process as fds 3, 4, ...
	ExtraFiles []*os.File
	// NoSeccomp runs the process without the container's seccomp filter
	// (an engine's exec --privileged); runc has no such switch.
	NoSeccomp bool
}

// Process is a process started by Exec.
type Process struct {
	pid      int
	cmd      *exec.Cmd // nil when the process is not our child (nsenter forked)
	waitOnce sync.Once
	status   int
	err      error
}

// Pid is the process's pid in the runtime's pid namespace.
func (p *Process) Pid() int { return p.pid }

// Signal sends sig to the process.
func (p *Process) Signal(sig unix.Signal) error { return unix.Kill(p.pid, sig) }

// Wait waits for the process and returns its exit status (128+n for a
// signal). When joining the container's pid namespace made nsenter fork,
// the process is not our child; Exec made this process a child subreaper so
// it is re-parented here and can still be reaped.
func (p *Process) Wait(ctx context.Context) (int, error) {
	p.waitOnce.Do(func() {
		ws, err := waitPid(p.pid)
		if err != nil {
			p.status, p.err = -1, err
			return
		}
		if ws.Signaled() {
			p.status = 128 + int(ws.Signal())
		} else {
			p.status = ws.ExitStatus()
		}
	})
	return p.status, p.err
}

// Exec starts a process inside every namespace and the cgroup of a
// running (or created) container. Joining the mount and user namespaces
// needs a single-threaded process, so the re-exec'd init is placed in them
// by nsenter's C constructor before the Go runtime starts.
func (c *Container) Exec(ctx context.Context, opts ExecOptions) (*Process, error) {
	st := c.Status()
	if st != StatusRunning && st != StatusCreated {
		return nil, wrongState(c, "exec in", st)
	}
	p := opts.Process
	if p == nil {
		return nil, invalid("exec: no process")
	}
	if err := validateProcess(p); err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", c.rec.ID, err)
	}
	if p.Terminal != (opts.ConsoleSocket != "") {
		return nil, invalid("exec in container %s: a terminal and --console-socket go together", c.rec.ID)
	}
	spec, err := c.rec.spec()
	if err != nil {
		return nil, err
	}
	if opts.NoSeccomp && spec.Linux != nil && spec.Linux.Seccomp != nil {
		s, l := *spec, *spec.Linux
		l.Seccomp = nil
		s.Linux = &l
		spec = &s
	}
	var cfg nsenter.Config
	for _, ns := range spec.Linux.Namespaces {
		path := filepath.Join("/proc", strconv.Itoa(c.rec.Pid), "ns", procNSName[ns.Type])
		cfg.Namespaces = append(cfg.Namespaces, specs.LinuxNamespace{Type: ns.Type, Path: path})
	}
	mgr, err := c.cgroups()
	if err != nil {
		return nil, err
	}
	// A process that nsenter forks into the pid namespace is re-parented to
	// the nearest subreaper: make that us, so Wait can reap it.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("become child subreaper: %w", err)
	}
	var listener *os.File
	if sc := spec.Linux.Seccomp; sc != nil && sc.ListenerPath != "" {
		if listener, err = dialListener(sc.ListenerPath); err != nil {
			return nil, err
		}
		defer listener.Close()
	}
	var sess *nsenter.Session
	ip, err := c.spawn(ctx, spawnOptions{
		attr: &syscall.SysProcAttr{}, io: opts.IO, extra: opts.ExtraFiles, listener: listener,
		prepare: func(cmd *exec.Cmd) error {
			var err error
			sess, err = nsenter.Prepare(cmd, cfg)
			return err
		},
		realPid: func() (int, error) { return sess.Wait(ctx) },
	})
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", c.rec.ID, err)
	}
	var undo cleanup.Stack
	defer undo.Unwind()
	undo.Push(func() {
		_ = unix.Kill(ip.pid, unix.SIGKILL)
		if ip.pid != ip.cmd.Process.Pid {
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(ip.pid, &ws, 0, nil)
		} else {
			_ = ip.cmd.Wait()
		}
	})
	if err := mgr.Apply(ip.pid); err != nil {
		return nil, fmt.Errorf("exec in container %s: cgroups: %w", c.rec.ID, err)
	}
	cfg2 := &initConfig{
		ID: c.rec.ID, Exec: true, Spec: initSpec(spec), Process: p, Rootfs: c.rec.Rootfs, Bundle: c.rec.Bundle,
		FirstFD: 3 + len(opts.ExtraFiles), FifoFD: -1, ListenerFD: ip.listenerFD,
	}
	pst := c.ociState(specs.StateRunning)
	pst.Pid = ip.pid
	cfg2.State = &pst
	err = ip.run(cfg2, func(m message, fds []int) error {
		if m.Type == msgPty && len(fds) == 1 {
			master := os.NewFile(uintptr(fds[0]), "pty-master")
			defer master.Close()
			return console.SendMaster(opts.ConsoleSocket, master)
		}
		return fmt.Errorf("unexpected %q message", m.Type)
	})
	if err != nil {
		if errors.Is(err, errPeerGone) {
			err = errors.New("init exited early")
		}
		return nil, fmt.Errorf("exec in container %s: %w", c.rec.ID, err)
	}
	if opts.PidFile != "" {
		if err := writePidFile(opts.PidFile, ip.pid); err != nil {
			return nil, err
		}
	}
	undo.Disarm()
	proc := &Process{pid: ip.pid}
	if ip.pid == ip.cmd.Process.Pid {
		proc.cmd = ip.cmd
	}
	log.From(ctx).Debug("exec", log.KeyContainer, c.rec.ID, log.KeyPID, ip.pid)
	return proc, nil
}

var _ = errdefs.ErrNotFound

// waitPid reaps pid, a child of this process, waiting in the poller on a
// pidfd instead of in a blocking wait4, which would hold a thread and keep
// the Go scheduler busy handing its P around.
func waitPid(pid int) (syscall.WaitStatus, error) {
	pidfd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return 0, fmt.Errorf("wait for pid %d: %w", pid, err)
	}
	f := os.NewFile(uintptr(pidfd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var ws syscall.WaitStatus
	var werr error
	if err := rc.Read(func(uintptr) bool {
		var wpid int
		wpid, werr = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if werr == syscall.EINTR {
			return false
		}
		return werr != nil || wpid == pid
	}); err != nil {
		return 0, fmt.Errorf("wait for pid %d: %w", pid, err)
	}
	if werr != nil {
		return 0, fmt.Errorf("wait for pid %d: %w", pid, werr)
	}
	return ws, nil
}
