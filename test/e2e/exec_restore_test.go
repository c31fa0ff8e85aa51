package e2e

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/client"
)

// execDetached creates and starts cmd detached in container ref.
func execDetached(t *testing.T, c *client.Client, ref string, cmd ...string) string {
	t.Helper()
	ctx := context.Background()
	res, err := c.ExecCreate(ctx, ref, container.ExecCreateRequest{Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ExecStartDetached(ctx, res.ID); err != nil {
		t.Fatal(err)
	}
	return res.ID
}

// execEnded polls GET /exec/{id}/json until the exec has ended.
func execEnded(t *testing.T, c *client.Client, id string) container.ExecInspectResponse {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ins, err := c.ExecInspect(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !ins.Running && ins.ExitCode != nil {
			return ins
		}
		if time.Now().After(deadline) {
			t.Fatalf("exec %s did not end: %+v", id, ins)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The daemon killed with -9 while execs run: the one that ends while no
// daemon is there has its exit code through the API of the next daemon,
// the one still running is Running with its pid and its exit is learned
// when it ends, as docker's containerd keeps them.
func TestExecSurvivesDaemonKill(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	d.DockerOK(t, "run", "-d", "--name", "box", "busybox", "sleep", "1000")
	c := d.Client(t)
	ctx := context.Background()
	ends := execDetached(t, c, "box", "sh", "-c", "sleep 1; exit 3")
	runs := execDetached(t, c, "box", "sleep", "1000")
	ins, err := c.ExecInspect(ctx, runs)
	if err != nil || !ins.Running || ins.Pid == 0 {
		t.Fatalf("running exec: %v %+v", err, ins)
	}
	pid := ins.Pid

	killDaemon(t, d)
	d2 := StartDaemon(t, DaemonOptions{Root: d.Root, ExecRoot: d.ExecRoot})
	t.Cleanup(func() { d2.Docker(t, "rm", "-f", "box") })
	c2 := d2.Client(t)

	ins, err = c2.ExecInspect(ctx, runs)
	if err != nil || !ins.Running || ins.Pid != pid || ins.ExitCode != nil {
		t.Fatalf("running exec after the daemon's restart: %v %+v (pid was %d)", err, ins, pid)
	}
	if got := execEnded(t, c2, ends); *got.ExitCode != 3 {
		t.Fatalf("exec that ended while the daemon was away: exit %d", *got.ExitCode)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := execEnded(t, c2, runs); *got.ExitCode != 143 {
		t.Fatalf("running exec ended by SIGTERM after the restart: exit %d", *got.ExitCode)
	}
	// The docker CLI's exec works through the new daemon as before.
	if r := d2.Docker(t, "exec", "box", "sh", "-c", "echo again; exit 4"); r.Code != 4 || strings.TrimSpace(r.Stdout) != "again" {
		t.Fatalf("docker exec after the restart: %s", r)
	}
}
