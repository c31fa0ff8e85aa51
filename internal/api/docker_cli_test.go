package api

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const dockerCLIPath = "/usr/local/bin/docker"

// serveUnix serves the API over f on a unix socket for the test's life.
func serveUnix(t *testing.T, f *fakeBackend) string {
	t.Helper()
	srv := New(Config{Backend: Backend{Images: f, System: f, Containers: f, Exec: f}})
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(l)
	t.Cleanup(func() { srv.StopStreams(); hs.Close() })
	return sock
}

// dockerCLI runs the docker CLI against sock with stdin.
func dockerCLI(t *testing.T, sock, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerCLIPath, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Stdin = strings.NewReader(stdin)
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Errorf("docker %v timed out: %q %q", args, out.String(), errb.String())
	}
	return out.String(), errb.String(), code
}

// TestDockerCLIFraming drives the real docker CLI against the API over
// the fake backend: the stream formats (multiplexed and raw logs,
// hijacked attach and exec with the CLI's own Upgrade handshake, wait,
// archive) are the API's alone, so they are checked here apart from any
// engine.
func TestDockerCLIFraming(t *testing.T) {
	if _, err := os.Stat(dockerCLIPath); err != nil {
		t.Skipf("needs the docker CLI at %s", dockerCLIPath)
	}
	logs := []LogMessage{{Stream: "stdout", Line: []byte("to stdout\n"), Time: time.Now()}, {Stream: "stderr", Line: []byte("to stderr\n"), Time: time.Now()}}
	f := newFake()
	f.logs, f.waitCode = logs, 42
	sock := serveUnix(t, f)
	// A container with a tty: its output is one raw stream.
	tf := newFake()
	tf.logs, tf.tty, tf.execCode = logs, true, 3
	ttySock := serveUnix(t, tf)

	out, errs, code := dockerCLI(t, ttySock, "", "logs", "web")
	if code != 0 || out != "to stdout\nto stderr\n" || errs != "" {
		t.Errorf("docker logs of a tty container: %d %q %q", code, out, errs)
	}
	out, errs, code = dockerCLI(t, sock, "", "logs", "web")
	if code != 0 || out != "to stdout\n" || errs != "to stderr\n" {
		t.Errorf("docker logs: %d %q %q", code, out, errs)
	}
	// attach ends with the container's exit code, from a wait.
	out, errs, code = dockerCLI(t, sock, "", "attach", "--no-stdin", "web")
	if code != 42 || out != "no stdin\n" || errs != "err\n" {
		t.Errorf("docker attach: %d %q %q", code, out, errs)
	}
	out, errs, code = dockerCLI(t, sock, "ping\n", "attach", "web")
	if code != 42 || out != "ping\n" {
		t.Errorf("docker attach with stdin: %d %q %q", code, out, errs)
	}
	out, errs, code = dockerCLI(t, sock, "", "cp", "web:/f", "-")
	if code != 0 || out != "TAR" {
		t.Errorf("docker cp from: %d %q %q", code, out, errs)
	}
	_, errs, code = dockerCLI(t, sock, "TAR", "cp", "-", "web:/dir")
	if code != 0 || !strings.Contains(strings.Join(f.Calls(), "\n"), "ContainerExtract web /dir TAR") {
		t.Errorf("docker cp to: %d %q %v", code, errs, f.Calls())
	}
	out, errs, code = dockerCLI(t, sock, "", "exec", "web", "true")
	if code != 0 || out != "exec out\n" {
		t.Errorf("docker exec: %d %q %q", code, out, errs)
	}
	// With a tty the output is raw; the exit code is the exec's.
	out, errs, code = dockerCLI(t, ttySock, "", "exec", "-t", "web", "false")
	if code != 3 || out != "exec out\n" {
		t.Errorf("docker exec -t: %d %q %q", code, out, errs)
	}
	out, errs, code = dockerCLI(t, sock, "", "stats", "--no-stream", "--format", "{{.Name}}", "web")
	if code != 0 || strings.TrimSpace(out) != "web" {
		t.Errorf("docker stats --no-stream: %d %q %q", code, out, errs)
	}
	out, errs, code = dockerCLI(t, sock, "", "wait", "web")
	if code != 0 || strings.TrimSpace(out) != "42" {
		t.Errorf("docker wait: %d %q %q", code, out, errs)
	}
	out, errs, code = dockerCLI(t, sock, "", "top", "web")
	if code != 0 || !strings.Contains(out, "PID") {
		t.Errorf("docker top: %d %q %q", code, out, errs)
	}
	out, errs, code = dockerCLI(t, sock, "", "diff", "web")
	if code != 0 || strings.TrimSpace(out) != "A /new" {
		t.Errorf("docker diff: %d %q %q", code, out, errs)
	}
	out, errs, code = dockerCLI(t, sock, "", "kill", "-s", "HUP", "web")
	if code != 0 || strings.TrimSpace(out) != "web" {
		t.Errorf("docker kill: %d %q %q", code, out, errs)
	}
	f.setErr(errNoSuch)
	_, errs, code = dockerCLI(t, sock, "", "stop", "nope")
	if code != 1 || !strings.Contains(errs, "No such container: nope") {
		t.Errorf("docker stop of a missing container: %d %q", code, errs)
	}
}
