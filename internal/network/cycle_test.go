package network_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/network/netns"
	"github.com/berth-dev/berth/internal/network/portmap"
	"github.com/berth-dev/berth/internal/testutil"
)

// Test500AttachDetachCycles runs 500 container network lifecycles (every
// tenth on a user network with a published port) and checks that nothing
// stays behind: the leak check covers namespaces, links and tables; here
// the bridge's ports, the rules and the records.
func Test500AttachDetachCycles(t *testing.T) {
	testutil.RequireRoot(t)
	m, cfg := newManager(t)
	user := userNetwork(t, m, network.CreateOptions{})
	ctx := context.Background()
	lo := netip.MustParseAddr("127.0.0.1")
	for i := range 500 {
		id := fmt.Sprintf("cycle%011d", i)
		if _, err := m.NewNetns(ctx, id); err != nil {
			t.Fatal(err)
		}
		opts := network.AttachOptions{ContainerID: id, Name: id}
		if i%10 == 0 {
			opts.Network = user.Name
			opts.Ports = []portmap.Binding{{HostIP: lo, ContainerPort: 80, Proto: "tcp"}}
		}
		if _, err := m.Attach(ctx, opts); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if err := m.Release(ctx, id); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
	}
	// Release leaves the veths to the kernel's namespace cleanup, which
	// runs in the background: give it a few seconds to get through 500.
	for _, br := range []string{cfg.DefaultBridge, user.Bridge} {
		var out []byte
		for range 100 {
			out, _ = exec.Command("ip", "-o", "link", "show", "master", br).CombinedOutput()
			if strings.TrimSpace(string(out)) == "" {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if strings.TrimSpace(string(out)) != "" {
			t.Fatalf("ports left on %s:\n%s", br, out)
		}
	}
	out, _ := exec.Command("nft", "list", "table", "inet", cfg.Table).CombinedOutput()
	if strings.Contains(string(out), "dnat ip to") {
		t.Fatalf("DNAT rules left:\n%s", out)
	}
	entries, _ := os.ReadDir(cfg.ExecRoot + "/netns")
	if len(entries) != 0 {
		t.Fatalf("%d netns files left", len(entries))
	}
	for _, n := range m.Networks() {
		info, _ := m.Inspect(n.Name)
		if len(info.Endpoints) != 0 {
			t.Fatalf("network %s has %d endpoints left", n.Name, len(info.Endpoints))
		}
	}
}

func TestSecondNetworkAndDetach(t *testing.T) {
	testutil.RequireRoot(t)
	m, _ := newManager(t)
	n6 := userNetwork(t, m, network.CreateOptions{IPv6: true, Subnet6: netip.MustParsePrefix("fd21:7::/64")})
	b, r := newBox(t, m, "dual", network.AttachOptions{}, network.AttachOptions{Network: n6.Name, Aliases: []string{"two"}})
	if r[0].Endpoint.IfName != "eth0" || r[1].Endpoint.IfName != "eth1" {
		t.Fatalf("interfaces %s %s", r[0].Endpoint.IfName, r[1].Endpoint.IfName)
	}
	ep6 := r[1].Endpoint
	if !ep6.IPv6.IsValid() || ep6.IPv6.Addr().String() != "fd21:7::2" || !ep6.IPv4.IsValid() {
		t.Fatalf("dual stack endpoint %+v", ep6)
	}
	out := b.must("ip", "addr", "show", "eth1")
	if !strings.Contains(out, "fd21:7::2/64") || !strings.Contains(out, ep6.IPv4.String()) {
		t.Fatalf("eth1:\n%s", out)
	}
	peer, _ := newBox(t, m, "peer6", network.AttachOptions{Network: n6.Name})
	peer.must("ping", "-c1", "-W2", "fd21:7::2")
	if out := peer.must("nslookup", "-type=AAAA", "two"); !strings.Contains(out, "fd21:7::2") {
		t.Fatalf("AAAA of an alias: %s", out)
	}
	// only the first network gives the default route
	if out := b.must("ip", "route"); strings.Count(out, "default") != 1 || !strings.Contains(out, "dev eth0") {
		t.Fatalf("routes:\n%s", out)
	}
	if err := m.Detach(context.Background(), b.id, n6.Name); err != nil {
		t.Fatal(err)
	}
	if linkExists(ep6.HostVeth) {
		t.Fatal("veth left after detach")
	}
	if out := b.must("ip", "-o", "link"); strings.Contains(out, "eth1") {
		t.Fatalf("eth1 left:\n%s", out)
	}
	hosts, _ := os.ReadFile(r[0].HostsPath)
	if strings.Contains(string(hosts), "fd21:7::2") {
		t.Fatalf("hosts still lists the detached address:\n%s", hosts)
	}
	if err := m.Detach(context.Background(), b.id, n6.Name); err == nil {
		t.Fatal("second detach succeeded")
	}
}

func TestMTUOption(t *testing.T) {
	testutil.RequireRoot(t)
	m, _ := newManager(t)
	n := userNetwork(t, m, network.CreateOptions{Options: map[string]string{network.OptMTU: "1400"}})
	b, _ := newBox(t, m, "small", network.AttachOptions{Network: n.Name})
	if out, _ := exec.Command("ip", "-o", "link", "show", n.Bridge).CombinedOutput(); !strings.Contains(string(out), "mtu 1400") {
		t.Fatalf("bridge: %s", out)
	}
	if out := b.must("ip", "-o", "link", "show", "eth0"); !strings.Contains(out, "mtu 1400") {
		t.Fatalf("eth0: %s", out)
	}
}

func TestIPv6PublishedPortHairpin(t *testing.T) {
	testutil.RequireRoot(t)
	m, _ := newManager(t)
	n6 := userNetwork(t, m, network.CreateOptions{IPv6: true, Subnet6: netip.MustParsePrefix("fd21:9::/64")})
	web, wr := newBox(t, m, "web6", network.AttachOptions{Network: n6.Name, Ports: []portmap.Binding{{ContainerPort: 80, Proto: "tcp"}}})
	web.httpd("web6")
	peer, _ := newBox(t, m, "peer", network.AttachOptions{Network: n6.Name})
	port := wr[0].Endpoint.Ports[0].HostPort
	for _, host := range []string{wr[0].Endpoint.Gateway.String(), "[" + wr[0].Endpoint.Gateway6.String() + "]"} {
		url := fmt.Sprintf("http://%s:%d/", host, port)
		if out := peer.must("wget", "-q", "-O-", url); !strings.Contains(out, "hello from web6") {
			t.Fatalf("%s: %q", url, out)
		}
	}
}

// benchmarkAttach times what a container start waits for: a namespace
// ready, veth, address, routes (NewNetns + Attach on the default network).
// Release runs outside the timer.
func benchmarkAttach(b *testing.B, pool int) {
	// SETTLE=20ms lets the kernel finish destroying the last namespace
	// before the next start, as between starts spaced in time.
	settle, _ := time.ParseDuration(os.Getenv("SETTLE"))
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	cfg := newConfig(b, b.TempDir())
	cfg.PoolSize = pool
	tmpfsExecRoot(b, cfg)
	ctx := context.Background()
	m, err := network.New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Teardown(ctx)
	waitPool := func() {
		// between container starts the pool refills; give it that time
		for range 200 {
			if pool <= 0 || m.PoolReady() >= pool {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitPool()
	i := 0
	var times []time.Duration
	for b.Loop() {
		id := fmt.Sprintf("bench%011d", i)
		i++
		t0 := time.Now()
		if _, err := m.NewNetns(ctx, id); err != nil {
			b.Fatal(err)
		}
		if _, err := m.Attach(ctx, network.AttachOptions{ContainerID: id, Name: id}); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(t0))
		b.StopTimer()
		if err := m.Release(ctx, id); err != nil {
			b.Fatal(err)
		}
		waitPool()
		time.Sleep(settle)
		b.StartTimer()
	}
	// The median is what a container start sees; the mean carries the
	// machine's noise (other work on two cores).
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "ms-p50")
}

func BenchmarkAttachNoPool(b *testing.B) { benchmarkAttach(b, -1) }
func BenchmarkAttachPool(b *testing.B)   { benchmarkAttach(b, 4) }

// BenchmarkPublishedPort measures requests per second through a published
// port: a Go HTTP server in a namespace on the default bridge, reached from
// the host at 127.0.0.1:hostPort (kernel DNAT, no proxy), keep-alive
// connections, a 64 KiB body.
func BenchmarkPublishedPort(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	ctx := context.Background()
	cfg := newConfig(b, b.TempDir())
	tmpfsExecRoot(b, cfg)
	m, err := network.New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Teardown(ctx)
	id := "benchport0000000"
	path, err := m.NewNetns(ctx, id)
	if err != nil {
		b.Fatal(err)
	}
	r, err := m.Attach(ctx, network.AttachOptions{ContainerID: id, Ports: []portmap.Binding{{HostIP: netip.MustParseAddr("127.0.0.1"), ContainerPort: 8080, Proto: "tcp"}}})
	if err != nil {
		b.Fatal(err)
	}
	var ln net.Listener
	if err := netns.Do(path, func() (err error) { ln, err = net.Listen("tcp4", ":8080"); return err }); err != nil {
		b.Fatal(err)
	}
	big, small := strings.Repeat("x", 64<<10), "ok\n"
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			io.WriteString(w, small)
			return
		}
		io.WriteString(w, big)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	cases := []struct{ name, url string }{
		{"published-127.0.0.1", fmt.Sprintf("http://127.0.0.1:%d/", r.Endpoint.Ports[0].HostPort)},
		{"direct-container-ip", fmt.Sprintf("http://%s:8080/", r.Endpoint.IPv4.Addr())}, // the baseline: no NAT
	}
	if port, ok := dockerProxy(b, r.Endpoint.IPv4.Addr().String(), 8080); ok {
		cases = append(cases, struct{ name, url string }{"docker-proxy-127.0.0.1", fmt.Sprintf("http://127.0.0.1:%d/", port)})
	}
	for _, size := range []struct {
		path string
		n    int
	}{{"64KiB", len(big)}, {"small", len(small)}} {
		for _, tc := range cases {
			url := tc.url
			if size.path == "small" {
				url += "small"
			}
			b.Run(size.path+"/"+tc.name, func(b *testing.B) {
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
				defer client.CloseIdleConnections()
				b.SetBytes(int64(size.n))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						resp, err := client.Get(url)
						if err != nil {
							b.Error(err)
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				})
			})
		}
	}
}

// dockerProxy starts docker's userland proxy (Debian's docker.io) from
// 127.0.0.1:<free port> to ip:port, for the comparison docker users know;
// ok is false when it is not installed.
func dockerProxy(b *testing.B, ip string, port int) (int, bool) {
	bin, err := exec.LookPath("docker-proxy")
	if err != nil {
		return 0, false
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	host := l.Addr().(*net.TCPAddr).Port
	l.Close()
	// docker-proxy reports readiness on fd 3
	rd, wr, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	defer rd.Close()
	cmd := exec.Command(bin, "-proto", "tcp", "-host-ip", "127.0.0.1", "-host-port", fmt.Sprint(host),
		"-container-ip", ip, "-container-port", fmt.Sprint(port))
	cmd.ExtraFiles = []*os.File{wr}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	wr.Close()
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	buf := make([]byte, 64)
	n, _ := rd.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "0") {
		b.Fatalf("docker-proxy: %q", buf[:n])
	}
	return host, true
}

// TestReleaseWhileNamespaceHeld: a process still inside the namespace
// keeps it (and the veth pair) alive after Release; the host end is down,
// so the freed address cannot clash on the bridge.
func TestReleaseWhileNamespaceHeld(t *testing.T) {
	testutil.RequireRoot(t)
	m, _ := newManager(t)
	ctx := context.Background()
	id := "held000000000000"
	path, err := m.NewNetns(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.Attach(ctx, network.AttachOptions{ContainerID: id})
	if err != nil {
		t.Fatal(err)
	}
	holder := exec.Command("nsenter", "--net="+path, "sleep", "30")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	// wait until the holder is inside (nsenter then execs sleep)
	for i := 0; ; i++ {
		if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", holder.Process.Pid)); strings.HasPrefix(string(cmd), "sleep") {
			break
		}
		if i > 200 {
			t.Fatal("holder did not enter the namespace")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := m.Release(ctx, id); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "-o", "link", "show", r.Endpoint.HostVeth).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "state DOWN") {
		t.Fatalf("host end of a released endpoint is up:\n%s", out)
	}
}

// TestRestartSameContainer: a container restarted at once gets the same
// veth name while the kernel may still be destroying the old pair.
func TestRestartSameContainer(t *testing.T) {
	testutil.RequireRoot(t)
	m, _ := newManager(t)
	ctx := context.Background()
	id := "again00000000000"
	for i := range 20 {
		if _, err := m.NewNetns(ctx, id); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		if _, err := m.Attach(ctx, network.AttachOptions{ContainerID: id}); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		if err := m.Release(ctx, id); err != nil {
			t.Fatalf("stop %d: %v", i, err)
		}
	}
}

// TestPooledVethAdopted covers the pooled path: a namespace taken from a
// full pool brings its eth0 pair, which Attach renames, puts on the
// bridge and gives its MAC and the network's MTU.
func TestPooledVethAdopted(t *testing.T) {
	testutil.RequireRoot(t)
	m, cfg := newManager(t)
	n := userNetwork(t, m, network.CreateOptions{Options: map[string]string{network.OptMTU: "1300"}})
	// A full pool: while it still fills, the attach may take a namespace
	// (and veth) made after the snapshot below.
	full := cfg.PoolSize
	if full == 0 {
		full = 4
	}
	for i := 0; m.PoolReady() < full; i++ {
		if i > 500 {
			t.Fatal("pool did not fill")
		}
		time.Sleep(5 * time.Millisecond)
	}
	pooled := func() map[string]bool {
		out, _ := exec.Command("sh", "-c", "ip -o link | grep -o ': vbp[0-9a-f]*' | cut -c3-").Output()
		set := map[string]bool{}
		for _, l := range strings.Fields(string(out)) {
			set[l] = true
		}
		return set
	}
	before := pooled()
	b, r := newBox(t, m, "pooled", network.AttachOptions{Network: n.Name})
	after := pooled()
	adopted := 0
	for name := range before {
		if !after[name] {
			adopted++ // renamed to the endpoint's name
		}
	}
	if adopted != 1 {
		t.Fatalf("pooled veths before %v, after %v: want one adopted", before, after)
	}
	out := b.must("ip", "-o", "link", "show", "eth0")
	if !strings.Contains(out, "mtu 1300") || !strings.Contains(out, r[0].Endpoint.MAC) {
		t.Fatalf("eth0: %s (want mtu 1300, %s)", out, r[0].Endpoint.MAC)
	}
	host, _ := exec.Command("ip", "-o", "link", "show", r[0].Endpoint.HostVeth).CombinedOutput()
	if !strings.Contains(string(host), "master "+n.Bridge) || !strings.Contains(string(host), "mtu 1300") {
		t.Fatalf("host end: %s", host)
	}
	peer, _ := newBox(t, m, "peer", network.AttachOptions{Network: n.Name})
	peer.must("ping", "-c1", "-W2", ipOf(r[0]))
}
