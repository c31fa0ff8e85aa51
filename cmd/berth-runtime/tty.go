package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/console"
)

// ttyProxy serves a foreground `run` of a container whose process wants a
// terminal but was given no --console-socket: like runc, berth-runtime
// receives the pty master itself and copies between it and its own stdio,
// with the caller's terminal in raw mode.
type ttyProxy struct {
	dir    string
	l      *net.UnixListener
	master chan *os.File
	saved  *unix.Termios
}

func newTTYProxy() (*ttyProxy, error) {
	dir, err := os.MkdirTemp("", "berth-runtime-tty-")
	if err != nil {
		return nil, err
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "console.sock"), Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("console socket: %w", err)
	}
	p := &ttyProxy{dir: dir, l: l, master: make(chan *os.File, 1)}
	go func() {
		conn, err := l.AcceptUnix()
		if err != nil {
			p.master <- nil
			return
		}
		defer conn.Close()
		m, err := console.ReceiveMaster(conn)
		if err != nil {
			m = nil
		}
		p.master <- m
	}()
	return p, nil
}

func (p *ttyProxy) path() string { return filepath.Join(p.dir, "console.sock") }

// attach starts copying once the container was created.
func (p *ttyProxy) attach(c *runtime.Container) {
	m := <-p.master
	if m == nil {
		return
	}
	if t, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		p.saved = t
		raw := *t
		raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		raw.Oflag &^= unix.OPOST
		raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		raw.Cflag &^= unix.CSIZE | unix.PARENB
		raw.Cflag |= unix.CS8
		_ = unix.IoctlSetTermios(0, unix.TCSETS, &raw)
		if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
			_ = console.SetSize(m, ws.Row, ws.Col)
		}
	}
	go func() { _, _ = io.Copy(m, os.Stdin) }()
	go func() { _, _ = io.Copy(os.Stdout, m) }()
}

func (p *ttyProxy) close() {
	if p.saved != nil {
		_ = unix.IoctlSetTermios(0, unix.TCSETS, p.saved)
	}
	p.l.Close()
	os.RemoveAll(p.dir)
}
