package network_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/network/netns"
	"github.com/berth-dev/berth/internal/network/portmap"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestRestartKeepsAllocationsAndCleansDead plays a daemon crash: the first
// manager is dropped without tearing anything down, a second one opens the
// same root, keeps the live container's address and port, hands out no
// duplicate, and Cleanup removes the dead container's veth, namespace and
// rules, plus a stray veth and namespace file no record knows.
func TestRestartKeepsAllocationsAndCleansDead(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	cfg := newConfig(t, t.TempDir())
	m1, err := network.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var m2 *network.Manager
	t.Cleanup(func() {
		if m2 != nil {
			if err := m2.Teardown(ctx); err != nil {
				t.Error(err)
			}
		} else {
			_ = m1.Teardown(ctx)
		}
	})
	attach := func(m *network.Manager, id string, ports ...portmap.Binding) network.Endpoint {
		t.Helper()
		if _, err := m.NewNetns(ctx, id); err != nil {
			t.Fatal(err)
		}
		r, err := m.Attach(ctx, network.AttachOptions{ContainerID: id, Name: id, Ports: ports})
		if err != nil {
			t.Fatal(err)
		}
		return r.Endpoint
	}
	lo := netip.MustParseAddr("127.0.0.1")
	live := attach(m1, "live000000000000", portmap.Binding{HostIP: lo, ContainerPort: 80, Proto: "tcp"})
	dead := attach(m1, "dead000000000000", portmap.Binding{HostIP: lo, ContainerPort: 80, Proto: "tcp"})
	m1.Close() // the daemon dies: no teardown

	// a veth on our bridge and a namespace file that no record knows, as a
	// crash between kernel work and the state write would leave
	stray := "vbstray" + tag()
	if out, err := exec.Command("ip", "link", "add", stray, "master", cfg.DefaultBridge, "type", "veth", "peer", "name", "p"+stray[2:]).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	strayNS := filepath.Join(cfg.ExecRoot, "netns", "stray")
	if err := netns.Create(strayNS); err != nil {
		t.Fatal(err)
	}

	m2, err = network.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// the live container's host port is reserved again
	if l, err := net.Listen("tcp4", netip.AddrPortFrom(lo, live.Ports[0].HostPort).String()); err == nil {
		l.Close()
		t.Fatal("live container's host port not reserved after restart")
	}
	third := attach(m2, "third00000000000")
	for _, ep := range []network.Endpoint{live, dead} {
		if third.IPv4 == ep.IPv4 {
			t.Fatalf("address %s handed out twice after restart", third.IPv4)
		}
	}
	alive := func(id string) bool { return id != "dead000000000000" }
	res, err := m2.Cleanup(ctx, alive)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Containers, []string{"dead000000000000"}) || !slices.Contains(res.Veths, stray) || !slices.Contains(res.Netns, "stray") {
		t.Fatalf("cleanup result %+v", res)
	}
	if linkExists(dead.HostVeth) || linkExists(stray) {
		t.Fatal("dead or stray veth still there")
	}
	if !linkExists(live.HostVeth) {
		t.Fatal("live container's veth removed")
	}
	if _, err := os.Stat(filepath.Join(cfg.ExecRoot, "netns", "dead000000000000")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("dead container's netns file: %v", err)
	}
	if len(m2.Endpoints("dead000000000000")) != 0 || len(m2.Endpoints("live000000000000")) != 1 {
		t.Fatal("endpoints after cleanup are wrong")
	}
	// the dead one's address is free again, the live one's is not
	info, _ := m2.Inspect(network.DefaultNetwork)
	if len(info.Endpoints) != 2 {
		t.Fatalf("endpoints %+v", info.Endpoints)
	}
	out, _ := exec.Command("nft", "list", "table", "inet", cfg.Table).CombinedOutput()
	if got := string(out); !containsPort(got, live.Ports[0].HostPort) || containsPort(got, dead.Ports[0].HostPort) {
		t.Fatalf("rules after cleanup:\n%s", got)
	}
	for _, id := range []string{"live000000000000", "third00000000000"} {
		if err := m2.Release(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}

func containsPort(rules string, port uint16) bool {
	return slices.ContainsFunc([]string{"dport " + itoa(port) + " "}, func(s string) bool { return contains(rules, s) })
}
