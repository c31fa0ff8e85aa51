package network_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestDownKeepsNetworksOnDisk: a manager with a container attached goes
// down as Close (its bridge stays for the running container); without
// one, Down removes the bridges and the table, and the next New brings
// back the same networks.
func TestDownKeepsNetworksOnDisk(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	cfg := newConfig(t, t.TempDir())
	m, err := network.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	last := m
	t.Cleanup(func() { _ = last.Teardown(ctx) })
	user, err := m.CreateNetwork(ctx, network.CreateOptions{Name: "down" + tag()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.NewNetns(ctx, "box0000000000000"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Attach(ctx, network.AttachOptions{ContainerID: "box0000000000000", Name: "box", Network: user.Name}); err != nil {
		t.Fatal(err)
	}
	if down, err := m.Down(ctx); err != nil || down {
		t.Fatalf("Down with a container attached: %v %v, want false", down, err)
	}
	if _, err := netlink.LinkByName(user.Bridge); err != nil {
		t.Fatalf("bridge of a network in use gone after Down: %v", err)
	}
	m2, err := network.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	last = m2
	if err := m2.Release(ctx, "box0000000000000"); err != nil {
		t.Fatal(err)
	}
	if down, err := m2.Down(ctx); err != nil || !down {
		t.Fatalf("Down with nothing attached: %v %v, want true", down, err)
	}
	for _, br := range []string{cfg.DefaultBridge, user.Bridge} {
		if _, err := netlink.LinkByName(br); err == nil {
			t.Errorf("bridge %s still there after Down", br)
		}
	}
	if out, _ := exec.Command("nft", "list", "tables").Output(); strings.Contains(string(out), cfg.Table) {
		t.Errorf("table %s still there after Down: %s", cfg.Table, out)
	}
	m3, err := network.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	last = m3
	if _, err := m3.Inspect(user.Name); err != nil {
		t.Fatalf("network gone from disk after Down: %v", err)
	}
	if _, err := netlink.LinkByName(user.Bridge); err != nil {
		t.Fatalf("bridge not made again by New: %v", err)
	}
}
