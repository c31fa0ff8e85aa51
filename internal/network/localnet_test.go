package network_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/network/netns"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestContainerCannotReachHostLoopback checks the CVE-2020-8558 guard: the
// bridge has route_localnet=1 (for DNAT from 127.0.0.1), which alone would
// let a container route packets to the host's 127.0.0.1 and reach its
// loopback-only services. UDP shows it in one datagram.
func TestContainerCannotReachHostLoopback(t *testing.T) {
	testutil.RequireRoot(t)
	m, cfg := newManager(t)
	l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan string, 16)
	go func() {
		buf := make([]byte, 100)
		for {
			n, _, err := l.ReadFromUDP(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	port := l.LocalAddr().(*net.UDPAddr).Port
	b, r := newBox(t, m, "evil", network.AttachOptions{})
	gw := r[0].Endpoint.Gateway.String()
	// Inside the container: send 127.0.0.1 to the gateway instead of lo.
	for _, c := range [][]string{
		{"ip", "route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local"},
		{"ip", "route", "del", "local", "127.0.0.1", "dev", "lo", "table", "local"},
		{"ip", "route", "add", "127.0.0.1/32", "via", gw, "dev", "eth0", "src", r[0].Endpoint.IPv4.Addr().String()},
		{"sh", "-c", "echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet"},
	} {
		if out, err := exec.Command("nsenter", append([]string{"--net=" + b.netns}, c...)...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", c, err, out)
		}
	}
	send := func(msg string) bool {
		// busybox's nc has no UDP here: send from a thread in the netns
		err := netns.Do(b.netns, func() error {
			c, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte(msg))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-got:
			return s == msg
		case <-time.After(500 * time.Millisecond):
			return false
		}
	}
	// Control: with an accept ahead of our drop, the datagram arrives, so
	// the loss below is the guard's doing and not a broken setup.
	if out, err := exec.Command("nft", "insert", "rule", "inet", cfg.Table, "input", "iifname", cfg.DefaultBridge, "accept").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !send("control") {
		t.Fatal("control: the host's 127.0.0.1 not reachable even without the guard")
	}
	// Any change rewrites the table, without the test's accept.
	n, err := m.CreateNetwork(context.Background(), network.CreateOptions{Name: "x-" + tag(), Options: map[string]string{network.OptBridgeName: "bt-" + tag()}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.RemoveNetwork(context.Background(), n.Name)
	if send("attack") {
		t.Fatal("a container reached a host service bound to 127.0.0.1")
	}
}
