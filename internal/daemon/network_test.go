package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	containertypes "github.com/moby/moby/api/types/container"
	networktypes "github.com/moby/moby/api/types/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

func netTag() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// netEngine is an Engine with networking only (no containers), on a
// bridge and nftables table of the test's own.
func netEngine(t *testing.T) *Engine {
	t.Helper()
	root := t.TempDir()
	e, err := New(context.Background(), Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	cfg := NetworkConfig{ExecRoot: filepath.Join(root, "run"), DefaultBridge: "bd" + netTag(),
		DefaultSubnet: netip.MustParsePrefix("10.219.0.0/24"), Table: "berth_d" + netTag()}
	if err := e.InitNetworks(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.TeardownNetworks(context.Background()); err != nil {
			t.Error(err)
		}
		e.Close()
	})
	return e
}

func TestNetworkAPI(t *testing.T) {
	testutil.RequireRoot(t)
	e := netEngine(t)
	ctx := context.Background()
	v6 := true
	name := "api-" + netTag()
	res, err := e.NetworkCreate(ctx, networktypes.CreateRequest{Name: name, EnableIPv6: &v6, Labels: map[string]string{"k": "v"},
		Options: map[string]string{"com.docker.network.bridge.name": "bda" + netTag()},
		IPAM:    &networktypes.IPAM{Config: []networktypes.IPAMConfig{{Subnet: netip.MustParsePrefix("10.220.0.0/24")}, {Subnet: netip.MustParsePrefix("fd22::/64")}}}})
	if err != nil {
		t.Fatal(err)
	}
	list, err := e.NetworkList(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		f    Filters
		want []string
	}{
		{Filters{"type": {"custom"}}, []string{name}},
		{Filters{"label": {"k=v"}}, []string{name}},
		{Filters{"driver": {"null"}}, []string{"none"}},
		{Filters{"name": {"api-"}, "dangling": {"true"}}, []string{name}},
		{Filters{"type": {"builtin"}, "name": {"o"}}, []string{"host", "none"}},
	} {
		got, err := e.NetworkList(ctx, tt.f)
		var names []string
		for _, n := range got {
			names = append(names, n.Name)
		}
		if err != nil || strings.Join(names, ",") != strings.Join(tt.want, ",") {
			t.Errorf("ls %v: %v %v, want %v", tt.f, names, err, tt.want)
		}
	}
	if _, err := e.NetworkList(ctx, Filters{"bogus": {"x"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad filter: %v", err)
	}
	names := map[string]bool{}
	for _, n := range list {
		names[n.Name] = true
	}
	for _, want := range []string{"bridge", "host", "none", name} {
		if !names[want] {
			t.Errorf("network ls lacks %s", want)
		}
	}
	in, err := e.NetworkInspect(ctx, res.ID[:12])
	if err != nil || in.Name != name || !in.EnableIPv6 || len(in.IPAM.Config) != 2 || in.Labels["k"] != "v" {
		t.Fatalf("inspect %+v %v", in, err)
	}
	if err := e.NetworkRemove(ctx, "host"); !errors.Is(err, errdefs.ErrForbidden) {
		t.Fatalf("rm host: %v", err)
	}
	if _, err := e.NetworkCreate(ctx, networktypes.CreateRequest{Name: name}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("duplicate name: %v", err)
	}
	if pruned, err := e.NetworksPrune(ctx, Filters{"label": {"k=other"}}); err != nil || len(pruned) != 0 {
		t.Fatalf("prune with a label that does not match: %v %v", pruned, err)
	}
	pruned, err := e.NetworksPrune(ctx, Filters{"until": {"0s"}})
	if err != nil || len(pruned) != 1 || pruned[0] != name {
		t.Fatalf("prune %v %v", pruned, err)
	}
	if _, err := e.NetworkInspect(ctx, name); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("inspect after prune: %v", err)
	}
}

// TestNetworkUpDown drives the calls the container lifecycle makes, with a
// record as create writes it and no process: the namespace, ports and
// inspect's settings.
func TestNetworkUpDown(t *testing.T) {
	testutil.RequireRoot(t)
	e := netEngine(t)
	ctx := context.Background()
	p := networktypes.MustParsePort("80/tcp")
	r := &container.Record{ID: strings.Repeat("ab", 32), Name: "web",
		Config: &containertypes.Config{Hostname: "webhost", ExposedPorts: networktypes.PortSet{networktypes.MustParsePort("53/udp"): {}}},
		HostConfig: &containertypes.HostConfig{NetworkMode: "bridge", PublishAllPorts: true,
			PortBindings: networktypes.PortMap{p: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: ""}}},
			ExtraHosts:   []string{"gw:host-gateway"}}}
	cn, err := e.networkUp(ctx, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.networkDown(ctx, r.ID) })
	if cn.NetnsPath == "" || cn.HostsPath == "" {
		t.Fatalf("%+v", cn)
	}
	out, err := exec.Command("nsenter", "--net="+cn.NetnsPath, "ip", "-o", "addr", "show", "eth0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "10.219.0.") {
		t.Fatalf("eth0: %v %s", err, out)
	}
	hosts, _ := os.ReadFile(cn.HostsPath)
	if !strings.Contains(string(hosts), "10.219.0.1\tgw") || !strings.Contains(string(hosts), "webhost") {
		t.Fatalf("hosts:\n%s", hosts)
	}
	nets, ports, ok := e.networkSettings(r.ID)
	if !ok || nets["bridge"] == nil || !nets["bridge"].IPAddress.IsValid() || len(ports[p]) != 1 || ports[p][0].HostPort == "0" {
		t.Fatalf("settings %+v %+v", nets, ports)
	}
	if len(ports[networktypes.MustParsePort("53/udp")]) != 1 {
		t.Fatalf("-P did not publish 53/udp: %+v", ports)
	}
	if err := e.networkDown(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := e.networkSettings(r.ID); ok {
		t.Fatal("endpoints after networkDown")
	}
	if _, err := os.Stat(cn.NetnsPath); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("netns file after networkDown: %v", err)
	}
	// none and host are not ours
	r.HostConfig.NetworkMode = "none"
	if cn, err := e.networkUp(ctx, r, nil); err != nil || cn.NetnsPath != "" {
		t.Fatalf("none: %+v %v", cn, err)
	}
}

func TestPrepareNetworkFitsTheSpec(t *testing.T) {
	testutil.RequireRoot(t)
	e := netEngine(t)
	ctx := context.Background()
	r := &container.Record{ID: strings.Repeat("cd", 32), Name: "app", Config: &containertypes.Config{Hostname: "app"},
		HostConfig: &containertypes.HostConfig{NetworkMode: "bridge"}}
	spec := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}}},
		Mounts: []specs.Mount{{Destination: "/etc/hosts", Type: "bind", Source: "/old/hosts", Options: []string{"rbind"}}}}
	undo, err := e.prepareNetwork(ctx, r, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer undo()
	if p := spec.Linux.Namespaces[1].Path; p == "" || !strings.HasSuffix(p, r.ID) {
		t.Fatalf("netns path %q", p)
	}
	dsts := map[string]string{}
	for _, m := range spec.Mounts {
		dsts[m.Destination] = m.Source
	}
	if len(spec.Mounts) != 3 || dsts["/etc/hosts"] == "/old/hosts" || dsts["/etc/resolv.conf"] == "" || dsts["/etc/hostname"] == "" {
		t.Fatalf("mounts %+v", spec.Mounts)
	}
	undo()
	if _, _, ok := e.networkSettings(r.ID); ok {
		t.Fatal("undo left endpoints")
	}
	// host mode: nothing changes
	r.HostConfig.NetworkMode = "host"
	spec2 := &specs.Spec{}
	if undo2, err := e.prepareNetwork(ctx, r, spec2, nil); err != nil || spec2.Linux != nil {
		t.Fatalf("host mode changed the spec: %+v %v", spec2, err)
	} else {
		undo2()
	}
}

// TestContainersByNameAndPublishedPort runs real containers through the
// engine on a user network: one serves HTTP with a port published on
// 127.0.0.1, another fetches it by its network alias through the embedded
// DNS, and the host fetches it through the published port.
func TestContainersByNameAndPublishedPort(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx := context.Background()
	c, _ := e.ctrs()
	cfg := NetworkConfig{ExecRoot: c.cfg.ExecRoot, DefaultBridge: "bn" + netTag(),
		DefaultSubnet: netip.MustParsePrefix("10.221.0.0/24"), Table: "berth_n" + netTag()}
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
	net := "app-" + netTag()
	if _, err := e.NetworkCreate(ctx, networktypes.CreateRequest{Name: net, Options: map[string]string{"com.docker.network.bridge.name": "bna" + netTag()}}); err != nil {
		t.Fatal(err)
	}
	p := networktypes.MustParsePort("80/tcp")
	web, err := e.ContainerCreate(ctx, ContainerCreateOptions{Name: "web",
		Config: &containertypes.Config{Image: "busybox", Cmd: []string{"sh", "-c", "mkdir -p /tmp/www && echo hello-web > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www"}},
		HostConfig: &containertypes.HostConfig{NetworkMode: containertypes.NetworkMode(net),
			PortBindings: networktypes.PortMap{p: {{HostIP: netip.MustParseAddr("127.0.0.1")}}}},
		NetworkingConfig: &networktypes.NetworkingConfig{EndpointsConfig: map[string]*networktypes.EndpointSettings{net: {Aliases: []string{"www"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ContainerStart(ctx, web.ID); err != nil {
		t.Fatal(err)
	}
	ins, err := e.ContainerInspect(ctx, web.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	bs := ins.NetworkSettings.Ports[p]
	if len(bs) != 1 || bs[0].HostPort == "" || bs[0].HostPort == "0" {
		t.Fatalf("ports %+v", ins.NetworkSettings.Ports)
	}
	url := "http://127.0.0.1:" + bs[0].HostPort + "/"
	var body []byte
	for i := 0; ; i++ { // until httpd listens
		resp, err := http.Get(url)
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
		if i > 100 {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if string(body) != "hello-web\n" {
		t.Fatalf("GET %s: %q", url, body)
	}
	client := create(t, e, "client", containertypes.Config{Cmd: []string{"sh", "-c", "wget -q -O- http://www/ && wget -q -O- http://web/; exit $?"}},
		&containertypes.HostConfig{NetworkMode: containertypes.NetworkMode(net)})
	if err := e.ContainerStart(ctx, client); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, e, client, containertypes.WaitConditionNotRunning); code != 0 {
		t.Fatalf("client by name: exit %d", code)
	}

	// connect a running container to a second network, under an alias
	net2 := "back-" + netTag()
	if _, err := e.NetworkCreate(ctx, networktypes.CreateRequest{Name: net2, Options: map[string]string{"com.docker.network.bridge.name": "bnb" + netTag()}}); err != nil {
		t.Fatal(err)
	}
	if err := e.NetworkConnect(ctx, net2, networktypes.ConnectRequest{Container: "web", EndpointConfig: &networktypes.EndpointSettings{Aliases: []string{"w2"}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.NetworkConnect(ctx, net2, networktypes.ConnectRequest{Container: "web"}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("second connect: %v", err)
	}
	if nets, _, _ := e.networkSettings(web.ID); len(nets) != 2 || nets[net2] == nil {
		t.Fatalf("after connect: %+v", nets)
	}
	c2 := create(t, e, "c2", containertypes.Config{Cmd: []string{"sh", "-c", "wget -q -O- http://w2/; exit $?"}},
		&containertypes.HostConfig{NetworkMode: containertypes.NetworkMode(net2)})
	if err := e.ContainerStart(ctx, c2); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, e, c2, containertypes.WaitConditionNotRunning); code != 0 {
		t.Fatalf("by the alias of a connected network: exit %d", code)
	}
	if err := e.NetworkDisconnect(ctx, net2, networktypes.DisconnectRequest{Container: "web"}); err != nil {
		t.Fatal(err)
	}
	if nets, _, _ := e.networkSettings(web.ID); len(nets) != 1 {
		t.Fatalf("after disconnect: %+v", nets)
	}
	// a stopped container: the connection waits in its record for start
	later := create(t, e, "later", containertypes.Config{Cmd: []string{"sleep", "100"}}, nil)
	if err := e.NetworkConnect(ctx, net2, networktypes.ConnectRequest{Container: later}); err != nil {
		t.Fatal(err)
	}
	if err := e.ContainerStart(ctx, later); err != nil {
		t.Fatal(err)
	}
	if nets, _, _ := e.networkSettings(later); len(nets) != 2 || nets["bridge"] == nil || nets[net2] == nil {
		t.Fatalf("stopped container connected, then started: %+v", nets)
	}
}
