package e2e

import (
	"strings"
	"testing"
)

// A command that cannot run fails the start in docker's words, and the
// docker CLI turns them into its exit codes: 127 for a command that is
// not there, 126 for one that cannot be executed (a directory, a file
// without an execute bit). The same for exec.

func TestCommandErrorsDockerCLI(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	d.DockerOK(t, "run", "-d", "--name", "box", "busybox", "sleep", "1000")
	t.Cleanup(func() { d.Docker(t, "rm", "-f", "box") })
	for _, tc := range []struct {
		name string
		cmd  string
		code int
		msg  string // in the CLI's stderr (run) or the exec's error
	}{
		{"directory", "/etc", 126, `exec: "/etc": is a directory`},
		{"not executable", "/etc/passwd", 126, `exec: "/etc/passwd": permission denied`},
		{"not in PATH", "no-such-command", 127, `exec: "no-such-command": executable file not found in $PATH`},
		{"missing path", "/no/such", 127, "no such file or directory"},
	} {
		t.Run("run "+tc.name, func(t *testing.T) {
			r := d.Docker(t, "run", "--rm", "busybox", tc.cmd)
			if r.Code != tc.code || !strings.Contains(r.Stderr, tc.msg) || strings.Contains(r.Stderr, "in $PATH in $PATH") {
				t.Fatalf("docker run busybox %s: %s\nwant exit %d and %q", tc.cmd, r, tc.code, tc.msg)
			}
		})
		t.Run("exec "+tc.name, func(t *testing.T) {
			if r := d.Docker(t, "exec", "box", tc.cmd); r.Code != tc.code {
				t.Fatalf("docker exec box %s: %s\nwant exit %d", tc.cmd, r, tc.code)
			}
		})
	}
	// run -d fails the same way, and the container keeps the code.
	r := d.Docker(t, "run", "-d", "--name", "dir", "busybox", "/etc")
	if r.Code != 126 {
		t.Fatalf("docker run -d busybox /etc: %s", r)
	}
	if got := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.State.ExitCode}}", "dir")); got != "126" {
		t.Fatalf("exit code of a container whose command is a directory: %s", got)
	}
	d.DockerOK(t, "rm", "dir")
}
