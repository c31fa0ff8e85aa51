package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestMonitorConsoleSizeFromCLI: berth run -t and create -t send the
// terminal's size at create (HostConfig.ConsoleSize), as docker's CLI
// does, so the container's terminal has it before any resize. script(1)
// gives the CLI a 40x123 terminal.
func TestMonitorConsoleSizeFromCLI(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("needs script(1) (util-linux) for a terminal")
	}
	d := StartDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	inTerminal := func(cmd string) string {
		t.Helper()
		r := run(t, []string{"BERTH_HOST=" + d.Host}, nil, "script", "-qec", "stty rows 40 cols 123; "+cmd, "/dev/null")
		if r.Code != 0 {
			t.Fatalf("%s: %s", cmd, r)
		}
		return strings.ReplaceAll(r.Stdout, "\r", "")
	}
	if out := inTerminal(bins.berth + " create -t --name sized --network none busybox stty size"); strings.TrimSpace(out) == "" {
		t.Fatalf("create printed no id")
	}
	if got := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{json .HostConfig.ConsoleSize}}", "sized")); got != "[40,123]" {
		t.Fatalf("ConsoleSize after berth create -t: %s", got)
	}
	if out := inTerminal(bins.berth + " run --rm -t --network none busybox stty size"); !strings.Contains(out, "40 123") {
		t.Fatalf("stty size in berth run -t: %q", out)
	}
	// Without a terminal on stdout there is no size to send.
	d.Berth(t, "create", "-t", "--name", "unsized", "--network", "none", "busybox")
	if got := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{json .HostConfig.ConsoleSize}}", "unsized")); got != "[0,0]" {
		t.Fatalf("ConsoleSize without a terminal: %s", got)
	}
}
