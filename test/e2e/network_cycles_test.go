package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// daemonNetFootprint is what containers' networking leaves behind: veths
// (the pool's spares aside) and ports on the daemon's bridge, namespace
// files, the nftables table's rules, and the endpoints on record.
func daemonNetFootprint(t *testing.T, d *Daemon, bridge, table string) string {
	t.Helper()
	var b strings.Builder
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	br, _ := netlink.LinkByName(bridge)
	var veths []string
	for _, l := range links {
		a := l.Attrs()
		if l.Type() == "veth" && strings.HasPrefix(a.Name, "vb") && !strings.HasPrefix(a.Name, "vbp") && br != nil && a.MasterIndex == br.Attrs().Index {
			veths = append(veths, a.Name)
		}
	}
	slices.Sort(veths)
	fmt.Fprintf(&b, "veths on %s: %v\n", bridge, veths)
	ents, _ := os.ReadDir(filepath.Join(d.ExecRoot, "netns"))
	fmt.Fprintf(&b, "netns files: %d\n", len(ents))
	out, err := exec.Command("nft", "list", "table", "inet", table).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list table %s: %v: %s", table, err, out)
	}
	fmt.Fprintf(&b, "rules:\n%s", out)
	var rec struct{ Endpoints, Containers []json.RawMessage }
	if raw, err := os.ReadFile(filepath.Join(d.ExecRoot, "network", "endpoints.json")); err == nil {
		_ = json.Unmarshal(raw, &rec)
	}
	fmt.Fprintf(&b, "endpoints on record: %d, sandboxes: %d\n", len(rec.Endpoints), len(rec.Containers))
	return b.String()
}

// TestDockerCLIRunRmCycles is issue #6's drill through the daemon and the
// docker CLI: many `docker run --rm` on the default bridge (every tenth
// publishing a port on 127.0.0.1) leave no veth, namespace, rule or
// endpoint behind, and the next container gets the first address again.
// BERTH_NET_CYCLES sets the count (20 by default; 500 for the full drill).
func TestDockerCLIRunRmCycles(t *testing.T) {
	n := 20
	if v, err := strconv.Atoi(os.Getenv("BERTH_NET_CYCLES")); err == nil && v > 0 {
		n = v
	}
	args, bridge := netArgs()
	table := args[slices.Index(args, "--nft-table")+1]
	d := StartDaemon(t, DaemonOptions{Args: args})
	loadBusybox(t, d)
	t.Cleanup(func() { removeAllContainers(t, d) })
	addr := func() string {
		return strings.TrimSpace(d.DockerOK(t, "run", "--rm", "busybox", "sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}'"))
	}
	first := addr()
	settle := func(want string) string {
		var got string
		for range 200 {
			if got = daemonNetFootprint(t, d, bridge, table); got == want {
				break
			}
			time.Sleep(25 * time.Millisecond)
		}
		return got
	}
	// The baseline once the kernel has destroyed the probe container's
	// veth (its deletion is left to the namespace's teardown, which runs
	// after the container is gone): no container runs, so no veth.
	var before string
	for range 200 {
		if before = daemonNetFootprint(t, d, bridge, table); strings.Contains(before, "veths on "+bridge+": []") {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	start := time.Now()
	for i := range n {
		run := []string{"run", "--rm", "busybox", "true"}
		if i%10 == 0 {
			run = []string{"run", "--rm", "-p", "127.0.0.1::80", "busybox", "true"}
		}
		if r := d.Docker(t, run...); r.Code != 0 {
			t.Fatalf("cycle %d: %s", i, r)
		}
	}
	t.Logf("%d docker run --rm in %v", n, time.Since(start).Round(time.Millisecond))
	if after := settle(before); after != before {
		t.Fatalf("after %d cycles:\n%s\nbefore:\n%s", n, after, before)
	}
	if again := addr(); again != first {
		t.Fatalf("IPAM: the first container had %s, one after the cycles %s", first, again)
	}
}
