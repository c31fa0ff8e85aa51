package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	containertypes "github.com/moby/moby/api/types/container"
	networktypes "github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/internal/testutil"
)

// netCtrEngine is ctrEngine with networking on a default bridge, subnet
// and nftables table of the test's own.
func netCtrEngine(t *testing.T) (*Engine, NetworkConfig) {
	t.Helper()
	e := ctrEngine(t)
	ctx := context.Background()
	c, _ := e.ctrs()
	b := []byte(netTag())
	cfg := NetworkConfig{ExecRoot: c.cfg.ExecRoot, DefaultBridge: "bc" + netTag(),
		DefaultSubnet: netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", 160+int(b[0])%30, b[1])), Table: "berth_c" + netTag()}
	if err := e.InitNetworks(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, ct := range c.store.List() {
			_ = e.ContainerRemove(ctx, ct.ID(), ContainerRemoveOptions{Force: true})
		}
		if err := e.TeardownNetworks(ctx); err != nil {
			t.Error(err)
		}
	})
	return e, cfg
}

// netFootprint is what a container's networking leaves in the kernel and
// on disk: veths (other than the pool's spares) and the bridge's ports,
// namespace files and nsfs mounts under the exec root, the table's rules,
// and the endpoints the manager has on record.
type netFootprint struct {
	veths, ports, netns, mounts []string
	rules                       string
	endpoints                   int
}

func takeNetFootprint(t *testing.T, e *Engine, cfg NetworkConfig) netFootprint {
	t.Helper()
	var f netFootprint
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	br, _ := netlink.LinkByName(cfg.DefaultBridge)
	for _, l := range links {
		a := l.Attrs()
		if l.Type() == "veth" && strings.HasPrefix(a.Name, "vb") && !strings.HasPrefix(a.Name, "vbp") {
			f.veths = append(f.veths, a.Name)
		}
		if br != nil && a.MasterIndex == br.Attrs().Index {
			f.ports = append(f.ports, a.Name)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(cfg.ExecRoot, "netns"))
	for _, en := range ents {
		f.netns = append(f.netns, en.Name())
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for line := range strings.Lines(string(mi)) {
		if strings.Contains(line, cfg.ExecRoot) {
			f.mounts = append(f.mounts, strings.TrimSpace(line))
		}
	}
	out, err := exec.Command("nft", "-a", "list", "table", "inet", cfg.Table).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list: %v: %s", err, out)
	}
	// the handles change with every rewrite of the table; the rules not
	var rules []string
	for line := range strings.Lines(string(out)) {
		line, _, _ = strings.Cut(line, " # handle")
		rules = append(rules, strings.TrimSpace(line))
	}
	f.rules = strings.Join(rules, "\n")
	m, _ := e.netManager()
	for _, n := range m.Networks() {
		info, _ := m.Inspect(n.ID)
		f.endpoints += len(info.Endpoints)
	}
	return f
}

func (f netFootprint) diff(g netFootprint) []string {
	var out []string
	for _, s := range []struct {
		what   string
		before []string
		after  []string
	}{{"veths", f.veths, g.veths}, {"bridge ports", f.ports, g.ports}, {"netns files", f.netns, g.netns}, {"mounts", f.mounts, g.mounts}} {
		if !slices.Equal(s.before, s.after) {
			out = append(out, fmt.Sprintf("%s: %v → %v", s.what, s.before, s.after))
		}
	}
	if f.rules != g.rules {
		out = append(out, fmt.Sprintf("rules:\n%s\n→\n%s", f.rules, g.rules))
	}
	if f.endpoints != g.endpoints {
		out = append(out, fmt.Sprintf("endpoints: %d → %d", f.endpoints, g.endpoints))
	}
	return out
}

// TestNetworkRunRmCycles is issue #6's drill at the engine's level: many
// `run --rm` on the default bridge (every tenth with a port published on
// 127.0.0.1, so that rules come and go too), then rm -f of running
// containers and restarts, leave no veth, bridge port,
// namespace, nsfs mount, nftables rule or endpoint behind, and IPAM hands
// the first address out again afterwards. BERTH_NET_CYCLES sets the count
// (500 for the full drill, about 35 s on two cores; 60 by default),
// two at a time.
func TestNetworkRunRmCycles(t *testing.T) {
	testutil.RequireRoot(t)
	n := 60
	if v, err := strconv.Atoi(os.Getenv("BERTH_NET_CYCLES")); err == nil && v > 0 {
		n = v
	}
	e, cfg := netCtrEngine(t)
	ctx := context.Background()
	// The address a lone container gets: the same after the cycles.
	addrOf := func() string {
		res, err := e.ContainerCreate(ctx, ContainerCreateOptions{Config: &containertypes.Config{Image: "busybox", Cmd: []string{"sh", "-c", "ip -4 -o addr show eth0"}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.ContainerStart(ctx, res.ID); err != nil {
			t.Fatal(err)
		}
		waitExit(t, e, res.ID, containertypes.WaitConditionNotRunning)
		logs := containerOutput(t, e, res.ID)
		if err := e.ContainerRemove(ctx, res.ID, ContainerRemoveOptions{}); err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(logs)
		if len(f) < 4 {
			t.Fatalf("ip addr in the container: %q", logs)
		}
		return f[3]
	}
	first := addrOf()
	settle := func(want netFootprint) netFootprint {
		// Released namespaces take their veths with them in the kernel's
		// background cleanup: give it time to get through.
		var got netFootprint
		for range 200 {
			got = takeNetFootprint(t, e, cfg)
			if len(want.diff(got)) == 0 {
				break
			}
			time.Sleep(25 * time.Millisecond)
		}
		return got
	}
	// Nothing runs: no veth or port should be there once the kernel has
	// destroyed addrOf's pair.
	want := takeNetFootprint(t, e, cfg)
	want.veths, want.ports = nil, nil
	before := settle(want)
	if d := want.diff(before); len(d) > 0 {
		t.Fatalf("before the cycles, with no container:\n%s", strings.Join(d, "\n"))
	}
	procCounts := func() (fds, goroutines int) {
		ents, _ := os.ReadDir("/proc/self/fd")
		return len(ents), runtime.NumGoroutine()
	}
	f0, g0 := procCounts()
	p := networktypes.MustParsePort("80/tcp")
	cycle := func(i int) error {
		host := &containertypes.HostConfig{AutoRemove: true}
		if i%10 == 0 {
			host.PortBindings = networktypes.PortMap{p: {{HostIP: netip.MustParseAddr("127.0.0.1")}}}
		}
		res, err := e.ContainerCreate(ctx, ContainerCreateOptions{Config: &containertypes.Config{Image: "busybox", Cmd: []string{"true"}}, HostConfig: host})
		if err != nil {
			return err
		}
		ch, err := e.ContainerWait(ctx, res.ID, containertypes.WaitConditionRemoved)
		if err != nil {
			return err
		}
		if err := e.ContainerStart(ctx, res.ID); err != nil {
			return err
		}
		if r := <-ch; r.StatusCode != 0 || r.Error != nil {
			return fmt.Errorf("exit %d %v", r.StatusCode, r.Error)
		}
		return nil
	}
	// Two at a time, as a busy host runs them: attach and release of one
	// overlap the other's.
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Go(func() {
			for i := w; i < n; i += 2 {
				if err := cycle(i); err != nil {
					errs <- fmt.Errorf("cycle %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d run --rm cycles in %v", n, time.Since(start).Round(time.Millisecond))
	// The other ends of a container's networking: rm -f of a running
	// one, and restarts of one container (the same veth name each time,
	// while the kernel may still destroy the last one).
	// (Stopped by SIGTERM, which its shell traps once it runs: restart
	// -t 0's SIGKILL races the exit in the engine's stop, "kill container:
	// container is stopped", a matter for the lifecycle, not the network.)
	grace := 5
	start = time.Now()
	for i := range max(n/10, 3) {
		res, err := e.ContainerCreate(ctx, ContainerCreateOptions{Config: &containertypes.Config{Image: "busybox",
			Cmd: []string{"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done"}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.ContainerStart(ctx, res.ID); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			for range 3 {
				time.Sleep(100 * time.Millisecond) // the trap is set
				if err := e.ContainerRestart(ctx, res.ID, ContainerStopOptions{Timeout: &grace}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := e.ContainerRemove(ctx, res.ID, ContainerRemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("rm -f and restarts in %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	after := settle(before)
	t.Logf("settled in %v", time.Since(start).Round(time.Millisecond))
	if d := before.diff(after); len(d) > 0 {
		t.Fatalf("after %d cycles:\n%s", n, strings.Join(d, "\n"))
	}
	if again := addrOf(); again != first {
		t.Fatalf("IPAM: the first container had %s, one after the cycles %s", first, again)
	}
	// nor a file descriptor or goroutine of the daemon's (exit watchers
	// take a moment to return; the pool's spares are as many as before)
	var f1, g1 int
	for range 100 {
		if f1, g1 = procCounts(); f1 <= f0 && g1 <= g0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if f1 > f0 || g1 > g0 {
		t.Fatalf("after the cycles: fds %d → %d, goroutines %d → %d", f0, f1, g0, g1)
	}
}

// containerOutput is the json-file log's text of a container.
func containerOutput(t *testing.T, e *Engine, id string) string {
	t.Helper()
	ins, err := e.ContainerInspect(context.Background(), id, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(ins.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for line := range strings.Lines(string(b)) {
		var entry struct{ Log string }
		if json.Unmarshal([]byte(line), &entry) == nil {
			out.WriteString(entry.Log)
		}
	}
	return out.String()
}
