package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
)

// berthOK runs the berth CLI and fails t unless it exits 0.
func berthOK(t *testing.T, d *Daemon, args ...string) string {
	t.Helper()
	r := d.Berth(t, args...)
	if r.Code != 0 {
		t.Fatalf("berth %s: %s", strings.Join(args, " "), r)
	}
	return r.Stdout
}

// TestBerthCLINetworking drives the network verbs through berth's own
// CLI: create with IPAM flags, ls, inspect, a container reaching another
// by name, connect with an alias and a fixed address, disconnect, rm and
// prune, and their errors in docker's words.
func TestBerthCLINetworking(t *testing.T) {
	d, _ := netDaemon(t, DaemonOptions{Args: []string{"--default-address-pool", "base=10.197.0.0/16,size=24"}})
	loadBusybox(t, d)
	t.Cleanup(func() {
		if ids := strings.Fields(d.DockerOK(t, "ps", "-aq")); len(ids) > 0 {
			d.DockerOK(t, append([]string{"rm", "-f"}, ids...)...)
		}
		d.Berth(t, "network", "prune", "-f")
	})
	// A network without --subnet takes the first free subnet of the pool.
	berthOK(t, d, "network", "create", "pooled")
	if got := strings.TrimSpace(berthOK(t, d, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "pooled")); got != "10.197.0.0/24" {
		t.Errorf("subnet from --default-address-pool: %q", got)
	}
	berthOK(t, d, "network", "rm", "pooled")

	id := strings.TrimSpace(berthOK(t, d, "network", "create", "--subnet", "10.198.5.0/24", "--gateway", "10.198.5.254",
		"--ip-range", "10.198.5.128/25", "--label", "team=web", "-o", "com.docker.network.driver.mtu=1400", "bnet"))
	if len(id) != 64 {
		t.Fatalf("network create printed %q, want an ID", id)
	}
	var docs []network.Inspect
	if err := json.Unmarshal([]byte(berthOK(t, d, "network", "inspect", "bnet")), &docs); err != nil || len(docs) != 1 {
		t.Fatalf("network inspect: %v %v", err, docs)
	}
	n := docs[0]
	if n.ID != id || n.Driver != "bridge" || n.Labels["team"] != "web" || len(n.IPAM.Config) != 1 ||
		n.IPAM.Config[0].Subnet.String() != "10.198.5.0/24" || n.IPAM.Config[0].Gateway.String() != "10.198.5.254" ||
		n.IPAM.Config[0].IPRange.String() != "10.198.5.128/25" {
		t.Errorf("network inspect bnet: %+v", n)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"network", "create", "bnet"}, "Error response from daemon: network with name bnet already exists"},
		{[]string{"network", "create", "--subnet", "nonsense", "x"}, "invalid subnet nonsense"},
		{[]string{"network", "create", "--gateway", "10.1.1.1", "--subnet", "10.2.0.0/16", "x"}, "no matching subnet for gateway 10.1.1.1"},
		{[]string{"network", "create", "-d", "overlay", "x"}, "only bridge"},
		{[]string{"network", "rm", "nosuch"}, "network nosuch not found"},
		{[]string{"network", "inspect", "nosuch"}, "network nosuch not found"},
		{[]string{"network", "connect", "bnet", "nosuch"}, "nosuch"},
	} {
		r := d.Berth(t, tc.args...)
		if r.Code == 0 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("berth %s: want %q: %s", strings.Join(tc.args, " "), tc.want, r)
		}
	}
	if out := berthOK(t, d, "network", "ls", "-q", "--filter", "label=team=web"); strings.TrimSpace(out) != id[:12] {
		t.Errorf("network ls -q --filter label=team=web: %q", out)
	}
	if out := berthOK(t, d, "network", "ls"); !strings.HasPrefix(out, "NETWORK ID") || !strings.Contains(out, "bnet") {
		t.Errorf("network ls:\n%s", out)
	}

	berthOK(t, d, "run", "-d", "--name", "srv", "--network", "bnet", "busybox", "sh", "-c",
		"mkdir -p /www && echo hello srv > /www/index.html && exec httpd -f -p 80 -h /www")
	ip := strings.TrimSpace(berthOK(t, d, "inspect", "-f", `{{(index .NetworkSettings.Networks "bnet").IPAddress}}`, "srv"))
	if a := net.ParseIP(ip); a == nil || a.To4()[3] < 128 {
		t.Errorf("srv's address %q: want one in the ip-range 10.198.5.128/25", ip)
	}
	if out := berthOK(t, d, "run", "--rm", "--network", "bnet", "busybox", "wget", "-qO-", "http://srv/"); !strings.Contains(out, "hello srv") {
		t.Errorf("wget srv by name: %q", out)
	}

	// connect a running container to a second network with an alias and
	// a fixed address, then disconnect it.
	berthOK(t, d, "network", "create", "--subnet", "10.198.6.0/24", "side")
	berthOK(t, d, "network", "connect", "--alias", "db", "--ip", "10.198.6.9", "side", "srv")
	if out := berthOK(t, d, "inspect", "-f", `{{(index .NetworkSettings.Networks "side").IPAddress}}`, "srv"); strings.TrimSpace(out) != "10.198.6.9" {
		t.Errorf("srv's address on side: %q, want 10.198.6.9 (--ip)", out)
	}
	r := d.Berth(t, "network", "connect", "side", "srv")
	if r.Code == 0 || !strings.Contains(r.Stderr, "already exists") {
		t.Errorf("second connect: %s", r)
	}
	if out := berthOK(t, d, "run", "--rm", "--network", "side", "busybox", "wget", "-qO-", "http://db/"); !strings.Contains(out, "hello srv") {
		t.Errorf("wget db (alias on side): %q", out)
	}
	berthOK(t, d, "network", "disconnect", "side", "srv")
	if r := d.Berth(t, "run", "--rm", "--network", "side", "busybox", "ping", "-c1", "-W1", "db"); r.Code == 0 {
		t.Errorf("db still reachable after disconnect: %s", r)
	}
	// Dual stack: an IPv6 address from the second subnet, names resolve
	// to it.
	berthOK(t, d, "network", "create", "--ipv6", "--subnet", "10.198.7.0/24", "--subnet", "fd00:198:7::/64", "six")
	berthOK(t, d, "network", "connect", "six", "srv")
	if got := strings.TrimSpace(berthOK(t, d, "inspect", "-f", `{{(index .NetworkSettings.Networks "six").GlobalIPv6Address}}`, "srv")); !strings.HasPrefix(got, "fd00:198:7::") {
		t.Errorf("srv's IPv6 address on six: %q", got)
	}
	if r := d.Berth(t, "run", "--rm", "--network", "six", "busybox", "ping", "-6", "-c1", "-W2", "srv"); r.Code != 0 {
		t.Errorf("ping -6 srv on a dual-stack network: %s", r)
	}
	berthOK(t, d, "network", "disconnect", "six", "srv")
	if r := d.Berth(t, "network", "rm", "bnet"); r.Code == 0 || !strings.Contains(r.Stderr, "has active endpoints") {
		t.Errorf("network rm of a network in use: %s", r)
	}
	berthOK(t, d, "rm", "-f", "srv")
	if out := berthOK(t, d, "network", "rm", "bnet"); strings.TrimSpace(out) != "bnet" {
		t.Errorf("network rm bnet: %q", out)
	}
	if out := berthOK(t, d, "network", "prune", "-f"); !strings.Contains(out, "Deleted Networks:\n") || !strings.Contains(out, "side\n") || !strings.Contains(out, "six\n") {
		t.Errorf("network prune: %q", out)
	}
}

// TestNetworkCleanupAfterDaemonKill: a daemon killed with -9 while
// containers run; one of them dies while no daemon is there. The daemon
// started again on the same state removes that one's veth and its port
// rule and frees its host port, keeps the live one's, and a daemon stopped
// with nothing attached leaves no bridge or table (the leak check).
func TestNetworkCleanupAfterDaemonKill(t *testing.T) {
	args, bridge := netArgs()
	d := StartDaemon(t, DaemonOptions{Args: args})
	loadBusybox(t, d)
	d.DockerOK(t, "network", "create", "crash")
	port := freePort(t)
	d.DockerOK(t, "run", "-d", "--name", "dies", "--network", "crash", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "busybox", "httpd", "-f", "-p", "80")
	d.DockerOK(t, "run", "-d", "--name", "lives", "busybox", "sleep", "1000")
	// A network made without -o com.docker.network.bridge.name gets
	// docker's bridge name, br-<id12>, which inspect does not list.
	crashBridge := "br-" + strings.TrimSpace(d.DockerOK(t, "network", "inspect", "-f", "{{.ID}}", "crash"))[:12]
	if len(bridgePorts(t, crashBridge)) != 1 || len(bridgePorts(t, bridge)) != 1 {
		t.Fatalf("veths before the crash: %s %v, %s %v", crashBridge, bridgePorts(t, crashBridge), bridge, bridgePorts(t, bridge))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.State.Pid}}", "dies")))
	if err != nil {
		t.Fatal(err)
	}

	killDaemon(t, d)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // its monitor records the exit

	d2 := StartDaemon(t, DaemonOptions{Args: args, Root: d.Root, ExecRoot: d.ExecRoot})
	t.Cleanup(func() {
		if ids := strings.Fields(d2.DockerOK(t, "ps", "-aq")); len(ids) > 0 {
			d2.DockerOK(t, append([]string{"rm", "-f"}, ids...)...)
		}
		d2.Docker(t, "network", "rm", "crash")
	})
	if v := bridgePorts(t, crashBridge); len(v) != 0 {
		t.Errorf("veth of the dead container after restart: %v", v)
	}
	if v := bridgePorts(t, bridge); len(v) != 1 {
		t.Errorf("veth of the live container after restart: %v", v)
	}
	if out, _ := exec.Command("nft", "list", "ruleset").Output(); strings.Contains(string(out), strconv.Itoa(port)) {
		t.Errorf("a rule for host port %d is left after restart", port)
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Errorf("host port %d still held after restart: %v", port, err)
	} else {
		l.Close()
	}
	if got := strings.TrimSpace(d2.DockerOK(t, "inspect", "-f", "{{.State.Status}}", "lives")); got != "running" {
		t.Errorf("lives after restart: %s", got)
	}
	// The dead one starts again with its port.
	d2.DockerOK(t, "start", "dies")
	if got := httpGet(t, d2, "dies", fmt.Sprintf("http://127.0.0.1:%d/", port)); got == "" {
		t.Errorf("published port after restart answered nothing")
	}
	// An address on no veth of ours: every address on our bridges is a
	// bridge's own.
	for _, br := range []string{bridge, crashBridge} {
		l, err := netlink.LinkByName(br)
		if err != nil {
			t.Fatalf("bridge %s: %v", br, err)
		}
		addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
		if len(addrs) != 1 {
			t.Errorf("bridge %s has addresses %v, want its gateway only", br, addrs)
		}
	}
}
