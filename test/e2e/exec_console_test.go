package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// A tty container is the terminal's size from its first instruction:
// HostConfig.ConsoleSize at create goes into the pty before the process
// runs, with no resize after the start to help (the API's own client
// sends none).
func TestConsoleSizeAtCreate(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	c := d.Client(t)
	ctx := context.Background()
	res, err := c.ContainerCreate(ctx, "sized", container.CreateRequest{
		Config:     &container.Config{Image: "busybox", Tty: true, Cmd: []string{"stty", "size"}},
		HostConfig: &container.HostConfig{ConsoleSize: [2]uint{33, 99}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Docker(t, "rm", "-f", res.ID) })
	if err := c.ContainerStart(ctx, res.ID); err != nil {
		t.Fatal(err)
	}
	if code := strings.TrimSpace(d.DockerOK(t, "wait", res.ID)); code != "0" {
		t.Fatalf("stty size exited %s", code)
	}
	if out := d.DockerOK(t, "logs", res.ID); strings.TrimSpace(out) != "33 99" {
		t.Fatalf("stty size in a container created with ConsoleSize [33 99]: %q", out)
	}
}

// The docker CLI on a real terminal (script(1) gives it a pty of 40x123):
// run -t and exec -t see that size.
func TestConsoleSizeDockerCLI(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("needs script(1) (util-linux) for a pty")
	}
	d := StartDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	d.DockerOK(t, "run", "-d", "--name", "box", "busybox", "sleep", "1000")
	t.Cleanup(func() { d.Docker(t, "rm", "-f", "box") })
	for _, tc := range []struct{ name, cmd string }{
		{"run", DockerCLI + " run --rm -t busybox stty size"},
		{"exec", DockerCLI + " exec -t box stty size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, d.dockerEnv(t), nil, "script", "-qec", "stty rows 40 cols 123; "+tc.cmd, "/dev/null")
			if r.Code != 0 || !strings.Contains(r.Stdout, "40 123") {
				t.Fatalf("docker %s -t stty size on a 40x123 terminal: %s", tc.name, r)
			}
		})
	}
}
