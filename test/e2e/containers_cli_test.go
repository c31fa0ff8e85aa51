package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDockerCLIContainers is a docker CLI session over the container
// verbs, asserting outputs and exit codes as a user sees them.
func TestDockerCLIContainers(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	t.Cleanup(func() {
		if ids := strings.Fields(d.DockerOK(t, "ps", "-aq")); len(ids) > 0 {
			d.DockerOK(t, append([]string{"rm", "-f"}, ids...)...)
		}
	})
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	expect := func(r Result, code int, out string) {
		t.Helper()
		if r.Code != code || !strings.Contains(r.Stdout+r.Stderr, out) {
			t.Fatalf("want exit %d and %q, got %s", code, out, r)
		}
	}

	// run, attached and detached; exit codes as docker's.
	expect(d.Docker(t, "run", "--rm", "busybox", "echo", "hello"), 0, "hello")
	expect(d.Docker(t, "run", "--rm", "busybox", "sh", "-c", "exit 3"), 3, "")
	expect(d.Docker(t, "run", "--rm", "busybox", "nosuchcmd"), 127, "executable file not found")
	id := strings.TrimSpace(d.DockerOK(t, "run", "-d", "--name", "web", "-l", "app=x", "-e", "FOO=bar", "-w", "/tmp", "busybox", "sleep", "1000"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}
	expect(d.Docker(t, "run", "-d", "--name", "web", "busybox", "true"), 125, "is already in use")
	expect(d.Docker(t, "ps", "--format", "{{.Names}} {{.Status}}"), 0, "web Up")
	expect(d.Docker(t, "ps", "-q", "--no-trunc"), 0, id)
	expect(d.Docker(t, "ps", "--filter", "label=app=x", "--format", "{{.Names}}"), 0, "web")
	expect(d.Docker(t, "inspect", "-f", "{{.State.Running}} {{.Config.WorkingDir}} {{.Name}} {{index .Config.Labels \"app\"}}", "web"), 0, "true /tmp /web x")

	// create, then start attached.
	d.DockerOK(t, "create", "--name", "c1", "busybox", "echo", "hi")
	expect(d.Docker(t, "ps", "-a", "--filter", "status=created", "--format", "{{.Names}}"), 0, "c1")
	expect(d.Docker(t, "start", "-a", "c1"), 0, "hi")
	expect(d.Docker(t, "wait", "c1"), 0, "0")
	expect(d.Docker(t, "ps", "-a", "--filter", "exited=0", "--format", "{{.Names}} {{.Status}}"), 0, "c1 Exited (0)")

	// pause, rename, update.
	d.DockerOK(t, "pause", "web")
	expect(d.Docker(t, "ps", "--filter", "status=paused", "--format", "{{.Names}}"), 0, "web")
	expect(d.Docker(t, "pause", "web"), 1, "already paused")
	d.DockerOK(t, "unpause", "web")
	d.DockerOK(t, "rename", "web", "web2")
	expect(d.Docker(t, "inspect", "web"), 1, "No such object: web")
	d.DockerOK(t, "update", "--memory", "32m", "--memory-swap", "64m", "--restart", "on-failure:3", "web2")
	expect(d.Docker(t, "inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}}", "web2"), 0, "33554432 on-failure")

	// files: cp both ways, diff, export, commit.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in.txt"), []byte("from host\n"), 0o644)
	d.DockerOK(t, "cp", filepath.Join(dir, "in.txt"), "web2:/tmp/")
	d.DockerOK(t, "cp", "web2:/tmp/in.txt", filepath.Join(dir, "back.txt"))
	if b, _ := os.ReadFile(filepath.Join(dir, "back.txt")); string(b) != "from host\n" {
		t.Fatalf("cp round trip: %q", b)
	}
	expect(d.Docker(t, "cp", "web2:/nope", dir), 1, "Could not find the file /nope")
	expect(d.Docker(t, "diff", "web2"), 0, "A /tmp/in.txt")
	exp := d.DockerOK(t, "export", "web2")
	if !strings.Contains(exp, "bin/busybox") {
		t.Fatal("export lacks bin/busybox")
	}
	d.DockerOK(t, "commit", "-c", `CMD ["cat", "/tmp/in.txt"]`, "web2", "snap:1")
	expect(d.Docker(t, "run", "--rm", "snap:1"), 0, "from host")
	expect(d.Docker(t, "rmi", "busybox"), 1, "")
	expect(d.Docker(t, "port", "web2"), 0, "")

	// stop, start, restart, kill, rm.
	start := time.Now()
	d.DockerOK(t, "stop", "-t", "1", "web2")
	if time.Since(start) > 8*time.Second {
		t.Fatal("stop -t 1 took too long")
	}
	expect(d.Docker(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "web2"), 0, "exited 137")
	d.DockerOK(t, "start", "web2")
	d.DockerOK(t, "restart", "-t", "0", "web2")
	expect(d.Docker(t, "inspect", "-f", "{{.State.Status}}", "web2"), 0, "running")
	expect(d.Docker(t, "rm", "web2"), 1, "stop the container before removing or force remove")
	d.DockerOK(t, "kill", "web2")
	expect(d.Docker(t, "wait", "web2"), 0, "137")
	expect(d.Docker(t, "kill", "web2"), 1, "is not running")
	d.DockerOK(t, "rm", "web2")

	// --restart on-failure:2 gives up after two restarts.
	d.DockerOK(t, "run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1")
	deadline := time.Now().Add(15 * time.Second)
	for {
		out := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "flaky"))
		if out == "2 exited" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flaky: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// prune removes the stopped ones.
	expect(d.Docker(t, "container", "prune", "-f"), 0, "Total reclaimed space")
	if out := strings.TrimSpace(d.DockerOK(t, "ps", "-aq")); out != "" {
		t.Fatalf("after prune: %q", out)
	}

	// events: every step was published.
	ev := d.DockerOK(t, "events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "type=container", "--format", "{{.Action}}")
	for _, a := range []string{"create", "start", "die", "destroy", "pause", "unpause", "rename", "update", "kill", "stop", "restart", "commit", "export"} {
		if !strings.Contains(ev, a+"\n") && !strings.Contains(ev, a+":") {
			t.Errorf("no %s event in:\n%s", a, ev)
		}
	}
}
