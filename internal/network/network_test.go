package network_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/network/portmap"
	"github.com/berth-dev/berth/internal/testutil"
)

func userNetwork(t *testing.T, m *network.Manager, opts network.CreateOptions) network.Network {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "tnet-" + tag()
	}
	if opts.Options == nil {
		opts.Options = map[string]string{}
	}
	if opts.Options[network.OptBridgeName] == "" {
		opts.Options[network.OptBridgeName] = "bt-" + tag()
	}
	n, err := m.CreateNetwork(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestUserNetworkReachByIPAndName(t *testing.T) {
	testutil.RequireRoot(t)
	m, _ := newManager(t)
	n := userNetwork(t, m, network.CreateOptions{Labels: map[string]string{"a": "b"}})
	web, wr := newBox(t, m, "web", network.AttachOptions{Network: n.Name, Aliases: []string{"www"}})
	cli, cr := newBox(t, m, "cli", network.AttachOptions{Network: n.Name})
	web.httpd("web")

	if wr[0].Endpoint.IfName != "eth0" || wr[0].Endpoint.MAC == "" {
		t.Fatalf("endpoint %+v", wr[0].Endpoint)
	}
	cli.must("ping", "-c1", "-W2", ipOf(wr[0]))
	for _, name := range []string{"web", "www", web.id[:12], "web." + n.Name} {
		out := cli.must("wget", "-q", "-O-", "http://"+name+"/")
		if !strings.Contains(out, "hello from web") {
			t.Fatalf("wget %s: %q", name, out)
		}
	}
	out := web.must("nslookup", "cli")
	if !strings.Contains(out, ipOf(cr[0])) {
		t.Fatalf("nslookup cli from web: %s", out)
	}
	if out, err := cli.run("nslookup", "nosuchbox"); err == nil && strings.Contains(out, "Address: 10.") {
		t.Fatalf("unknown name resolved: %s", out)
	}
	resolv, _ := os.ReadFile(cr[0].ResolvConfPath)
	if !strings.Contains(string(resolv), "nameserver 127.0.0.11") {
		t.Fatalf("resolv.conf on a user network:\n%s", resolv)
	}
	// a container's own server on port 53 does not clash with the embedded one
	web.must("ip", "route", "show", "default")
	info, err := m.Inspect(n.Name)
	if err != nil || len(info.Endpoints) != 2 || info.Labels["a"] != "b" {
		t.Fatalf("inspect: %+v %v", info, err)
	}
	if err := m.RemoveNetwork(context.Background(), n.Name); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("remove network in use: %v", err)
	}
}

func TestDefaultNetworkFiles(t *testing.T) {
	testutil.RequireRoot(t)
	m, _ := newManager(t)
	b, r := newBox(t, m, "solo", network.AttachOptions{Hostname: "solo-host", Domainname: "example.org", MAC: net.HardwareAddr{2, 0xaa, 0, 0, 0, 1},
		DNS: []string{"192.0.2.53"}, DNSSearch: []string{"a.test"}, DNSOptions: []string{"ndots:2"}, ExtraHosts: []string{"db:10.9.9.9"}})
	hosts, _ := os.ReadFile(r[0].HostsPath)
	for _, want := range []string{"10.9.9.9\tdb", ipOf(r[0]) + "\tsolo-host.example.org solo-host", "127.0.0.1\tlocalhost"} {
		if !strings.Contains(string(hosts), want) {
			t.Errorf("hosts lacks %q:\n%s", want, hosts)
		}
	}
	resolv, _ := os.ReadFile(r[0].ResolvConfPath)
	if string(resolv) != "nameserver 192.0.2.53\nsearch a.test\noptions ndots:2\n" {
		t.Errorf("resolv.conf:\n%s", resolv)
	}
	if h, _ := os.ReadFile(r[0].HostnamePath); string(h) != "solo-host\n" {
		t.Errorf("hostname %q", h)
	}
	out := b.must("ip", "route")
	if !strings.Contains(out, "default via "+r[0].Endpoint.Gateway.String()) {
		t.Errorf("no default route via the bridge:\n%s", out)
	}
	out = b.must("ip", "link", "show", "eth0")
	if r[0].Endpoint.MAC != "02:aa:00:00:00:01" || !strings.Contains(out, r[0].Endpoint.MAC) {
		t.Errorf("eth0 MAC is not %s:\n%s", r[0].Endpoint.MAC, out)
	}
}

func TestPublishedPort(t *testing.T) {
	testutil.RequireRoot(t)
	m, _ := newManager(t)
	other := userNetwork(t, m, network.CreateOptions{})
	lo := netip.MustParseAddr("127.0.0.1")
	web, wr := newBox(t, m, "web", network.AttachOptions{Ports: []portmap.Binding{
		{HostIP: lo, ContainerPort: 80, Proto: "tcp"}, // ephemeral on 127.0.0.1
		{ContainerPort: 80, Proto: "tcp"},             // ephemeral on every address
	}})
	web.httpd("web")
	ports := wr[0].Endpoint.Ports
	if len(ports) != 2 || ports[0].HostPort == 0 || ports[1].HostPort == 0 {
		t.Fatalf("ports %+v", ports)
	}
	for _, p := range ports {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", p.HostPort))
		if err != nil {
			t.Fatalf("host → 127.0.0.1:%d: %v", p.HostPort, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "hello from web") {
			t.Fatalf("body %q", body)
		}
	}
	// hairpin: a neighbour on the same bridge through the gateway address
	same, sr := newBox(t, m, "same", network.AttachOptions{})
	url := fmt.Sprintf("http://%s:%d/", sr[0].Endpoint.Gateway, ports[1].HostPort)
	if out := same.must("wget", "-q", "-O-", url); !strings.Contains(out, "hello from web") {
		t.Fatalf("hairpin %s: %q", url, out)
	}
	// a container of another network, through its own gateway
	far, fr := newBox(t, m, "far", network.AttachOptions{Network: other.Name})
	url = fmt.Sprintf("http://%s:%d/", fr[0].Endpoint.Gateway, ports[1].HostPort)
	if out := far.must("wget", "-q", "-O-", url); !strings.Contains(out, "hello from web") {
		t.Fatalf("other network %s: %q", url, out)
	}
	// the 127.0.0.1-only port is not published on the gateway address
	url = fmt.Sprintf("http://%s:%d/", sr[0].Endpoint.Gateway, ports[0].HostPort)
	if out, err := same.run("wget", "-q", "-T", "2", "-O-", url); err == nil {
		t.Fatalf("127.0.0.1-only port answered on %s: %q", url, out)
	}
}

func TestPortInUseLeavesNothing(t *testing.T) {
	testutil.RequireRoot(t)
	m, _ := newManager(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := uint16(l.Addr().(*net.TCPAddr).Port)
	id := "busy-" + tag() + "000000000000"
	if _, err := m.NewNetns(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Release(context.Background(), id) })
	_, err = m.Attach(context.Background(), network.AttachOptions{ContainerID: id, Ports: []portmap.Binding{
		{HostIP: netip.MustParseAddr("127.0.0.1"), ContainerPort: 81, Proto: "tcp"},
		{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: busy, ContainerPort: 80, Proto: "tcp"},
	}})
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "port is already allocated") {
		t.Fatalf("err = %v", err)
	}
	if eps := m.Endpoints(id); len(eps) != 0 {
		t.Fatalf("endpoints after a failed attach: %+v", eps)
	}
	info, _ := m.Inspect(network.DefaultNetwork)
	if len(info.Endpoints) != 0 {
		t.Fatalf("network has endpoints: %+v", info.Endpoints)
	}
}

func TestBadInput(t *testing.T) {
	testutil.RequireRoot(t)
	m, cfg := newManager(t)
	id := "bad-" + tag() + "000000000000"
	if _, err := m.NewNetns(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Release(context.Background(), id) })
	fixed := userNetwork(t, m, network.CreateOptions{Subnet: netip.MustParsePrefix("10.218.0.0/24")})
	picked := userNetwork(t, m, network.CreateOptions{})
	attach := []struct {
		name string
		opts network.AttachOptions
		want error
	}{
		{"unknown network", network.AttachOptions{Network: "nope"}, errdefs.ErrNotFound},
		{"bad add-host", network.AttachOptions{ExtraHosts: []string{"db"}}, errdefs.ErrInvalidArgument},
		{"ip on default network", network.AttachOptions{IPv4: cfg.DefaultSubnet.Addr().Next().Next()}, errdefs.ErrInvalidArgument},
		{"ip outside subnet", network.AttachOptions{Network: fixed.Name, IPv4: netip.MustParseAddr("10.254.254.254")}, errdefs.ErrInvalidArgument},
		{"ip of gateway", network.AttachOptions{Network: fixed.Name, IPv4: netip.MustParseAddr("10.218.0.1")}, errdefs.ErrConflict},
		{"ip on a picked subnet", network.AttachOptions{Network: picked.Name, IPv4: netip.MustParseAddr("10.218.0.9")}, errdefs.ErrInvalidArgument},
		{"alias on default", network.AttachOptions{Aliases: []string{"x"}}, errdefs.ErrInvalidArgument},
		{"multicast mac", network.AttachOptions{MAC: net.HardwareAddr{1, 2, 3, 4, 5, 6}}, errdefs.ErrInvalidArgument},
	}
	for _, tt := range attach {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.ContainerID = id
			if _, err := m.Attach(context.Background(), tt.opts); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if eps := m.Endpoints(id); len(eps) != 0 {
				t.Fatalf("endpoint left: %+v", eps)
			}
		})
	}
	create := []struct {
		name string
		opts network.CreateOptions
		want error
	}{
		{"overlapping subnet", network.CreateOptions{Name: "o-" + tag(), Subnet: cfg.DefaultSubnet}, errdefs.ErrConflict},
		{"host route subnet", network.CreateOptions{Name: "o-" + tag(), Subnet: netip.MustParsePrefix("192.0.2.0/24")}, errdefs.ErrConflict},
		{"gateway outside", network.CreateOptions{Name: "o-" + tag(), Subnet: netip.MustParsePrefix("10.214.0.0/24"), Gateway: netip.MustParseAddr("10.215.0.1")}, errdefs.ErrInvalidArgument},
		{"predefined name", network.CreateOptions{Name: "bridge"}, errdefs.ErrForbidden},
		{"bad name", network.CreateOptions{Name: "a b"}, errdefs.ErrInvalidArgument},
		{"bad mtu", network.CreateOptions{Name: "o-" + tag(), Options: map[string]string{network.OptMTU: "x"}}, errdefs.ErrInvalidArgument},
		{"long bridge", network.CreateOptions{Name: "o-" + tag(), Options: map[string]string{network.OptBridgeName: "waytoolongbridgename"}}, errdefs.ErrInvalidArgument},
		{"driver", network.CreateOptions{Name: "o-" + tag(), Driver: "overlay"}, errdefs.ErrNotImplemented},
	}
	for _, tt := range create {
		t.Run(tt.name, func(t *testing.T) {
			before := len(m.Networks())
			if _, err := m.CreateNetwork(context.Background(), tt.opts); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if len(m.Networks()) != before {
				t.Fatal("a network was recorded")
			}
		})
	}
	if err := m.RemoveNetwork(context.Background(), network.DefaultNetwork); !errors.Is(err, errdefs.ErrForbidden) {
		t.Fatalf("remove default: %v", err)
	}
}

func TestNetworksAreIsolated(t *testing.T) {
	testutil.RequireRoot(t)
	m, _ := newManager(t)
	n1 := userNetwork(t, m, network.CreateOptions{})
	n2 := userNetwork(t, m, network.CreateOptions{})
	a, ar := newBox(t, m, "a", network.AttachOptions{Network: n1.Name})
	b, br := newBox(t, m, "b", network.AttachOptions{Network: n2.Name})
	a2, _ := newBox(t, m, "a2", network.AttachOptions{Network: n1.Name})
	a2.must("ping", "-c1", "-W2", ipOf(ar[0])) // same network: reachable
	if out, err := a.run("ping", "-c1", "-W1", ipOf(br[0])); err == nil {
		t.Fatalf("a reached b across networks: %s", out)
	}
	if out, err := b.run("ping", "-c1", "-W1", ipOf(ar[0])); err == nil {
		t.Fatalf("b reached a across networks: %s", out)
	}
	if out, err := a.run("nslookup", "b"); err == nil && strings.Contains(out, ipOf(br[0])) {
		t.Fatalf("a resolved b of another network: %s", out)
	}
}

// TestNoICC: icc off drops IP between the bridge's ports by rules of the
// bridge family, which need no br_netfilter (and the inet table has no
// rule for it, so where br_netfilter is loaded the bridge family's rules
// alone are tested); the table goes with the last such network.
func TestNoICC(t *testing.T) {
	testutil.RequireRoot(t)
	m, _ := newManager(t)
	n := userNetwork(t, m, network.CreateOptions{Options: map[string]string{network.OptICC: "false", network.OptMasquerade: "false"}})
	a, ar := newBox(t, m, "a", network.AttachOptions{Network: n.Name})
	b, br := newBox(t, m, "b", network.AttachOptions{Network: n.Name})
	if out, err := a.run("ping", "-c1", "-W1", ipOf(br[0])); err == nil {
		t.Fatalf("icc=false, yet a reached b: %s", out)
	}
	a.must("ping", "-c1", "-W2", ar[0].Endpoint.Gateway.String()) // the host is still there
	rules, _ := exec.Command("nft", "list", "table", "bridge", tableOf(m)).CombinedOutput()
	for _, ep := range []network.Endpoint{ar[0].Endpoint, br[0].Endpoint} {
		if !strings.Contains(string(rules), fmt.Sprintf(`iifname "%s" meta protocol ip drop`, ep.HostVeth)) {
			t.Errorf("no icc rule for %s:\n%s", ep.HostVeth, rules)
		}
	}
	out, _ := exec.Command("nft", "list", "table", "inet", tableOf(m)).CombinedOutput()
	if strings.Contains(string(out), fmt.Sprintf(`oifname != "%s" masquerade`, n.Bridge)) {
		t.Fatalf("enable_ip_masquerade=false, yet masqueraded:\n%s", out)
	}
	if _, err := m.CreateNetwork(context.Background(), network.CreateOptions{Name: "x-" + tag(), Options: map[string]string{network.OptICC: "maybe"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("bad boolean option: %v", err)
	}
	for _, id := range []string{a.id, b.id} {
		if err := m.Release(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.RemoveNetwork(context.Background(), n.Name); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("nft", "list", "table", "bridge", tableOf(m)).CombinedOutput(); err == nil {
		t.Fatalf("bridge table left without an icc-off network:\n%s", out)
	}
}

func TestInternalHasNoRouteOut(t *testing.T) {
	testutil.RequireRoot(t)
	m, _ := newManager(t)
	in := userNetwork(t, m, network.CreateOptions{Internal: true, Subnet: netip.MustParsePrefix("10.216.0.0/24"), IPRange: netip.MustParsePrefix("10.216.0.128/25")})
	a, ar := newBox(t, m, "a", network.AttachOptions{Network: in.Name})
	b, _ := newBox(t, m, "b", network.AttachOptions{Network: in.Name, IPv4: netip.MustParseAddr("10.216.0.7")})
	if got := ar[0].Endpoint.IPv4.Addr(); !netip.MustParsePrefix("10.216.0.128/25").Contains(got) {
		t.Fatalf("address %s outside --ip-range", got)
	}
	if out := a.must("ip", "route"); strings.Contains(out, "default") {
		t.Fatalf("internal network gave a default route:\n%s", out)
	}
	// no route to an address off the network: the kernel refuses at once
	if out, err := a.run("ip", "route", "get", "192.0.2.2"); err == nil {
		t.Fatalf("route out of an internal network: %s", out)
	}
	b.must("ping", "-c1", "-W2", ipOf(ar[0])) // inside the network: fine
	out, _ := exec.Command("nft", "list", "table", "inet", tableOf(m)).CombinedOutput()
	if !strings.Contains(string(out), fmt.Sprintf(`iifname "%s" oifname != "%s" drop`, in.Bridge, in.Bridge)) {
		t.Fatalf("no internal drop rule:\n%s", out)
	}
	if strings.Contains(string(out), "ip saddr 10.216.0.0/24 oifname != \""+in.Bridge+"\" masquerade") {
		t.Fatalf("internal network masqueraded:\n%s", out)
	}
}

func tableOf(m *network.Manager) string { return m.Config().Table }

func TestMasqueradeRuleWorks(t *testing.T) {
	testutil.RequireRoot(t)
	m, _ := newManager(t)
	outside(t, "10.217.0.1/30", "10.217.0.2/30")
	a, _ := newBox(t, m, "a", network.AttachOptions{})
	// the outside answers pings; it has no route back to the container's
	// subnet, so only a masqueraded ping gets an answer
	a.must("ping", "-c1", "-W2", "10.217.0.2")
}
