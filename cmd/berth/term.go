package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/client"
)

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// makeRaw puts the terminal in raw mode (as cfmakeraw(3)): keys go to the
// container's pty unprocessed, so ^C is the container's, not ours.
func makeRaw(f *os.File) (func(), error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

// followResize sends our terminal's size to the container (or exec) now
// and on every SIGWINCH, until the returned stop is called.
func followResize(ctx context.Context, c *client.Client, id string, isExec bool) func() {
	resize := func() {
		ws, err := unix.IoctlGetWinsize(int(os.Stdout.Fd()), unix.TIOCGWINSZ)
		if err != nil || ws.Row == 0 {
			return
		}
		if isExec {
			_ = c.ExecResize(ctx, id, uint(ws.Row), uint(ws.Col))
		} else {
			_ = c.ContainerResize(ctx, id, uint(ws.Row), uint(ws.Col))
		}
	}
	resize()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGWINCH)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ch:
				resize()
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
		wg.Wait()
	}
}

const defaultDetachKeys = "ctrl-p,ctrl-q"

// parseDetachKeys reads docker's key list: "ctrl-<letter>" (and ctrl-@,
// ctrl-[, ctrl-\, ctrl-], ctrl-^, ctrl-_) or single characters, comma
// separated.
func parseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		s = defaultDetachKeys
	}
	var keys []byte
	for _, k := range strings.Split(s, ",") {
		switch {
		case len(k) == 1:
			keys = append(keys, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6:
			ch := k[5]
			switch {
			case ch >= 'a' && ch <= 'z':
				keys = append(keys, ch-'a'+1)
			case ch == '@':
				keys = append(keys, 0)
			case ch >= '[' && ch <= '_':
				keys = append(keys, ch-'['+27)
			default:
				return nil, usageErr("invalid detach keys %q: unknown character %q", s, k)
			}
		default:
			return nil, usageErr("invalid detach keys %q: unknown character %q", s, k)
		}
	}
	return keys, nil
}

// escapeReader passes input through until it sees the detach sequence,
// then reports io.EOF and sets detached. Bytes of a partial match are
// held back and sent if the sequence breaks off.
type escapeReader struct {
	r        io.Reader
	keys     []byte
	matched  int
	pending  []byte
	detached bool
	mu       sync.Mutex
}

func (e *escapeReader) Read(p []byte) (int, error) {
	for {
		if len(e.pending) > 0 {
			n := copy(p, e.pending)
			e.pending = e.pending[n:]
			return n, nil
		}
		if e.isDetached() {
			return 0, io.EOF
		}
		buf := make([]byte, len(p))
		n, err := e.r.Read(buf)
		var out []byte
		for _, b := range buf[:n] {
			if b != e.keys[e.matched] && e.matched > 0 {
				// The sequence broke off: its bytes were input.
				out = append(out, e.keys[:e.matched]...)
				e.matched = 0
			}
			if b == e.keys[e.matched] {
				e.matched++
				if e.matched == len(e.keys) {
					e.mu.Lock()
					e.detached = true
					e.mu.Unlock()
					break
				}
				continue
			}
			out = append(out, b)
		}
		if err != nil && e.matched > 0 && !e.isDetached() {
			out = append(out, e.keys[:e.matched]...)
			e.matched = 0
		}
		e.pending = out
		if len(out) > 0 {
			continue
		}
		if e.isDetached() {
			return 0, io.EOF
		}
		if err != nil {
			return 0, err
		}
	}
}

func (e *escapeReader) isDetached() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.detached
}
