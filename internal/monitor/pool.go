package monitor

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Pool keeps monitors started ahead of need. A Start with Config.Pool
// takes one that has already paid for its process start (the exec of the
// binary, the Go runtime's start and every linked package's
// initialisation: a few milliseconds, on the path of every container
// start) and hands it the container's state directory over its sync
// socket. Each idle monitor costs what a Go monitor costs before it
// becomes a holder (a few MiB). The first Start with the pool begins to
// fill it, so an engine that never starts a container starts none. Close
// ends the idle ones. A Pool is safe for concurrent use.
type Pool struct {
	size int

	mu      sync.Mutex // guards idle, filling, closed
	idle    []*spawned
	filling int
	closed  bool
	wg      sync.WaitGroup // refills in flight
}

// NewPool returns a pool that keeps size monitors ready.
func NewPool(size int) *Pool { return &Pool{size: size} }

// spawned is a started monitor process and our end of its sync socket.
type spawned struct {
	cmd    *exec.Cmd
	sync   *os.File
	exited chan struct{} // closed once the process is reaped
}

// take returns an idle monitor, or nil; either way it starts refilling.
func (p *Pool) take() *spawned {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	var s *spawned
	for s == nil && len(p.idle) > 0 {
		s, p.idle = p.idle[0], p.idle[1:]
		select {
		case <-s.exited: // died while idle (killed by someone)
			s.sync.Close()
			s = nil
		default:
		}
	}
	p.mu.Unlock()
	p.refill()
	return s
}

func (p *Pool) refill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.closed && len(p.idle)+p.filling < p.size {
		p.filling++
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			s, err := spawn("", "", nil)
			p.mu.Lock()
			p.filling--
			if err == nil && !p.closed {
				p.idle = append(p.idle, s)
				s = nil
			}
			p.mu.Unlock()
			if s != nil {
				s.stop()
			}
		}()
	}
}

// Close ends the idle monitors and waits for them to go. Monitors already
// handed to containers are not touched. Nil does nothing.
func (p *Pool) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	p.wg.Wait()
	for _, s := range idle {
		s.stop()
	}
}

// stop ends an idle monitor: EOF on its sync socket makes it exit.
func (s *spawned) stop() {
	s.sync.Close()
	select {
	case <-s.exited:
	case <-time.After(2 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// spawn starts a monitor process in a session of its own, fd 3 the child
// end of a new sync socketpair, id (if known) in its argv for ps. With
// stateDir "" it waits, idle, to be told its state directory (see Main);
// log (nil: /dev/null) is its stdout and stderr until then.
func spawn(stateDir, id string, log *os.File) (*spawned, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	parent, child := os.NewFile(uintptr(fds[0]), "monitor-sync"), os.NewFile(uintptr(fds[1]), "monitor-sync-child")
	defer child.Close()
	args := []string{argv0}
	if id != "" {
		args = append(args, id)
	}
	cmd := &exec.Cmd{
		Path:        exe,
		Args:        args,
		Env:         monitorEnv(stateDir),
		ExtraFiles:  []*os.File{child},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if log != nil {
		cmd.Stdout, cmd.Stderr = log, log
	}
	if err := cmd.Start(); err != nil {
		parent.Close()
		return nil, err
	}
	s := &spawned{cmd: cmd, sync: parent, exited: make(chan struct{})}
	// Reap the monitor whenever it ends, as long as we are here to.
	go func() { _ = cmd.Wait(); close(s.exited) }()
	return s, nil
}
