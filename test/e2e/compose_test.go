package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// composeProject has two services on a network of the project's own: web
// serves a named volume's file on a published port; client finds web by
// its service name and reads the same volume.
const composeProject = `version: "3.8"
services:
  web:
    image: busybox:latest
    command: ["sh", "-c", "echo hello from compose > /www/index.html && exec httpd -f -p 80 -h /www"]
    volumes: ["www:/www"]
    ports: ["127.0.0.1:%d:80"]
    networks: [back]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
      interval: 1s
  client:
    image: busybox:latest
    command: ["sleep", "300"]
    depends_on: [web]
    environment: {FOO: bar}
    volumes: ["www:/shared:ro"]
    networks: [back]
volumes:
  www: {}
networks:
  back: {}
`

// TestComposeSession drives docker-compose (v1, Debian's docker-compose,
// a docker-py client) through a project's life: up, ps, exec, logs, run,
// restart, stop, down -v; then nothing of the project may remain.
func TestComposeSession(t *testing.T) {
	testutil.RequireRoot(t)
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("needs docker-compose (Debian's docker-compose package)")
	}
	d, _ := netDaemon(t, DaemonOptions{})
	d.DockerOK(t, "load", "-i", testutil.Images(t).DockerArchive)
	dir := t.TempDir()
	port := freePort(t)
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(fmt.Sprintf(composeProject, port)), 0o644); err != nil {
		t.Fatal(err)
	}
	compose := func(args ...string) Result {
		t.Helper()
		// compose's default for run and exec: it hands them to the docker
		// CLI (COMPOSE_INTERACTIVE_NO_CLI unset).
		env := append(d.dockerEnv(t), "COMPOSE_PROJECT_NAME=bp")
		return run(t, env, nil, bin, append([]string{"--project-directory", dir, "-f", filepath.Join(dir, "docker-compose.yml")}, args...)...)
	}
	ok := func(args ...string) string {
		t.Helper()
		r := compose(args...)
		if r.Code != 0 {
			t.Fatalf("docker-compose %s: %s\ndaemon log:\n%s", strings.Join(args, " "), r, d.logTail())
		}
		return r.Stdout
	}
	t.Cleanup(func() { compose("down", "-v", "--timeout", "1") })

	ok("up", "-d")
	ps := ok("ps")
	for _, want := range []string{"bp_web_1", "bp_client_1", "Up"} {
		if !strings.Contains(ps, want) {
			t.Errorf("compose ps lacks %q:\n%s", want, ps)
		}
	}
	if got := httpGet(t, d, "bp_web_1", fmt.Sprintf("http://127.0.0.1:%d/", port)); got != "hello from compose\n" {
		t.Errorf("published port: %q", got)
	}
	// Service names resolve on the project's network; the volume is shared.
	if out := ok("exec", "-T", "client", "wget", "-q", "-O", "-", "http://web/"); out != "hello from compose\n" {
		t.Errorf("client → web by name: %q", out)
	}
	if out := ok("exec", "-T", "client", "cat", "/shared/index.html"); out != "hello from compose\n" {
		t.Errorf("shared volume: %q", out)
	}
	if out := ok("exec", "-T", "client", "sh", "-c", "echo $FOO"); out != "bar\n" {
		t.Errorf("environment: %q", out)
	}
	if out := ok("run", "--rm", "-T", "client", "sh", "-c", "echo one-off; exit 0"); !strings.Contains(out, "one-off") {
		t.Errorf("run --rm: %q", out)
	}
	// Healthy within a few intervals.
	deadline := time.Now().Add(10 * time.Second)
	for d.DockerOK(t, "inspect", "-f", "{{.State.Health.Status}}", "bp_web_1") != "healthy\n" {
		if time.Now().After(deadline) {
			t.Fatalf("web not healthy: %s", d.DockerOK(t, "inspect", "-f", "{{json .State.Health}}", "bp_web_1"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	ok("restart", "--timeout", "1", "web")
	if got := httpGet(t, d, "bp_web_1", fmt.Sprintf("http://127.0.0.1:%d/", port)); got != "hello from compose\n" {
		t.Errorf("after restart: %q", got)
	}
	ok("stop", "--timeout", "1")
	if ps := ok("ps"); strings.Contains(ps, " Up ") {
		t.Errorf("after stop:\n%s", ps)
	}
	ok("down", "-v", "--timeout", "1")
	for _, what := range [][]string{{"ps", "-aq"}, {"volume", "ls", "-q"}, {"network", "ls", "-q", "--filter", "name=bp_"}} {
		if out := d.DockerOK(t, what...); strings.TrimSpace(out) != "" {
			t.Errorf("after down -v, docker %s: %q", strings.Join(what, " "), out)
		}
	}
}
