package e2e

import (
	"strings"
	"testing"
)

// docker exec: output, exit codes as docker's (126, 127), environment,
// working directory, stdin, a tty, and the container's namespaces; then
// top and stats on the same container.
func TestExecDockerCLI(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	d.DockerOK(t, "run", "-d", "--name", "box", "--hostname", "boxhost", "-e", "CTR=1", "busybox", "sleep", "1000")
	// Containers outlive the daemon: remove it before the daemon stops.
	t.Cleanup(func() { d.Docker(t, "rm", "-f", "box") })
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		out   string
		code  int
	}{
		{"output", []string{"echo", "hi"}, "", "hi\n", 0},
		{"exit code", []string{"sh", "-c", "exit 3"}, "", "", 3},
		{"not found", []string{"no-such-command"}, "", "", 127},
		{"not executable", []string{"/etc/passwd"}, "", "", 126},
		{"env", []string{"-e", "X=2", "box", "sh", "-c", "echo $CTR $X"}, "", "1 2\n", 0},
		{"workdir", []string{"-w", "/etc", "box", "pwd"}, "", "/etc\n", 0},
		{"namespaces", []string{"sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '"}, "", "boxhost\nsleep 1000 ", 0},
		{"stdin", []string{"-i", "box", "cat"}, "in\n", "in\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"exec"}, tc.args...)
			if !strings.HasPrefix(tc.args[0], "-") {
				args = append([]string{"exec", "box"}, tc.args...)
			}
			var r Result
			if tc.stdin != "" {
				r = d.DockerIn(t, []byte(tc.stdin), args...)
			} else {
				r = d.Docker(t, args...)
			}
			if r.Code != tc.code || (tc.code < 126 && r.Stdout != tc.out) {
				t.Fatalf("docker %v: %s\nwant exit %d, out %q", args, r, tc.code, tc.out)
			}
		})
	}
	top := d.DockerOK(t, "top", "box")
	if !strings.Contains(top, "PID") || !strings.Contains(top, "sleep 1000") {
		t.Fatalf("top: %s", top)
	}
	stats := d.DockerOK(t, "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", "box")
	if !strings.HasPrefix(stats, "box ") || strings.HasPrefix(strings.Fields(stats)[1], "0B") {
		t.Fatalf("stats: %q", stats)
	}
}
