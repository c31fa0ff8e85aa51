package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/log"
)

type spawnOptions struct {
	attr  *syscall.SysProcAttr
	io    IO
	extra []*os.File // the container's fds 3, 4, ...
	fifo  *os.File   // exec fifo (create only)
	// listener is a connection to linux.seccomp.listenerPath, made on the
	// host side because the init cannot reach that path after pivot_root.
	listener *os.File
	// prepare lets exec hand the command to nsenter before it starts.
	prepare func(cmd *exec.Cmd) error
	// realPid returns the pid of the process inside all namespaces once
	// the command started (nsenter forks when joining a pid namespace).
	realPid func() (int, error)
}

// initProc is a started init and the parent's end of its sync socket.
type initProc struct {
	cmd        *exec.Cmd
	sock       *os.File
	pid        int
	fifoFD     int
	listenerFD int
}

// spawn re-execs this binary, through its sealed read-only view, as an
// init with the given clone flags and fds. The init's fds are: 0-2 stdio,
// then extra, then the sync socket, the fifo and the binary itself.
func (c *Container) spawn(ctx context.Context, o spawnOptions) (*initProc, error) {
	exe, err := sealedExe()
	if err != nil {
		return nil, err
	}
	defer exe.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("sync socketpair: %w", err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, fmt.Errorf("sync socketpair: %w", err)
	}
	parent, child := os.NewFile(uintptr(fds[0]), "sync-parent"), os.NewFile(uintptr(fds[1]), "sync-child")
	defer child.Close()
	files := append([]*os.File(nil), o.extra...)
	syncFD := 3 + len(files)
	files = append(files, child)
	p := &initProc{sock: parent, fifoFD: -1}
	if o.fifo != nil {
		p.fifoFD = 3 + len(files)
		files = append(files, o.fifo)
	}
	p.listenerFD = -1
	if o.listener != nil {
		p.listenerFD = 3 + len(files)
		files = append(files, o.listener)
	}
	exeFD := 3 + len(files)
	files = append(files, exe)
	cmd := &exec.Cmd{
		Path:        fdPath(exeFD),
		Args:        []string{"berth-runtime", InitArg},
		Env:         []string{envSyncFD + "=" + strconv.Itoa(syncFD)},
		ExtraFiles:  files,
		SysProcAttr: o.attr,
		Stdin:       o.io.Stdin,
		Stdout:      o.io.Stdout,
		Stderr:      o.io.Stderr,
	}
	if o.prepare != nil {
		if err := o.prepare(cmd); err != nil {
			parent.Close()
			return nil, err
		}
	}
	log.From(ctx).Debug("start init", "cloneflags", fmt.Sprintf("%#x", o.attr.Cloneflags))
	if err := cmd.Start(); err != nil {
		parent.Close()
		return nil, fmt.Errorf("start init: %w", err)
	}
	p.cmd = cmd
	p.pid = cmd.Process.Pid
	if o.realPid != nil {
		pid, err := o.realPid()
		if err != nil {
			p.kill()
			return nil, err
		}
		p.pid = pid
	}
	return p, nil
}

// run sends the config and serves the init's messages until it reports
// ready, then returns. For exec it also waits for the exec itself (the
// socket closes on exec).
func (p *initProc) run(cfg *initConfig, handle func(message, []int) error) error {
	if err := send(p.sock, message{Type: msgConfig, Config: cfg}); err != nil {
		return p.diagnose(err)
	}
	for {
		m, fds, err := recv(p.sock)
		if err != nil {
			return p.diagnose(err)
		}
		switch m.Type {
		case msgError:
			return errors.New(m.Error)
		case msgReady:
			if cfg.Exec {
				// EOF means the execve happened; an error message means not.
				m, _, err := recv(p.sock)
				if err == nil && m.Type == msgError {
					return errors.New(m.Error)
				}
				if err != nil && !errors.Is(err, errPeerGone) {
					return err
				}
			}
			p.sock.Close()
			return nil
		default:
			if err := handle(m, fds); err != nil {
				for _, fd := range fds {
					unix.Close(fd)
				}
				return err
			}
		}
	}
}

// diagnose turns a broken sync socket into the init's exit status.
func (p *initProc) diagnose(err error) error {
	if errors.Is(err, errPeerGone) {
		if werr := p.cmd.Wait(); werr != nil {
			return fmt.Errorf("init exited early: %w", werr)
		}
		return errors.New("init exited early")
	}
	return err
}

func (p *initProc) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		if p.pid != p.cmd.Process.Pid {
			_ = unix.Kill(p.pid, unix.SIGKILL)
		}
		_ = p.cmd.Wait()
	}
	p.sock.Close()
}
