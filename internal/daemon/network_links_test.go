package daemon

import (
	"context"
	"errors"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	containertypes "github.com/moby/moby/api/types/container"
	networktypes "github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

// runOutput starts a created container, waits for its exit and returns
// its output and exit code.
func runOutput(t *testing.T, e *Engine, id string) (string, int64) {
	t.Helper()
	if err := e.ContainerStart(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	code := waitExit(t, e, id, containertypes.WaitConditionNotRunning)
	return containerOutput(t, e, id), code
}

// TestDisconnectStoppedFromItsMode: docker lets a stopped container leave
// the network of its mode, and it then starts with loopback only (its
// mode unchanged), until connected again; a running one left with no
// network keeps running and gets it back on connect.
func TestDisconnectStoppedFromItsMode(t *testing.T) {
	testutil.RequireRoot(t)
	e, _ := netCtrEngine(t)
	ctx := context.Background()
	id := create(t, e, "lonely", containertypes.Config{Cmd: []string{"sh", "-c", "ip -o link | cut -d: -f2; cat /etc/hosts"}}, nil)
	if err := e.NetworkDisconnect(ctx, "bridge", networktypes.DisconnectRequest{Container: "lonely"}); err != nil {
		t.Fatal(err)
	}
	if err := e.NetworkDisconnect(ctx, "bridge", networktypes.DisconnectRequest{Container: "lonely"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second disconnect: %v", err)
	}
	ins, err := e.ContainerInspect(ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins.NetworkSettings.Networks) != 0 || ins.HostConfig.NetworkMode != "bridge" {
		t.Fatalf("after disconnect: networks %v, mode %s", ins.NetworkSettings.Networks, ins.HostConfig.NetworkMode)
	}
	out, code := runOutput(t, e, id)
	if code != 0 || strings.Contains(out, "eth0") || !strings.Contains(out, "lo") || !strings.Contains(out, "localhost") {
		t.Fatalf("started on no network (exit %d):\n%s", code, out)
	}
	// connected again while stopped: eth0 at the next start
	if err := e.NetworkConnect(ctx, "bridge", networktypes.ConnectRequest{Container: "lonely"}); err != nil {
		t.Fatal(err)
	}
	if err := e.NetworkConnect(ctx, "bridge", networktypes.ConnectRequest{Container: "lonely"}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("second connect: %v", err)
	}
	if out, _ := runOutput(t, e, id); !strings.Contains(out, "eth0") {
		t.Fatalf("connected again, started:\n%s", out)
	}

	// running: disconnected from everything, then connected back, its
	// published port with it
	p := networktypes.MustParsePort("80/tcp")
	run := create(t, e, "runner", containertypes.Config{Cmd: []string{"sleep", "100"}},
		&containertypes.HostConfig{PortBindings: networktypes.PortMap{p: {{HostIP: netip.MustParseAddr("127.0.0.1")}}}})
	if err := e.ContainerStart(ctx, run); err != nil {
		t.Fatal(err)
	}
	if err := e.NetworkDisconnect(ctx, "bridge", networktypes.DisconnectRequest{Container: run}); err != nil {
		t.Fatal(err)
	}
	if nets, _, ok := e.networkSettings(run); ok {
		t.Fatalf("endpoints after disconnect: %v", nets)
	}
	if err := e.NetworkConnect(ctx, "bridge", networktypes.ConnectRequest{Container: run}); err != nil {
		t.Fatal(err)
	}
	if nets, ports, _ := e.networkSettings(run); nets["bridge"] == nil || !nets["bridge"].IPAddress.IsValid() || len(ports[p]) != 1 {
		t.Fatalf("connected back while running: %v, ports %v", nets, ports)
	}
}

// TestLinks: --link at create needs the container; at start it must run,
// and the linking container sees the alias, hostname and name in its
// hosts file and docker's variables in its environment; rm --link
// removes the link; a cycle is refused.
func TestLinks(t *testing.T) {
	testutil.RequireRoot(t)
	e, _ := netCtrEngine(t)
	ctx := context.Background()
	if _, err := e.ContainerCreate(ctx, ContainerCreateOptions{Config: &containertypes.Config{Image: "busybox"},
		HostConfig: &containertypes.HostConfig{Links: []string{"nosuch:db"}}}); err == nil || !strings.Contains(err.Error(), "could not get container for nosuch") {
		t.Fatalf("link to a missing container: %v", err)
	}
	db := create(t, e, "db", containertypes.Config{Cmd: []string{"sleep", "100"}, Env: []string{"SECRET=s3", "PATH=/bin"},
		ExposedPorts: networktypes.PortSet{networktypes.MustParsePort("5432/tcp"): {}, networktypes.MustParsePort("53/udp"): {}}}, nil)
	if _, err := e.ContainerCreate(ctx, ContainerCreateOptions{Config: &containertypes.Config{Image: "busybox"},
		HostConfig: &containertypes.HostConfig{NetworkMode: "host", Links: []string{"db"}}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("link from host mode: %v", err)
	}
	web := create(t, e, "web", containertypes.Config{Cmd: []string{"sh", "-c", "cat /etc/hosts; env | sort; ping -c1 -W2 pg >/dev/null && echo ping-ok"}},
		&containertypes.HostConfig{Links: []string{"db:pg"}})
	ins, err := e.ContainerInspect(ctx, web, false)
	if err != nil || len(ins.HostConfig.Links) != 1 || ins.HostConfig.Links[0] != "/db:/web/pg" {
		t.Fatalf("stored links %v %v", ins.HostConfig.Links, err)
	}
	if err := e.ContainerStart(ctx, web); err == nil || !strings.Contains(err.Error(), "Cannot link to a non running container: /db AS /web/pg") {
		t.Fatalf("start linked to a stopped container: %v", err)
	}
	if err := e.ContainerStart(ctx, db); err != nil {
		t.Fatal(err)
	}
	dbNets, _, _ := e.networkSettings(db)
	ip := dbNets["bridge"].IPAddress.String()
	out, code := runOutput(t, e, web)
	for _, want := range []string{
		ip + "\tpg " + db[:12] + " db\n",
		"PG_PORT=udp://" + ip + ":53\n",
		"PG_PORT_5432_TCP=tcp://" + ip + ":5432\n",
		"PG_PORT_5432_TCP_ADDR=" + ip + "\n",
		"PG_PORT_5432_TCP_PORT=5432\n",
		"PG_PORT_5432_TCP_PROTO=tcp\n",
		"PG_PORT_53_UDP_PROTO=udp\n",
		"PG_NAME=/web/pg\n",
		"PG_ENV_SECRET=s3\n",
		"ping-ok",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("linking container lacks %q:\n%s", want, out)
		}
	}
	if code != 0 || strings.Contains(out, "PG_ENV_PATH") {
		t.Errorf("exit %d; PATH is not passed on:\n%s", code, out)
	}
	// a link back from db to web would close a cycle
	if _, err := e.ContainerCreate(ctx, ContainerCreateOptions{Name: "cyc", Config: &containertypes.Config{Image: "busybox"},
		HostConfig: &containertypes.HostConfig{Links: []string{"web:w"}}}); err != nil {
		t.Fatalf("a link to web: %v", err)
	}
	if err := e.ContainerRemove(ctx, "db", ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ContainerCreate(ctx, ContainerCreateOptions{Name: "db", Config: &containertypes.Config{Image: "busybox"},
		HostConfig: &containertypes.HostConfig{Links: []string{"cyc:c"}}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("a link closing the cycle db → cyc → web → db: %v", err)
	}

	// rm --link
	if err := e.ContainerRemove(ctx, "pg", ContainerRemoveOptions{RemoveLink: true}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("rm --link without a parent: %v", err)
	}
	if err := e.ContainerRemove(ctx, "/web/pg", ContainerRemoveOptions{RemoveLink: true}); err != nil {
		t.Fatal(err)
	}
	if ins, _ := e.ContainerInspect(ctx, web, false); len(ins.HostConfig.Links) != 0 {
		t.Fatalf("links after rm --link: %v", ins.HostConfig.Links)
	}
	if err := e.ContainerRemove(ctx, "web/pg", ContainerRemoveOptions{RemoveLink: true}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("rm --link twice: %v", err)
	}
}

// TestLinksOnUserNetwork: on a user-defined network a link is an alias
// the embedded DNS answers for the linking container alone.
func TestLinksOnUserNetwork(t *testing.T) {
	testutil.RequireRoot(t)
	e, _ := netCtrEngine(t)
	ctx := context.Background()
	n := "lnk-" + netTag()
	if _, err := e.NetworkCreate(ctx, networktypes.CreateRequest{Name: n, Options: map[string]string{"com.docker.network.bridge.name": "bnl" + netTag()}}); err != nil {
		t.Fatal(err)
	}
	mode := &containertypes.HostConfig{NetworkMode: containertypes.NetworkMode(n)}
	srv := create(t, e, "srv", containertypes.Config{Cmd: []string{"sleep", "100"}}, mode)
	if err := e.ContainerStart(ctx, srv); err != nil {
		t.Fatal(err)
	}
	linked := create(t, e, "linked", containertypes.Config{Cmd: []string{"ping", "-c1", "-W2", "backend"}},
		&containertypes.HostConfig{NetworkMode: containertypes.NetworkMode(n), Links: []string{"srv:backend"}})
	if out, code := runOutput(t, e, linked); code != 0 {
		t.Fatalf("by the link's alias: exit %d\n%s", code, out)
	}
	other := create(t, e, "other", containertypes.Config{Cmd: []string{"ping", "-c1", "-W2", "backend"}}, mode)
	if out, code := runOutput(t, e, other); code == 0 {
		t.Fatalf("a container without the link resolved its alias:\n%s", out)
	}
	// network connect --link: a running container on the default network
	// joins n with a link of its own there
	late := create(t, e, "late", containertypes.Config{Cmd: []string{"sleep", "100"}}, nil)
	if err := e.ContainerStart(ctx, late); err != nil {
		t.Fatal(err)
	}
	if err := e.NetworkConnect(ctx, "bridge", networktypes.ConnectRequest{Container: "other",
		EndpointConfig: &networktypes.EndpointSettings{Links: []string{"srv:x"}}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("connect --link on the default network: %v", err)
	}
	if err := e.NetworkConnect(ctx, n, networktypes.ConnectRequest{Container: "late",
		EndpointConfig: &networktypes.EndpointSettings{Links: []string{"srv:api"}}}); err != nil {
		t.Fatal(err)
	}
	m, _ := e.netManager()
	srvNets, _, _ := e.networkSettings(srv)
	out, err := exec.Command("nsenter", "--net="+m.NetnsPath(late), "busybox", "nslookup", "api", "127.0.0.11").CombinedOutput()
	if err != nil || !strings.Contains(string(out), srvNets[n].IPAddress.String()) {
		t.Fatalf("late resolving its connect link api (srv at %s): %v\n%s", srvNets[n].IPAddress, err, out)
	}
}
