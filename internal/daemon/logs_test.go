package daemon

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	containertypes "github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/testutil"
)

// collectLogs reads every message of a logs call.
func collectLogs(t *testing.T, e *Engine, id string, opts ContainerLogsOptions) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := e.ContainerLogs(ctx, id, opts)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range res.Messages {
		if m.Err != nil {
			t.Fatal(m.Err)
		}
		got = append(got, m.Stream+":"+string(m.Line))
	}
	return got
}

func TestLogs(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx := context.Background()
	id := create(t, e, "", containertypes.Config{Cmd: []string{"sh", "-c", "for i in 1 2 3 4 5; do echo out $i; echo err $i >&2; done"}}, nil)
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitExit(t, e, id, containertypes.WaitConditionNotRunning)
	all := collectLogs(t, e, id, ContainerLogsOptions{Stdout: true, Stderr: true})
	if len(all) != 10 {
		t.Fatalf("logs: %q", all)
	}
	for _, tc := range []struct {
		name string
		opts ContainerLogsOptions
		want string
	}{
		{"stdout only", ContainerLogsOptions{Stdout: true}, "stdout:out 1\n|stdout:out 2\n|stdout:out 3\n|stdout:out 4\n|stdout:out 5\n"},
		{"stderr only", ContainerLogsOptions{Stderr: true}, "stderr:err 1\n|stderr:err 2\n|stderr:err 3\n|stderr:err 4\n|stderr:err 5\n"},
		{"tail 0", ContainerLogsOptions{Stdout: true, Stderr: true, Tail: "0"}, ""},
		{"since the future", ContainerLogsOptions{Stdout: true, Since: time.Now().Add(time.Hour)}, ""},
		{"until the past", ContainerLogsOptions{Stdout: true, Until: time.Now().Add(-time.Hour)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(collectLogs(t, e, id, tc.opts), "|"); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	// The tail counts both streams, as it does in docker (the file's last
	// lines), whichever are then shown.
	if tail := collectLogs(t, e, id, ContainerLogsOptions{Stdout: true, Stderr: true, Tail: "3"}); len(tail) != 3 {
		t.Fatalf("tail 3: %q", tail)
	}
	if _, err := e.ContainerLogs(ctx, id, ContainerLogsOptions{}); err == nil {
		t.Fatal("logs without a stream: no error")
	}
}

// logs -f follows a running container and ends when it exits.
func TestLogsFollow(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx := context.Background()
	id := create(t, e, "", containertypes.Config{Cmd: []string{"sh", "-c", "echo first; sleep 0.5; echo second; sleep 0.2; echo third"}}, nil)
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	got := collectLogs(t, e, id, ContainerLogsOptions{Stdout: true, Follow: true})
	if strings.Join(got, "") != "stdout:first\nstdout:second\nstdout:third\n" {
		t.Fatalf("followed %q", got)
	}
}

// Rotation keeps max-file files, and logs reads across them.
func TestLogsRotation(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx := context.Background()
	host := &containertypes.HostConfig{LogConfig: containertypes.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "2k", "max-file": "3"}}}
	id := create(t, e, "", containertypes.Config{Cmd: []string{"sh", "-c", "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done"}}, host)
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitExit(t, e, id, containertypes.WaitConditionNotRunning)
	ins, err := e.ContainerInspect(ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	files := globLogs(t, ins.LogPath)
	if len(files) != 3 {
		t.Fatalf("log files %v, want 3", files)
	}
	got := collectLogs(t, e, id, ContainerLogsOptions{Stdout: true})
	if len(got) == 0 || got[len(got)-1] != "stdout:line 299\n" || len(got) >= 300 {
		t.Fatalf("%d lines, last %q", len(got), got[len(got)-1])
	}
	tail := collectLogs(t, e, id, ContainerLogsOptions{Stdout: true, Tail: "3"})
	if strings.Join(tail, "") != "stdout:line 297\nstdout:line 298\nstdout:line 299\n" {
		t.Fatalf("tail %q", tail)
	}
}

// The daemon goes while a container writes: its monitor keeps logging, so
// after a restart the log has every line, and logs -f, exec, stats and
// attach work on the container found again.
func TestLogsAcrossDaemonRestart(t *testing.T) {
	testutil.RequireRoot(t)
	root := t.TempDir()
	ctx := context.Background()
	parent := "/berth-test-logs-restore"
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
	id := create(t, e, "", containertypes.Config{Cmd: []string{"sh", "-c", "i=0; while [ $i -lt 150 ]; do echo $i; i=$((i+1)); sleep 0.01; done; read x; exit 6"}, OpenStdin: true}, nil)
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	e.ShutdownContainers()
	e.Close()
	time.Sleep(500 * time.Millisecond)
	e = open()
	t.Cleanup(func() {
		_ = e.ContainerRemove(ctx, id, ContainerRemoveOptions{Force: true})
		e.ShutdownContainers()
		e.Close()
		removeCgroupParent(parent)
	})
	if out, _, code, err := execRun(t, e, id, containertypes.ExecCreateRequest{Cmd: []string{"echo", "exec ok"}}, nil); err != nil || code != 0 || out != "exec ok\n" {
		t.Fatalf("exec after restore: %q %d %v", out, code, err)
	}
	ch, err := e.ContainerStats(ctx, id, ContainerStatsOptions{OneShot: true})
	if err != nil {
		t.Fatal(err)
	}
	if s := <-ch; s.MemoryStats.Usage == 0 {
		t.Fatalf("stats after restore: %+v", s.MemoryStats)
	}
	// Attach with stdin ends the container's read; the attach ends with it.
	var out syncBuffer
	err = e.ContainerAttach(ctx, id, ContainerAttachOptions{Stdin: true, Stdout: true, Stream: true,
		Streams: func(bool) (AttachStreams, error) {
			return AttachStreams{Stdin: strings.NewReader("go\n"), Stdout: &out, Close: func() {}}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, e, id, containertypes.WaitConditionNotRunning); code != 6 {
		t.Fatalf("exit %d, want 6", code)
	}
	got := collectLogs(t, e, id, ContainerLogsOptions{Stdout: true, Follow: true})
	if len(got) != 150 {
		t.Fatalf("%d lines after the restart, want 150", len(got))
	}
	for i, l := range got {
		if l != "stdout:"+strconv.Itoa(i)+"\n" {
			t.Fatalf("line %d is %q: a gap", i, l)
		}
	}
}
