package api

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDockerCLIFraming drives the real docker CLI against the API over
// the fake backend: the stream formats (multiplexed logs, hijacked attach
// and exec with the CLI's own Upgrade handshake, wait, archive) are the
// API's alone, so they are checked here apart from any engine.
func TestDockerCLIFraming(t *testing.T) {
	const docker = "/usr/local/bin/docker"
	if _, err := os.Stat(docker); err != nil {
		t.Skipf("needs the docker CLI at %s", docker)
	}
	f := newFake()
	f.logs = []LogMessage{{Stream: "stdout", Line: []byte("to stdout\n"), Time: time.Now()}, {Stream: "stderr", Line: []byte("to stderr\n"), Time: time.Now()}}
	f.waitCode = 42
	srv := New(Config{Backend: Backend{Images: f, System: f, Containers: f, Exec: f}})
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(l)
	t.Cleanup(func() { srv.StopStreams(); hs.Close() })

	run := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, docker, args...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+t.TempDir())
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.Stdin = strings.NewReader(stdin)
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Errorf("docker %v timed out: %q %q", args, out.String(), errb.String())
		}
		return out.String(), errb.String(), code
	}

	out, errs, code := run("", "logs", "web")
	if code != 0 || out != "to stdout\n" || errs != "to stderr\n" {
		t.Errorf("docker logs: %d %q %q", code, out, errs)
	}
	// attach ends with the container's exit code, from a wait.
	out, errs, code = run("", "attach", "--no-stdin", "web")
	if code != 42 || out != "no stdin\n" || errs != "err\n" {
		t.Errorf("docker attach: %d %q %q", code, out, errs)
	}
	out, errs, code = run("ping\n", "attach", "web")
	if code != 42 || out != "ping\n" {
		t.Errorf("docker attach with stdin: %d %q %q", code, out, errs)
	}
	out, errs, code = run("", "cp", "web:/f", "-")
	if code != 0 || out != "TAR" {
		t.Errorf("docker cp from: %d %q %q", code, out, errs)
	}
	_, errs, code = run("TAR", "cp", "-", "web:/dir")
	if code != 0 || !strings.Contains(strings.Join(f.Calls(), "\n"), "ContainerExtract web /dir TAR") {
		t.Errorf("docker cp to: %d %q %v", code, errs, f.Calls())
	}
	out, errs, code = run("", "exec", "web", "true")
	if code != 0 || out != "exec out\n" {
		t.Errorf("docker exec: %d %q %q", code, out, errs)
	}
	out, errs, code = run("", "wait", "web")
	if code != 0 || strings.TrimSpace(out) != "42" {
		t.Errorf("docker wait: %d %q %q", code, out, errs)
	}
	out, errs, code = run("", "top", "web")
	if code != 0 || !strings.Contains(out, "PID") {
		t.Errorf("docker top: %d %q %q", code, out, errs)
	}
	out, errs, code = run("", "diff", "web")
	if code != 0 || strings.TrimSpace(out) != "A /new" {
		t.Errorf("docker diff: %d %q %q", code, out, errs)
	}
	out, errs, code = run("", "kill", "-s", "HUP", "web")
	if code != 0 || strings.TrimSpace(out) != "web" {
		t.Errorf("docker kill: %d %q %q", code, out, errs)
	}
	f.setErr(errNoSuch)
	_, errs, code = run("", "stop", "nope")
	if code != 1 || !strings.Contains(errs, "No such container: nope") {
		t.Errorf("docker stop of a missing container: %d %q", code, errs)
	}
}
