package network_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/network/portmap"
	"github.com/berth-dev/berth/internal/testutil"
)

// get fetches url from the host, retrying briefly.
func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	var last error
	for range 20 {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

// TestIPv6PublishedOnLoopback publishes a busybox httpd on [::1] and, on
// a dual-stack network, on every address: the host reaches it on
// [::1]:port (the proxy), on 127.0.0.1 and on the bridge's IPv6 address
// (the kernel's DNAT); the binding on every address is listed for both
// families. A container without IPv6 is reached on [::1] too, through
// its IPv4 address.
func TestIPv6PublishedOnLoopback(t *testing.T) {
	testutil.RequireRoot(t)
	m, _ := newManager(t)
	n6 := userNetwork(t, m, network.CreateOptions{IPv6: true, Subnet6: netip.MustParsePrefix("fd21:a::/64")})
	lo6 := netip.IPv6Loopback()
	web, wr := newBox(t, m, "web6", network.AttachOptions{Network: n6.Name, Ports: []portmap.Binding{
		{HostIP: lo6, ContainerPort: 80, Proto: "tcp"},
		{ContainerPort: 80, Proto: "tcp"},
	}})
	web.httpd("web6")
	ports := wr[0].Endpoint.Ports
	if len(ports) != 3 || ports[0].HostIP != lo6 || ports[1].HostIP.IsValid() ||
		ports[2].HostIP != netip.IPv6Unspecified() || ports[2].HostPort != ports[1].HostPort {
		t.Fatalf("bindings %+v: want [::1]:p1, every address :p2 and [::]:p2", ports)
	}
	for _, url := range []string{
		fmt.Sprintf("http://[::1]:%d/", ports[0].HostPort),
		fmt.Sprintf("http://[::1]:%d/", ports[1].HostPort),
		fmt.Sprintf("http://127.0.0.1:%d/", ports[1].HostPort),
		fmt.Sprintf("http://[%s]:%d/", wr[0].Endpoint.Gateway6, ports[1].HostPort),
	} {
		if got := get(t, url); !strings.Contains(got, "hello from web6") {
			t.Errorf("%s: %q", url, got)
		}
	}
	// the [::1] port is not published on other addresses
	c := &http.Client{Timeout: time.Second}
	if resp, err := c.Get(fmt.Sprintf("http://[%s]:%d/", wr[0].Endpoint.Gateway6, ports[0].HostPort)); err == nil {
		resp.Body.Close()
		t.Errorf("the [::1] port answered on the gateway's address")
	}

	v4, vr := newBox(t, m, "web4", network.AttachOptions{Ports: []portmap.Binding{{HostIP: lo6, ContainerPort: 80, Proto: "tcp"}}})
	v4.httpd("web4")
	if got := get(t, fmt.Sprintf("http://[::1]:%d/", vr[0].Endpoint.Ports[0].HostPort)); !strings.Contains(got, "hello from web4") {
		t.Errorf("[::1] to an IPv4-only container: %q", got)
	}
	if err := m.Release(t.Context(), v4.id); err != nil {
		t.Fatal(err)
	}
	if resp, err := c.Get(fmt.Sprintf("http://[::1]:%d/", vr[0].Endpoint.Ports[0].HostPort)); err == nil {
		resp.Body.Close()
		t.Errorf("the proxy answers after release")
	}
}

// TestIPv6ForwardingAndNAT66: a network with IPv6 turns the host's IPv6
// forwarding on (off again with the last such network, if it was off),
// and a container reaches an IPv6 host beyond the bridge, masqueraded to
// the host's address (the outside has no route back to the container's
// subnet). While berth is the one that turned forwarding on, its table
// drops IPv6 forwarded between other interfaces.
func TestIPv6ForwardingAndNAT66(t *testing.T) {
	testutil.RequireRoot(t)
	before, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding")
	if err != nil {
		t.Skipf("no IPv6: %v", err)
	}
	m, _ := newManager(t)
	outNS := outside(t, "fd77:1::1/64", "fd77:1::2/64")
	n6 := userNetwork(t, m, network.CreateOptions{IPv6: true, Subnet6: netip.MustParsePrefix("fd21:b::/64")})
	if b, _ := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding"); string(b) != "1\n" {
		t.Fatalf("IPv6 forwarding %q with an IPv6 network", b)
	}
	rules, _ := exec.Command("nft", "list", "table", "inet", tableOf(m)).CombinedOutput()
	if guard := strings.Contains(string(rules), "meta nfproto ipv6 iifname != "); guard != (string(before) == "0\n") {
		t.Errorf("forwarding was %q; guard rule present: %v\n%s", before, guard, rules)
	}
	a, ar := newBox(t, m, "a6", network.AttachOptions{Network: n6.Name, Ports: []portmap.Binding{{ContainerPort: 80, Proto: "tcp"}}})
	a.must("ping", "-6", "-c1", "-W2", "fd77:1::2")
	// and the outside reaches its port published on [::] through the
	// host's address (prerouting's DNAT, then forwarded)
	a.httpd("a6")
	port := ar[0].Endpoint.Ports[1].HostPort
	if out, err := exec.Command("nsenter", "--net="+outNS, "curl", "-sS", "-m", "3", "-g",
		fmt.Sprintf("http://[fd77:1::1]:%d/", port)).CombinedOutput(); err != nil || !strings.Contains(string(out), "hello from a6") {
		t.Errorf("from outside to [fd77:1::1]:%d: %v: %s", port, err, out)
	}

	if err := m.RemoveNetwork(t.Context(), n6.Name); err == nil {
		t.Fatal("removed a network with an endpoint")
	}
	if err := m.Release(t.Context(), a.id); err != nil {
		t.Fatal(err)
	}
	if err := m.RemoveNetwork(t.Context(), n6.Name); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding"); string(b) != string(before) {
		t.Fatalf("IPv6 forwarding %q after the last IPv6 network went, %q before", b, before)
	}
}

// TestIPv6LoopbackProxyAfterRestart: the [::1] proxy lives in the daemon:
// gone while it is down (the kernel's paths stay), back when a new
// manager opens the same state.
func TestIPv6LoopbackProxyAfterRestart(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := t.Context()
	cfg := newConfig(t, t.TempDir())
	if err := os.WriteFile(cfg.ResolvConf, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m1, err := network.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var m2 *network.Manager
	t.Cleanup(func() {
		m := m1
		if m2 != nil {
			m = m2
		}
		if err := m.Teardown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	id := "px" + tag() + strings.Repeat("0", 12)
	path, err := m1.NewNetns(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	r, err := m1.Attach(ctx, network.AttachOptions{ContainerID: id, Name: "px",
		Ports: []portmap.Binding{{HostIP: netip.IPv6Loopback(), ContainerPort: 80, Proto: "tcp"}}})
	if err != nil {
		t.Fatal(err)
	}
	b := &box{t: t, id: id, netns: path, rootfs: rootfs(t)}
	b.httpd("px")
	url := fmt.Sprintf("http://[::1]:%d/", r.Endpoint.Ports[0].HostPort)
	if got := get(t, url); !strings.Contains(got, "hello from px") {
		t.Fatalf("%s: %q", url, got)
	}
	m1.Close()
	c := &http.Client{Timeout: time.Second}
	if resp, err := c.Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("%s answered with the manager closed", url)
	}
	if m2, err = network.New(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if got := get(t, url); !strings.Contains(got, "hello from px") {
		t.Fatalf("%s after the restart: %q", url, got)
	}
}
