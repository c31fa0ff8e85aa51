package e2e

import (
	"strconv"
	"strings"
	"testing"
)

// docker exec --privileged in an unprivileged container: every
// capability the daemon holds and no seccomp filter, while the
// container's masked paths stay masked (the exec shares its mounts); a
// plain exec keeps the container's filter and capabilities.
func TestExecPrivilegedDockerCLI(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	d.DockerOK(t, "run", "-d", "--name", "box", "busybox", "sleep", "1000")
	t.Cleanup(func() { d.Docker(t, "rm", "-f", "box") })
	probe := []string{"sh", "-c", "grep -E '^(CapEff|Seccomp):' /proc/self/status; ls -A /sys/firmware | wc -l"}
	fields := func(out string) map[string]string {
		m := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				k, v = "masked entries", l
			}
			m[k] = strings.TrimSpace(v)
		}
		return m
	}
	priv := fields(d.DockerOK(t, append([]string{"exec", "--privileged", "box"}, probe...)...))
	plain := fields(d.DockerOK(t, append([]string{"exec", "box"}, probe...)...))
	if priv["Seccomp"] != "0" || plain["Seccomp"] != "2" {
		t.Fatalf("seccomp: privileged %q, plain %q; want 0 and 2", priv["Seccomp"], plain["Seccomp"])
	}
	// The container's default set is docker's 14 capabilities
	// (a80425fb); privileged has them and the rest of the kernel's set
	// but what the daemon lacks itself, CAP_SYS_ADMIN (21) among them.
	p, perr := strconv.ParseUint(priv["CapEff"], 16, 64)
	q, qerr := strconv.ParseUint(plain["CapEff"], 16, 64)
	if perr != nil || qerr != nil || q != 0xa80425fb || p&q != q || p&(1<<21) == 0 {
		t.Fatalf("capabilities: privileged %q, plain %q", priv["CapEff"], plain["CapEff"])
	}
	if priv["masked entries"] != "0" || plain["masked entries"] != "0" {
		t.Fatalf("/sys/firmware is masked: privileged %q, plain %q entries", priv["masked entries"], plain["masked entries"])
	}
}
