package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	containertypes "github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/testutil"
)

func globLogs(t *testing.T, path string) []string {
	t.Helper()
	m, err := filepath.Glob(path + "*")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// syncBuffer is a bytes.Buffer for one writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runningContainer(t *testing.T, e *Engine, cfg containertypes.Config) string {
	t.Helper()
	if cfg.Cmd == nil {
		cfg.Cmd = []string{"sleep", "1000"}
	}
	id := create(t, e, "", cfg, nil)
	if err := e.ContainerStart(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	return id
}

// execRun runs cmd in the container attached and returns its output and
// exit code.
func execRun(t *testing.T, e *Engine, id string, req containertypes.ExecCreateRequest, stdin io.Reader) (string, string, int, error) {
	t.Helper()
	ctx := context.Background()
	req.AttachStdout, req.AttachStderr = true, true
	req.AttachStdin = stdin != nil
	res, err := e.ExecCreate(ctx, id, req)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb syncBuffer
	err = e.ExecStart(ctx, res.ID, ExecStartOptions{Tty: req.Tty, Streams: func(tty bool) (AttachStreams, error) {
		return AttachStreams{Stdin: stdin, Stdout: &out, Stderr: &errb, Close: func() {}}, nil
	}})
	ins, ierr := e.ExecInspect(ctx, res.ID)
	if ierr != nil {
		t.Fatal(ierr)
	}
	if ins.Running || ins.ExitCode == nil {
		t.Fatalf("inspect after start: running %v exit %v", ins.Running, ins.ExitCode)
	}
	return out.String(), errb.String(), *ins.ExitCode, err
}

func TestExec(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	id := runningContainer(t, e, containertypes.Config{Hostname: "box", Env: []string{"FROM_CTR=1"}})
	for _, tc := range []struct {
		name     string
		req      containertypes.ExecCreateRequest
		stdin    string
		out, err string
		code     int
		class    error
	}{
		{name: "exit code", req: containertypes.ExecCreateRequest{Cmd: []string{"sh", "-c", "echo hi; echo oops >&2; exit 5"}}, out: "hi\n", err: "oops\n", code: 5},
		{name: "hostname and pid namespace", req: containertypes.ExecCreateRequest{Cmd: []string{"sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '"}}, out: "box\nsleep 1000 "},
		{name: "env", req: containertypes.ExecCreateRequest{Cmd: []string{"sh", "-c", "echo $FROM_CTR $EXTRA"}, Env: []string{"EXTRA=2"}}, out: "1 2\n"},
		{name: "user", req: containertypes.ExecCreateRequest{Cmd: []string{"id", "-u"}, User: "nobody"}, out: "65534\n"},
		{name: "uid:gid", req: containertypes.ExecCreateRequest{Cmd: []string{"id"}, User: "1234:5678"}, out: "uid=1234 gid=5678 groups=5678\n"},
		{name: "workdir", req: containertypes.ExecCreateRequest{Cmd: []string{"pwd"}, WorkingDir: "/etc"}, out: "/etc\n"},
		{name: "stdin", req: containertypes.ExecCreateRequest{Cmd: []string{"cat"}}, stdin: "piped\n", out: "piped\n"},
		{name: "privileged has every capability", req: containertypes.ExecCreateRequest{Cmd: []string{"sh", "-c", "grep CapEff /proc/self/status"}, Privileged: true}, out: "CapEff:\t000001ffffffffff\n"},
		// docker exec --privileged as docker 1.9 gave it: no seccomp
		// filter, while the container's masked paths stay masked (the
		// exec shares its mount namespace).
		{name: "privileged has no seccomp filter", req: containertypes.ExecCreateRequest{Cmd: []string{"sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; ls -A /sys/firmware | wc -l"}, Privileged: true}, out: "NoNewPrivs:\t0\nSeccomp:\t0\n0\n"},
		{name: "unprivileged keeps the filter", req: containertypes.ExecCreateRequest{Cmd: []string{"sh", "-c", "grep -E '^Seccomp:' /proc/self/status; ls -A /sys/firmware | wc -l"}}, out: "Seccomp:\t2\n0\n"},
		{name: "not found", req: containertypes.ExecCreateRequest{Cmd: []string{"no-such-command"}}, code: 127, class: monitor.ErrCommandNotFound},
		{name: "not executable", req: containertypes.ExecCreateRequest{Cmd: []string{"/etc/passwd"}}, code: 126, class: monitor.ErrCommandNotExecutable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in io.Reader
			if tc.stdin != "" {
				in = strings.NewReader(tc.stdin)
			}
			out, errs, code, err := execRun(t, e, id, tc.req, in)
			if tc.class != nil {
				if !errors.Is(err, tc.class) {
					t.Fatalf("err %v, want %v", err, tc.class)
				}
			} else if err != nil {
				if strings.Contains(err.Error(), "load seccomp filter: needs no_new_privs") {
					// internal/runtime loads the seccomp filter after the
					// setuid that cleared CAP_SYS_ADMIN: any non-root
					// process without no_new_privs fails (reported).
					t.Skipf("runtime bug: %v", err)
				}
				t.Fatal(err)
			}
			if tc.name == "privileged has every capability" {
				// The kernel's last capability decides the mask's width.
				if !strings.HasPrefix(out, "CapEff:\t0000") || strings.HasSuffix(out, "00000000\n") {
					t.Fatalf("privileged caps %q", out)
				}
				return
			}
			if out != tc.out || errs != tc.err || code != tc.code {
				t.Fatalf("out %q err %q code %d; want %q %q %d", out, errs, code, tc.out, tc.err, tc.code)
			}
		})
	}
}

func TestExecTty(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	id := runningContainer(t, e, containertypes.Config{})
	out, _, code, err := execRun(t, e, id, containertypes.ExecCreateRequest{Cmd: []string{"sh", "-c", "tty; stty size"}, Tty: true, ConsoleSize: &[2]uint{33, 99}}, nil)
	if err != nil || code != 0 {
		t.Fatalf("code %d err %v", code, err)
	}
	if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "33 99") {
		t.Fatalf("tty exec output %q", out)
	}
}

func TestExecRefusals(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx := context.Background()
	stopped := create(t, e, "", containertypes.Config{Cmd: []string{"true"}}, nil)
	if _, err := e.ExecCreate(ctx, stopped, containertypes.ExecCreateRequest{Cmd: []string{"true"}}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("exec in a created container: %v", err)
	}
	if _, err := e.ExecCreate(ctx, "nosuch", containertypes.ExecCreateRequest{Cmd: []string{"true"}}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("exec in a missing container: %v", err)
	}
	if _, err := e.ExecInspect(ctx, "nosuch"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("inspect of a missing exec: %v", err)
	}
	id := runningContainer(t, e, containertypes.Config{})
	res, err := e.ExecCreate(ctx, id, containertypes.ExecCreateRequest{Cmd: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ExecStart(ctx, res.ID, ExecStartOptions{Detach: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.ExecStart(ctx, res.ID, ExecStartOptions{Detach: true}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("second start: %v", err)
	}
	// Detached: the exit code arrives in inspect.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ins, err := e.ExecInspect(ctx, res.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ins.ExitCode != nil && !ins.Running {
			if *ins.ExitCode != 0 {
				t.Fatalf("exit %d", *ins.ExitCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("detached exec did not finish")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStatsAndTop(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx := context.Background()
	id := runningContainer(t, e, containertypes.Config{Cmd: []string{"sh", "-c", "sleep 1000 & sleep 1000"}})
	// The shell forks its background sleep after the start returns.
	var top containertypes.TopResponse
	for i := 0; i < 500; i++ {
		var err error
		if top, err = e.ContainerTop(ctx, id, ""); err != nil {
			t.Fatal(err)
		}
		if len(top.Processes) == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(top.Titles) == 0 || top.Titles[1] != "PID" || len(top.Processes) != 2 {
		t.Fatalf("top %+v", top)
	}
	ch, err := e.ContainerStats(ctx, id, ContainerStatsOptions{OneShot: true})
	if err != nil {
		t.Fatal(err)
	}
	s, ok := <-ch
	if !ok {
		t.Fatal("no sample")
	}
	if s.MemoryStats.Usage == 0 || s.MemoryStats.Limit == 0 || s.PidsStats.Current != 2 || s.CPUStats.CPUUsage.TotalUsage == 0 || s.CPUStats.SystemUsage == 0 || s.ID != id {
		t.Fatalf("stats %+v", s)
	}
	if !strings.Contains(strings.Join(top.Processes[len(top.Processes)-1], " "), "sleep 1000") {
		t.Fatalf("top rows %q", top.Processes)
	}
	if _, err := e.ContainerTop(ctx, id, "-o comm"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("top without PID: %v", err)
	}
}

// Attach before start sees all output; attach to a running container
// with stdin and detach keys.
func TestAttach(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx := context.Background()
	id := create(t, e, "", containertypes.Config{Cmd: []string{"sh", "-c", "echo early; echo err >&2"}}, nil)
	var out, errb syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- e.ContainerAttach(ctx, id, ContainerAttachOptions{Stdout: true, Stderr: true, Stream: true,
			Streams: func(tty bool) (AttachStreams, error) {
				return AttachStreams{Stdout: &out, Stderr: &errb, Close: func() {}}, nil
			}})
	}()
	time.Sleep(100 * time.Millisecond) // the attach registers for the next start
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("attach did not end")
	}
	if out.String() != "early\n" || errb.String() != "err\n" {
		t.Fatalf("out %q err %q", out.String(), errb.String())
	}

	// A tty container with stdin: input echoes back; ctrl-p ctrl-q detaches.
	id2 := runningContainer(t, e, containertypes.Config{Cmd: []string{"cat"}, Tty: true, OpenStdin: true})
	pr, pw := io.Pipe()
	var out2 syncBuffer
	done2 := make(chan error, 1)
	go func() {
		done2 <- e.ContainerAttach(ctx, id2, ContainerAttachOptions{Stdin: true, Stdout: true, Stream: true,
			Streams: func(tty bool) (AttachStreams, error) {
				if !tty {
					t.Error("attach of a tty container: tty false")
				}
				return AttachStreams{Stdin: pr, Stdout: &out2, Stderr: &out2, Close: func() {}}, nil
			}})
	}()
	_, _ = pw.Write([]byte("hello\n"))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out2.String(), "hello") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	_, _ = pw.Write([]byte{16, 17})
	select {
	case err := <-done2:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("detach keys did not end the attach")
	}
	if !strings.Contains(out2.String(), "hello") {
		t.Fatalf("tty output %q", out2.String())
	}
	if err := e.ContainerResize(ctx, id2, 10, 20); err != nil {
		t.Fatal(err)
	}
	ins, _ := e.ContainerInspect(ctx, id2, false)
	if !ins.State.Running {
		t.Fatal("container stopped after a detach")
	}
}

// BenchmarkExecTrue is `exec <container> true`, attached, through to its
// exit code: the engine's part of docker's 78 ms.
func BenchmarkExecTrue(b *testing.B) {
	testutil.RequireRoot(b)
	e := benchEngine(b)
	ctx := context.Background()
	res, err := e.ContainerCreate(ctx, ContainerCreateOptions{Config: &containertypes.Config{Image: "busybox", Cmd: []string{"sleep", "1000"}}})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.ContainerStart(ctx, res.ID); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		x, err := e.ExecCreate(ctx, res.ID, containertypes.ExecCreateRequest{Cmd: []string{"true"}, AttachStdout: true, AttachStderr: true})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.ExecStart(ctx, x.ID, ExecStartOptions{Streams: func(bool) (AttachStreams, error) {
			return AttachStreams{Stdout: io.Discard, Stderr: io.Discard, Close: func() {}}, nil
		}}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchEngine is ctrEngine for a benchmark.
func benchEngine(b *testing.B) *Engine {
	b.Helper()
	root := b.TempDir()
	ctx := context.Background()
	e, err := New(ctx, Config{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(testutil.Images(b).DockerArchive)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := e.ImageLoad(ctx, ImageLoadOptions{Input: f}); err != nil {
		b.Fatal(err)
	}
	parent := fmt.Sprintf("/berth-bench-%d", os.Getpid())
	if err := e.InitContainers(ctx, ContainerConfig{ExecRoot: filepath.Join(root, "run"), CgroupParent: parent}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if c, err := e.ctrs(); err == nil {
			for _, ct := range c.store.List() {
				_ = e.ContainerRemove(ctx, ct.ID(), ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			}
		}
		e.ShutdownContainers()
		e.Close()
		removeCgroupParent(parent)
	})
	return e
}

// A stats stream sends a sample a second with the previous one's CPU as
// precpu_stats (the CLI's percentages), and a stopped container zeroes.
func TestStatsStream(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	id := runningContainer(t, e, containertypes.Config{})
	ch, err := e.ContainerStats(ctx, id, ContainerStatsOptions{Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	first, second := <-ch, <-ch
	if first.PreCPUStats.SystemUsage != 0 || second.PreCPUStats.SystemUsage != first.CPUStats.SystemUsage || second.PreRead != first.Read {
		t.Fatalf("precpu of the second sample %+v, first %+v", second.PreCPUStats, first.CPUStats)
	}
	cancel()
	for range ch {
	}
	stopped := create(t, e, "", containertypes.Config{Cmd: []string{"true"}}, nil)
	ch, err = e.ContainerStats(context.Background(), stopped, ContainerStatsOptions{OneShot: true})
	if err != nil {
		t.Fatal(err)
	}
	if s := <-ch; s.MemoryStats.Usage != 0 || s.ID != stopped {
		t.Fatalf("stats of a created container %+v", s)
	}
}

// execDetached starts cmd detached in container id and returns the exec.
func execDetached(t *testing.T, e *Engine, id string, cmd ...string) string {
	t.Helper()
	ctx := context.Background()
	res, err := e.ExecCreate(ctx, id, containertypes.ExecCreateRequest{Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ExecStart(ctx, res.ID, ExecStartOptions{Detach: true}); err != nil {
		t.Fatalf("exec %q: %v", cmd, err)
	}
	return res.ID
}

// execEnd polls inspect until exec xid has ended and returns its code.
func execEnd(t *testing.T, e *Engine, xid string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ins, err := e.ExecInspect(context.Background(), xid)
		if err != nil {
			t.Fatal(err)
		}
		if !ins.Running && ins.ExitCode != nil {
			return *ins.ExitCode
		}
		if time.Now().After(deadline) {
			t.Fatalf("exec %s did not end: %+v", xid, ins)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Exec sessions outlive the engine: one that ended while no engine ran
// has its exit code, a running one its pid (and its exit once it ends),
// one never started can start, one that could not start keeps 127. A
// restart of the container drops what was created before it.
func TestExecSessionsSurviveRestart(t *testing.T) {
	testutil.RequireRoot(t)
	root := t.TempDir()
	ctx := context.Background()
	parent := fmt.Sprintf("/berth-test-execrestore-%d", os.Getpid())
	cfg := ContainerConfig{ExecRoot: filepath.Join(root, "run"), CgroupParent: parent}
	open := func() *Engine {
		e, err := New(ctx, Config{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.InitContainers(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		return e
	}
	e := open()
	loadTestImage(t, e)
	id := create(t, e, "box", containertypes.Config{Cmd: []string{"sleep", "100"}}, nil)
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	ended := execDetached(t, e, id, "sh", "-c", "sleep 0.5; exit 3")
	running := execDetached(t, e, id, "sleep", "100")
	created, err := e.ExecCreate(ctx, id, containertypes.ExecCreateRequest{Cmd: []string{"sh", "-c", "exit 5"}})
	if err != nil {
		t.Fatal(err)
	}
	notFound, err := e.ExecCreate(ctx, id, containertypes.ExecCreateRequest{Cmd: []string{"no-such-command"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ExecStart(ctx, notFound.ID, ExecStartOptions{Detach: true}); !errors.Is(err, monitor.ErrCommandNotFound) {
		t.Fatalf("exec of a missing command: %v", err)
	}
	ins, err := e.ExecInspect(ctx, running)
	if err != nil || !ins.Running || ins.Pid == 0 {
		t.Fatalf("running exec: %v %+v", err, ins)
	}
	pid := ins.Pid
	if ids := e.ExecIDs(id); !slices.Equal(ids, []string{ended, running}) {
		t.Fatalf("ExecIDs %q, want the two running ones %q", ids, []string{ended, running})
	}

	e.ShutdownContainers()
	e.Close()
	time.Sleep(900 * time.Millisecond) // ended ends meanwhile
	e = open()
	t.Cleanup(func() {
		_ = e.ContainerRemove(ctx, id, ContainerRemoveOptions{Force: true})
		e.ShutdownContainers()
		e.Close()
		removeCgroupParent(parent)
	})

	if ins, err := e.ExecInspect(ctx, ended); err != nil || ins.Running || ins.ExitCode == nil || *ins.ExitCode != 3 || ins.Pid == 0 {
		t.Fatalf("exec that ended while no engine ran: %v %+v", err, ins)
	}
	if ins, err := e.ExecInspect(ctx, notFound.ID); err != nil || ins.ExitCode == nil || *ins.ExitCode != 127 {
		t.Fatalf("exec that could not start: %v %+v", err, ins)
	}
	ins, err = e.ExecInspect(ctx, running)
	if err != nil || !ins.Running || ins.Pid != pid || ins.ExitCode != nil {
		t.Fatalf("running exec after the restart: %v %+v (pid was %d)", err, ins, pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if ids := e.ExecIDs(id); !slices.Equal(ids, []string{running}) {
		t.Fatalf("ExecIDs after the restart %q, want %q", ids, running)
	}
	if code := execEnd(t, e, running); code != 137 {
		t.Fatalf("running exec killed: exit %d", code)
	}
	if ids := e.ExecIDs(id); ids != nil {
		t.Fatalf("ExecIDs with none running: %q", ids)
	}
	if ins, _ := e.ExecInspect(ctx, created.ID); ins.Running || ins.ExitCode != nil {
		t.Fatalf("created exec after the restart: %+v", ins)
	}
	if err := e.ExecStart(ctx, created.ID, ExecStartOptions{Detach: true}); err != nil {
		t.Fatal(err)
	}
	if code := execEnd(t, e, created.ID); code != 5 {
		t.Fatalf("exec created before the restart, started after: exit %d", code)
	}

	// A container's restart ends its earlier sessions, as docker's does:
	// gone for this engine and the next, on disk too.
	stale, err := e.ExecCreate(ctx, id, containertypes.ExecCreateRequest{Cmd: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	zero := 0
	if err := e.ContainerRestart(ctx, id, ContainerStopOptions{Timeout: &zero}); err != nil {
		t.Fatal(err)
	}
	if err := e.ExecStart(ctx, stale.ID, ExecStartOptions{Detach: true}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("exec created before the container's restart: %v", err)
	}
	if _, err := e.ExecInspect(ctx, ended); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("exec of the container's earlier run: %v", err)
	}
	e.ShutdownContainers()
	e.Close()
	e = open()
	for _, x := range []string{ended, running, created.ID, stale.ID} {
		if _, err := e.ExecInspect(ctx, x); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("exec %s of an earlier run after a restart: %v", x, err)
		}
	}
	// And a removed container's.
	gone := execDetached(t, e, id, "true")
	execEnd(t, e, gone)
	if err := e.ContainerRemove(ctx, id, ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ExecInspect(ctx, gone); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("exec of a removed container: %v", err)
	}
}

// A holder that died (killed by someone): the exec it held is watched
// through its pid and ends with 255, its status being lost; the next
// exec gets a fresh holder.
func TestExecHolderKilled(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx := context.Background()
	id := runningContainer(t, e, containertypes.Config{})
	held := execDetached(t, e, id, "sleep", "100")
	s := e.execs()
	s.mu.Lock()
	h := s.shared
	s.mu.Unlock()
	if h == nil {
		t.Fatal("no holder")
	}
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-h.done
	ins, err := e.ExecInspect(ctx, held)
	if err != nil || !ins.Running {
		t.Fatalf("exec whose holder died, still running: %v %+v", err, ins)
	}
	if err := syscall.Kill(ins.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := execEnd(t, e, held); code != 255 {
		t.Fatalf("exec whose holder died: exit %d, want 255", code)
	}
	out, _, code, err := execRun(t, e, id, containertypes.ExecCreateRequest{Cmd: []string{"echo", "fresh"}}, nil)
	if err != nil || code != 0 || out != "fresh\n" {
		t.Fatalf("exec after the holder died: %q %d %v", out, code, err)
	}
}

// What a restarted daemon makes of each state an exec's directory can be
// left in (no root needed: files only).
func TestLoadExecSession(t *testing.T) {
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := container.Record{ID: "c1"}
	r.State.StartedAt = started
	rec := func(id string, created time.Time) string {
		b, _ := json.Marshal(execRecord{ID: id, ContainerID: "c1", Created: created, Config: containertypes.ExecCreateRequest{Cmd: []string{"true"}}})
		return string(b)
	}
	after := started.Add(time.Second)
	for _, tc := range []struct {
		name    string
		files   map[string]string
		err     bool
		dropped bool
		started bool
		running bool
		code    int // with !running && started
		pid     int
	}{
		{name: "no record", files: map[string]string{}, err: true},
		{name: "bad record", files: map[string]string{"exec.json": "{"}, err: true},
		{name: "another exec's record", files: map[string]string{"exec.json": rec("other", after)}, err: true},
		{name: "created before the container's start", files: map[string]string{"exec.json": rec("x1", started.Add(-time.Second))}, dropped: true},
		{name: "created, never started", files: map[string]string{"exec.json": rec("x1", after)}},
		{name: "running", files: map[string]string{"exec.json": rec("x1", after), "start.json": `{"pid":42,"holderPid":43}`, "exit": ""},
			started: true, running: true, pid: 42},
		{name: "ended", files: map[string]string{"exec.json": rec("x1", after), "start.json": `{"pid":42,"holderPid":43}`, "exit": `{"code":3}`},
			started: true, code: 3, pid: 42},
		{name: "could not start", files: map[string]string{"exec.json": rec("x1", after), "exit": `{"code":127}`}, started: true, code: 127},
		{name: "handed to a holder that never answered", files: map[string]string{"exec.json": rec("x1", after), "start.json": "", "exit": ""},
			started: true, code: 255},
		{name: "exit half written", files: map[string]string{"exec.json": rec("x1", after), "start.json": `{"pid":42,"holderPid":43}`, "exit": `{"co`},
			started: true, running: true, pid: 42},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "x1")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			for name, content := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			x, err := loadExecSession(dir, r)
			switch {
			case tc.err:
				if err == nil {
					t.Fatal("no error")
				}
				return
			case err != nil:
				t.Fatal(err)
			case tc.dropped:
				if x != nil {
					t.Fatal("kept")
				}
				return
			case x == nil:
				t.Fatal("dropped")
			}
			if x.started != tc.started || x.running != tc.running || x.pid != tc.pid {
				t.Fatalf("started %v running %v pid %d", x.started, x.running, x.pid)
			}
			ended := tc.started && !tc.running
			if ended != (x.exitCode != nil) || (ended && *x.exitCode != tc.code) {
				t.Fatalf("exit code %v, want %d", x.exitCode, tc.code)
			}
		})
	}
}

// waitForeignPid ends with its process, with ctx, and at once for a pid
// that now belongs to another process (start time differs).
func TestWaitForeignPid(t *testing.T) {
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	pid := cmd.Process.Pid
	start, err := procStartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := waitForeignPid(ctx, pid, start); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled wait: %v", err)
	}
	if err := waitForeignPid(context.Background(), pid, start+1); err != nil {
		t.Fatalf("wait on a reused pid: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- waitForeignPid(context.Background(), pid, start) }()
	_ = cmd.Process.Kill()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the wait did not end with the process")
	}
}
