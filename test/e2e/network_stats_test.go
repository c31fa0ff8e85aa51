package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestDockerCLIStatsNetIO: docker stats shows the NET I/O of a container
// that sends traffic (pings of its gateway), read in its namespace.
func TestDockerCLIStatsNetIO(t *testing.T) {
	d, _ := netDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	t.Cleanup(func() { removeAllContainers(t, d) })
	d.DockerOK(t, "run", "-d", "--name", "pinger", "busybox", "sh", "-c",
		"ping -c3 -i0.2 -s2000 $(ip route | awk '/default/{print $3}'); sleep 100")
	var got string
	deadline := time.Now().Add(10 * time.Second)
	for {
		got = strings.TrimSpace(d.DockerOK(t, "stats", "--no-stream", "--format", "{{.NetIO}}", "pinger"))
		// e.g. "6.4kB / 6.3kB": both ways past the three 2000-byte pings
		in, out, ok := strings.Cut(got, " / ")
		if ok && strings.HasSuffix(in, "kB") && strings.HasSuffix(out, "kB") && !strings.HasPrefix(in, "0") && !strings.HasPrefix(out, "0") &&
			!strings.HasPrefix(in, "1.") && !strings.HasPrefix(out, "1.") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker stats NET I/O after 3 pings of 2000 bytes: %q", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
