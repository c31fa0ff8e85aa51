package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/logfile"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// The test binary is both the monitor and the container's init.
func init() {
	if runtime.IsInit() {
		runtime.Init()
	}
	if IsMonitor() {
		Main()
	}
}

type env struct {
	cfg Config
}

var idSeq int

// newEnv makes a bundle running args (with edits) and a Config for it in
// a temp dir.
func newEnv(t *testing.T, args []string, edit func(*specs.Spec)) *env {
	t.Helper()
	img := testutil.Images(t)
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	if err := os.Mkdir(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", img.Rootfs, filepath.Join(bundle, "rootfs")).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v: %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(img.Bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	s.Process.Args = args
	if edit != nil {
		edit(&s)
	}
	b, _ = json.Marshal(&s)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	idSeq++
	return &env{cfg: Config{
		ID:          "mon-test-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + string(rune('a'+idSeq%26)),
		Bundle:      bundle,
		RuntimeRoot: filepath.Join(dir, "runtime"),
		StateDir:    filepath.Join(dir, "state"),
		LogPath:     filepath.Join(dir, "c.log"),
		LogMaxSize:  logfile.DefaultMaxSize,
		LogMaxFiles: logfile.DefaultMaxFiles,
	}}
}

func (e *env) start(t *testing.T) *Handle {
	t.Helper()
	h, err := Start(context.Background(), e.cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { e.kill(t, h) })
	return h
}

// kill ends the container if it still runs and waits for the monitor to
// finish its cleanup.
func (e *env) kill(t *testing.T, h *Handle) { killAndWait(t, e.cfg, h) }

func killAndWait(tb testing.TB, cfg Config, h *Handle) {
	rt, err := runtime.New(cfg.RuntimeRoot)
	if err != nil {
		return
	}
	if c, err := rt.Load(context.Background(), cfg.ID); err == nil {
		_ = c.Kill(context.Background(), unix.SIGKILL, true)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = h.Wait(ctx)
	// The monitor removes its socket last: wait for it to be gone.
	for i := 0; i < 500; i++ {
		if _, err := Connect(ctx, cfg.StateDir); errors.Is(err, errdefs.ErrNotFound) {
			if _, err := os.Stat(filepath.Join(cfg.RuntimeRoot, cfg.ID)); errors.Is(err, os.ErrNotExist) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Errorf("monitor of %s did not finish", cfg.ID)
}

func (e *env) logs(t *testing.T) []string {
	t.Helper()
	var got []string
	err := logfile.Read(context.Background(), e.cfg.LogPath, logfile.ReadOptions{Tail: -1}, func(en logfile.Entry) error {
		got = append(got, en.Stream+":"+string(en.Line))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func wait(t *testing.T, h *Handle) Exit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ex, err := h.Wait(ctx)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	return ex
}

func TestRunLogsAndExitCode(t *testing.T) {
	testutil.RequireRoot(t)
	e := newEnv(t, []string{"/bin/sh", "-c", "echo out; echo err >&2; printf partial; exit 3"}, nil)
	h := e.start(t)
	if h.Pid() <= 0 {
		t.Fatalf("pid %d", h.Pid())
	}
	ex := wait(t, h)
	if ex.Code != 3 || ex.Signal != "" || ex.OOMKilled || ex.At.IsZero() {
		t.Fatalf("exit %+v, want code 3", ex)
	}
	e.kill(t, h)
	got := e.logs(t)
	want := []string{"stdout:out\n", "stderr:err\n", "stdout:partial"}
	if strings.Join(sorted(got), "|") != strings.Join(sorted(want), "|") {
		t.Fatalf("logs %q, want %q", got, want)
	}
	// The exit status stays readable after the monitor is gone.
	if ex2, err := ReadExit(e.cfg.StateDir); err != nil || ex2.Code != 3 {
		t.Fatalf("ReadExit: %+v, %v", ex2, err)
	}
	if ex3 := wait(t, h); ex3.Code != 3 {
		t.Fatalf("Wait after the monitor went: %+v", ex3)
	}
}

func sorted(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

func TestSignalExit(t *testing.T) {
	testutil.RequireRoot(t)
	e := newEnv(t, []string{"/bin/sleep", "100"}, nil)
	h := e.start(t)
	rt, _ := runtime.New(e.cfg.RuntimeRoot)
	c, err := rt.Load(context.Background(), e.cfg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(context.Background(), unix.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if ex := wait(t, h); ex.Code != 137 || ex.Signal != "SIGKILL" {
		t.Fatalf("exit %+v, want 137 SIGKILL", ex)
	}
}

func TestCommandNotFound(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tc := range []struct {
		name string
		args []string
		want error
	}{
		{"not in PATH", []string{"no-such-command"}, ErrCommandNotFound},
		{"no such path", []string{"/no/such/file"}, ErrCommandNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.args, nil)
			_, err := Start(context.Background(), e.cfg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			// Nothing is left: no runtime state, no monitor.
			if _, err := os.Stat(filepath.Join(e.cfg.RuntimeRoot, e.cfg.ID)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("runtime state left: %v", err)
			}
			if _, err := Connect(context.Background(), e.cfg.StateDir); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("connect: %v", err)
			}
		})
	}
}

func TestBadConfig(t *testing.T) {
	if _, err := Start(context.Background(), Config{ID: "x"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("err %v", err)
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Attach in Created sees every byte; stdin reaches the container and its
// end closes the container's stdin (StdinOnce).
func TestAttachStdinOnce(t *testing.T) {
	testutil.RequireRoot(t)
	e := newEnv(t, []string{"/bin/sh", "-c", "echo start; cat; echo done >&2"}, nil)
	e.cfg.OpenStdin, e.cfg.StdinOnce = true, true
	var out, errb lockedBuffer
	attached := make(chan error, 1)
	e.cfg.Created = func(h *Handle) error {
		go func() {
			attached <- h.Attach(context.Background(), AttachOptions{
				Stdin: strings.NewReader("hello\n"), Stdout: &out, Stderr: &errb,
			})
		}()
		// Attach registers before the start goes on: wait for the socket
		// to hold it.
		time.Sleep(50 * time.Millisecond)
		return nil
	}
	h := e.start(t)
	if ex := wait(t, h); ex.Code != 0 {
		t.Fatalf("exit %+v", ex)
	}
	select {
	case err := <-attached:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("attach did not end with the container")
	}
	if out.String() != "start\nhello\n" || errb.String() != "done\n" {
		t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
	}
}

func TestTtyAttachResizeDetach(t *testing.T) {
	testutil.RequireRoot(t)
	e := newEnv(t, []string{"/bin/sh", "-c", "stty size; read x; echo got $x; stty size; sleep 100"}, func(s *specs.Spec) {
		s.Process.Terminal = true
	})
	e.cfg.Tty, e.cfg.OpenStdin = true, true
	e.cfg.ConsoleSize = [2]uint{30, 100}
	h := e.start(t)
	if !h.Tty() {
		t.Fatal("handle says no tty")
	}
	pr, pw := io.Pipe()
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- h.Attach(context.Background(), AttachOptions{Stdin: pr, Stdout: &out, DetachKeys: []byte{16, 17}})
	}()
	waitFor(t, func() bool { return strings.Contains(e.logString(t), "30 100") })
	if err := h.Resize(context.Background(), 40, 120); err != nil {
		t.Fatal(err)
	}
	pw.Write([]byte("abc\n"))
	waitFor(t, func() bool { return strings.Contains(out.String(), "40 120") })
	if !strings.Contains(out.String(), "got abc") {
		t.Fatalf("output %q", out.String())
	}
	pw.Write([]byte{16, 17}) // ctrl-p ctrl-q
	select {
	case err := <-done:
		if !errors.Is(err, ErrDetached) {
			t.Fatalf("attach ended with %v, want ErrDetached", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("detach keys did not end the attach")
	}
	// Still running after the detach.
	if _, err := Connect(context.Background(), e.cfg.StateDir); err != nil {
		t.Fatal(err)
	}
}

func (e *env) logString(t *testing.T) string {
	return strings.Join(e.logs(t), "")
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met in 10s")
}

// The daemon's handle can go (the daemon killed): the monitor carries on,
// keeps logging, and a new Connect gets the real exit status.
func TestConnectAgain(t *testing.T) {
	testutil.RequireRoot(t)
	e := newEnv(t, []string{"/bin/sh", "-c", "i=0; while [ $i -lt 30 ]; do echo line $i; i=$((i+1)); sleep 0.01; done; exit 7"}, nil)
	h := e.start(t)
	pid := h.Pid()
	h.Close()
	h2, err := Connect(context.Background(), e.cfg.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	if h2.Pid() != pid {
		t.Fatalf("pid %d after connect, want %d", h2.Pid(), pid)
	}
	if ex := wait(t, h2); ex.Code != 7 {
		t.Fatalf("exit %+v", ex)
	}
	e.kill(t, h2)
	got := e.logs(t)
	if len(got) != 30 {
		t.Fatalf("%d log lines, want 30: %q", len(got), got)
	}
	for i, l := range got {
		if want := "stdout:line " + strconv.Itoa(i) + "\n"; l != want {
			t.Fatalf("line %d: %q, want %q", i, l, want)
		}
	}
	if _, err := Connect(context.Background(), e.cfg.StateDir); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("connect after exit: %v", err)
	}
}

func TestParseDetachKeys(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
		ok   bool
	}{
		{"", []byte{16, 17}, true},
		{"ctrl-p,ctrl-q", []byte{16, 17}, true},
		{"ctrl-a,x", []byte{1, 'x'}, true},
		{"ctrl-@,ctrl-_", []byte{0, 31}, true},
		{"ctrl-", nil, false},
		{"shift-a", nil, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDetachKeys(tc.in)
			if (err == nil) != tc.ok || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
}

// A container that ends while nobody holds a handle leaves its status;
// the same container starts again at once after Wait returns.
func TestExitWhileAwayAndRestart(t *testing.T) {
	testutil.RequireRoot(t)
	e := newEnv(t, []string{"/bin/sh", "-c", "echo run; exit 9"}, nil)
	h, err := Start(context.Background(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.Close() // the daemon goes away
	waitFor(t, func() bool {
		_, err := Connect(context.Background(), e.cfg.StateDir)
		return errors.Is(err, errdefs.ErrNotFound)
	})
	ex, err := ReadExit(e.cfg.StateDir)
	if err != nil || ex.Code != 9 {
		t.Fatalf("exit while away: %+v %v", ex, err)
	}
	for i := range 3 {
		h := e.start(t)
		if ex := wait(t, h); ex.Code != 9 {
			t.Fatalf("run %d: %+v", i, ex)
		}
	}
	if got := e.logs(t); len(got) != 4 {
		t.Fatalf("logs of 4 runs: %q", got)
	}
}

// Stdin the container does not read yet waits in the monitor without
// stopping it: it still answers, and every byte arrives in the end.
func TestAttachLargeStdin(t *testing.T) {
	testutil.RequireRoot(t)
	e := newEnv(t, []string{"/bin/sh", "-c", "sleep 0.5; wc -c"}, nil)
	e.cfg.OpenStdin, e.cfg.StdinOnce = true, true
	h := e.start(t)
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- h.Attach(context.Background(), AttachOptions{Stdin: bytes.NewReader(make([]byte, 1<<20)), Stdout: &out})
	}()
	time.Sleep(100 * time.Millisecond)
	// The container reads nothing yet; the monitor still answers.
	if _, err := Connect(context.Background(), e.cfg.StateDir); err != nil {
		t.Fatalf("connect while stdin is backed up: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("attach did not end")
	}
	if strings.TrimSpace(out.String()) != "1048576" {
		t.Fatalf("container read %q bytes, want 1048576", out.String())
	}
	if ex := wait(t, h); ex.Code != 0 {
		t.Fatalf("exit %+v", ex)
	}
}

// The Go monitor that holds the container itself (no C holder: a build
// without cgo, or BERTH_MONITOR_GO=1) does the same job.
func TestGoMonitorHolds(t *testing.T) {
	testutil.RequireRoot(t)
	t.Setenv("BERTH_MONITOR_GO", "1")
	e := newEnv(t, []string{"/bin/sh", "-c", "read x; echo got $x; exit 5"}, nil)
	e.cfg.OpenStdin, e.cfg.StdinOnce = true, true
	h := e.start(t)
	var out lockedBuffer
	if err := h.Attach(context.Background(), AttachOptions{Stdin: strings.NewReader("hi\n"), Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if ex := wait(t, h); ex.Code != 5 || out.String() != "got hi\n" {
		t.Fatalf("exit %+v output %q", ex, out.String())
	}
	e.kill(t, h)
	if got := e.logs(t); len(got) != 1 || got[0] != "stdout:got hi\n" {
		t.Fatalf("logs %q", got)
	}
}
