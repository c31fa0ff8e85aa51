package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestCLITerminal drives the berth CLI on a pseudo-terminal (script(1)
// gives it one): run -t, attach to a tty container and detach with the
// detach keys, exit codes through a tty, exec -it.
func TestCLITerminal(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("needs script(1) from util-linux (Debian bsdutils)")
	}
	d := StartDaemon(t, DaemonOptions{})
	removeAllContainers(t, d)
	env := []string{"BERTH_HOST=" + d.Host}
	berth := func(args ...string) Result {
		t.Helper()
		return run(t, env, nil, bins.berth, args...)
	}
	// onTTY runs a berth command line on a pty, with input written after
	// a pause (so it reaches berth once its terminal is raw).
	onTTY := func(input, cmdline string) Result {
		t.Helper()
		shell := cmdline
		if input != "" {
			shell = "(sleep 0.5; printf '" + input + "') | " + scriptBin + " -qec '" + cmdline + "' /dev/null"
		} else {
			shell = scriptBin + " -qec '" + cmdline + "' /dev/null </dev/null"
		}
		return run(t, env, nil, "sh", "-c", shell)
	}
	if r := berth("load", "-i", imagesArchive(t)); r.Code != 0 {
		t.Fatalf("load: %s", r)
	}

	// -t without -i: the output comes through a terminal (\r\n).
	r := onTTY("", bins.berth+" run --rm -t busybox tty")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "/dev/pts/") || !strings.HasSuffix(r.Stdout, "\r\n") {
		t.Fatalf("run -t tty: %s", r)
	}
	// Without a terminal, -it is refused as docker does.
	if r := berth("run", "--rm", "-it", "busybox", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "the input device is not a TTY") {
		t.Fatalf("run -it without a terminal: %s", r)
	}

	if r := berth("run", "-dit", "--name", "tt", "busybox", "sh"); r.Code != 0 {
		t.Fatalf("run -dit: %s", r)
	}
	// Detach: attach ends with 0 and the container keeps running.
	r = onTTY(`\001x`, bins.berth+" attach --detach-keys ctrl-a,x tt")
	if r.Code != 0 {
		t.Fatalf("attach and detach: %s", r)
	}
	if r := berth("inspect", "--format", "{{.State.Running}}", "tt"); strings.TrimSpace(r.Stdout) != "true" {
		t.Fatalf("after detach: %s", r)
	}
	// Attach again, type commands, exit 3: the code comes back.
	r = onTTY(`echo hi-from-tty\nexit 3\n`, bins.berth+" attach tt")
	if r.Code != 3 || !strings.Contains(r.Stdout, "hi-from-tty\r\n") {
		t.Fatalf("attach, exit 3: %s", r)
	}

	if r := berth("run", "-d", "--name", "ex", "busybox", "sleep", "100"); r.Code != 0 {
		t.Fatalf("run -d: %s", r)
	}
	r = onTTY(`echo in-exec\nexit 4\n`, bins.berth+" exec -it ex sh")
	if r.Code != 4 || !strings.Contains(r.Stdout, "in-exec\r\n") {
		t.Fatalf("exec -it: %s", r)
	}
	if r := berth("rm", "-f", "ex", "tt"); r.Code != 0 {
		t.Fatalf("rm -f: %s", r)
	}
}

func imagesArchive(t *testing.T) string { return testutil.Images(t).DockerArchive }
