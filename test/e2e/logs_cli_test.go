package e2e

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The docker CLI reads a container's json-file log: all of it, a tail,
// one stream, with timestamps, since a time, and following until the
// container exits; max-size/max-file keep the files to the limit.
func TestLogsDockerCLI(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	d.DockerOK(t, "run", "--name", "lines", "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo out $i; done; echo oops >&2")

	r := d.Docker(t, "logs", "lines")
	if r.Code != 0 || r.Stdout != "out 1\nout 2\nout 3\nout 4\nout 5\n" || r.Stderr != "oops\n" {
		t.Fatalf("logs: %s", r)
	}
	if out := d.DockerOK(t, "logs", "--tail", "2", "lines"); out != "out 5\n" && out != "out 4\nout 5\n" {
		// The tail counts both streams: the last two entries are "out 5"
		// and "oops" unless the stderr line came first.
		t.Fatalf("--tail 2: %q", out)
	}
	ts := d.DockerOK(t, "logs", "-t", "lines")
	first := strings.SplitN(ts, "\n", 2)[0]
	stamp, rest, _ := strings.Cut(first, " ")
	if _, err := time.Parse(time.RFC3339Nano, stamp); err != nil || rest != "out 1" {
		t.Fatalf("-t: %q (%v)", first, err)
	}
	if out := d.DockerOK(t, "logs", "--since", time.Now().Add(time.Hour).Format(time.RFC3339), "lines"); out != "" {
		t.Fatalf("--since the future: %q", out)
	}

	// -f follows a running container to its end.
	d.DockerOK(t, "run", "-d", "--name", "slow", "busybox", "sh", "-c", "echo a; sleep 0.5; echo b; sleep 0.3; echo c")
	if out := d.DockerOK(t, "logs", "-f", "slow"); out != "a\nb\nc\n" {
		t.Fatalf("logs -f: %q", out)
	}

	// Rotation keeps max-file files.
	d.DockerOK(t, "run", "--name", "rot", "--log-opt", "max-size=1k", "--log-opt", "max-file=2", "busybox",
		"sh", "-c", "i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done")
	path := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.LogPath}}", "rot"))
	files, _ := filepath.Glob(path + "*")
	if len(files) != 2 {
		t.Fatalf("rotated files %v, want 2", files)
	}
	lines := strings.Split(strings.TrimSpace(d.DockerOK(t, "logs", "rot")), "\n")
	if lines[len(lines)-1] != "line 199" {
		t.Fatalf("last line %q", lines[len(lines)-1])
	}
	for i := 1; i < len(lines); i++ {
		a, _ := strconv.Atoi(strings.TrimPrefix(lines[i-1], "line "))
		b, _ := strconv.Atoi(strings.TrimPrefix(lines[i], "line "))
		if b != a+1 {
			t.Fatalf("gap between %q and %q", lines[i-1], lines[i])
		}
	}
}

// docker run without -d attaches before the start and sees all output;
// -i passes stdin; docker attach follows a running container.
func TestLogsAttachDockerCLI(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	if r := d.Docker(t, "run", "--rm", "busybox", "sh", "-c", "echo to-out; echo to-err >&2; exit 4"); r.Code != 4 || r.Stdout != "to-out\n" || r.Stderr != "to-err\n" {
		t.Fatalf("run attached: %s", r)
	}
	if r := d.DockerIn(t, []byte("via stdin\n"), "run", "--rm", "-i", "busybox", "cat"); r.Code != 0 || r.Stdout != "via stdin\n" {
		t.Fatalf("run -i: %s", r)
	}
	d.DockerOK(t, "run", "-d", "--name", "att", "busybox", "sh", "-c", "sleep 0.5; echo later")
	if r := d.Docker(t, "attach", "att"); r.Code != 0 || r.Stdout != "later\n" {
		t.Fatalf("attach: %s", r)
	}
}
