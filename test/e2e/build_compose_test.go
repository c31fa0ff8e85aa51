package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

const composeBuildProject = `version: "3.8"
services:
  app:
    build:
      context: .
      dockerfile: app.Dockerfile
      args:
        MSG: from-compose
      labels:
        built.by: compose
    image: composebuilt:1
`

// TestBuildCompose: docker-compose (v1) builds a service's image through
// the same POST /build, with its build args and labels.
func TestBuildCompose(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("needs docker-compose (Debian's docker-compose package)")
	}
	d := StartDaemon(t, DaemonOptions{})
	d.DockerOK(t, "load", "-i", testutil.Images(t).DockerArchive)
	dir := buildDir(t, map[string]string{
		"docker-compose.yml": composeBuildProject,
		"app.Dockerfile":     "FROM busybox\nARG MSG\nRUN echo $MSG > /msg\nCMD [\"cat\", \"/msg\"]\n",
	})
	env := append(d.dockerEnv(t), "COMPOSE_PROJECT_NAME=bb")
	r := run(t, env, nil, bin, "--project-directory", dir, "-f", filepath.Join(dir, "docker-compose.yml"), "build")
	if r.Code != 0 || !strings.Contains(r.Stdout+r.Stderr, "Successfully tagged composebuilt:1") {
		t.Fatalf("docker-compose build: %s\n%s", r, d.logTail())
	}
	if got := d.DockerOK(t, "run", "--rm", "--network", "none", "composebuilt:1"); got != "from-compose\n" {
		t.Errorf("run: %q", got)
	}
	if got := d.DockerOK(t, "image", "inspect", "-f", "{{index .Config.Labels \"built.by\"}}", "composebuilt:1"); strings.TrimSpace(got) != "compose" {
		t.Errorf("label: %q", got)
	}
}
