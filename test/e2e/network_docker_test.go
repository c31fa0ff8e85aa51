package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// netArgs are daemon flags for a default bridge, subnet and nftables
// table of the test's own, so that its daemon neither clashes with a real
// berth0 nor with another test's daemon; bridge is the bridge's name.
func netArgs() (args []string, bridge string) {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	tag := hex.EncodeToString(b)
	bridge = "bn" + tag
	return []string{"--bridge", bridge, "--bip", fmt.Sprintf("10.%d.%d.1/24", 200+int(b[0])%50, b[1]),
		"--nft-table", "berth_e2e" + tag}, bridge
}

// netDaemon starts a daemon with netArgs.
func netDaemon(t *testing.T, opts DaemonOptions) (*Daemon, string) {
	t.Helper()
	args, bridge := netArgs()
	opts.Args = append(opts.Args, args...)
	return StartDaemon(t, opts), bridge
}

// httpdCmd serves "hello from NAME" with busybox httpd on port 80.
func httpdCmd(name string) []string {
	return []string{"sh", "-c", "mkdir -p /www && echo hello from " + name + " > /www/index.html && exec httpd -f -p 80 -h /www"}
}

// httpGet fetches url from the host, retrying briefly while the server in
// the container starts.
func httpGet(t *testing.T, d *Daemon, ctr, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v\n%s\n%s", url, err, d.Docker(t, "ps", "-a"), d.Docker(t, "logs", ctr))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDockerCLINetworking drives networking through the real docker CLI:
// user networks with name resolution, isolation between networks, an
// internal network, a published port, the host and container: modes,
// connect and disconnect of a running container, and the network verbs'
// answers and errors.
func TestDockerCLINetworking(t *testing.T) {
	d, bridge := netDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	t.Cleanup(func() {
		if ids := strings.Fields(d.DockerOK(t, "ps", "-aq")); len(ids) > 0 {
			d.DockerOK(t, append([]string{"rm", "-f"}, ids...)...)
		}
		d.Docker(t, "network", "prune", "-f")
	})

	ls := d.DockerOK(t, "network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}")
	for _, want := range []string{"bridge bridge local", "host host local", "none null local"} {
		if !strings.Contains(ls, want) {
			t.Errorf("network ls: no %q in\n%s", want, ls)
		}
	}
	// The default network: an address from --bip on eth0, a default route.
	out := d.DockerOK(t, "run", "--rm", "busybox", "sh", "-c", "ip -4 addr show eth0; ip route")
	bip := strings.TrimSpace(d.DockerOK(t, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "bridge"))
	if _, subnet, err := net.ParseCIDR(bip); err != nil || !strings.Contains(out, "default via") ||
		!strings.Contains(out, "inet "+strings.TrimSuffix(subnet.IP.String(), ".0")) {
		t.Errorf("container on the default bridge (subnet %s):\n%s", bip, out)
	}

	d.DockerOK(t, "network", "create", "front")
	d.DockerOK(t, "network", "create", "back")
	d.DockerOK(t, "network", "create", "--internal", "--subnet", "10.199.77.0/24", "closed")
	if r := d.Docker(t, "network", "create", "front"); r.Code == 0 || !strings.Contains(r.Stderr, "network with name front already exists") {
		t.Errorf("network create twice: %s", r)
	}

	d.DockerOK(t, append([]string{"run", "-d", "--name", "web", "--network", "front", "--network-alias", "www"}, append([]string{"busybox"}, httpdCmd("web")...)...)...)
	webIP := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", `{{(index .NetworkSettings.Networks "front").IPAddress}}`, "web"))
	if net.ParseIP(webIP) == nil {
		t.Fatalf("web's address on front: %q\n%s\n%s", webIP, d.Docker(t, "ps", "-a"), d.Docker(t, "inspect", "web"))
	}
	// By name (and alias) on the same network: ping, nc and wget.
	out = d.DockerOK(t, "run", "--rm", "--network", "front", "busybox", "sh", "-c",
		"ping -c1 -W2 web >/dev/null && echo ping-ok; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc web 80 | tail -n1; wget -qO- http://www/")
	if !strings.Contains(out, "ping-ok") || strings.Count(out, "hello from web") != 2 {
		t.Errorf("container on front reaching web by name:\n%s", out)
	}
	// Another network cannot reach it, by name or by address.
	r := d.Docker(t, "run", "--rm", "--network", "back", "busybox", "ping", "-c1", "-W1", webIP)
	if r.Code == 0 {
		t.Errorf("container on back reached web at %s: %s", webIP, r)
	}
	if r := d.Docker(t, "run", "--rm", "--network", "back", "busybox", "nslookup", "web"); r.Code == 0 && strings.Contains(r.Stdout, webIP) {
		t.Errorf("back resolves web: %s", r)
	}
	// An internal network has no route out: no default route, and the
	// host's own address beyond the bridge is not reachable.
	out = d.DockerOK(t, "run", "--rm", "--network", "closed", "busybox", "ip", "route")
	if strings.Contains(out, "default") {
		t.Errorf("internal network has a default route:\n%s", out)
	}
	if hostIP := hostAddr(t); hostIP != "" {
		if r := d.Docker(t, "run", "--rm", "--network", "closed", "busybox", "ping", "-c1", "-W1", hostIP); r.Code == 0 {
			t.Errorf("container on an internal network reached the host's %s: %s", hostIP, r)
		}
	}

	// A published port answers on 127.0.0.1 and docker port shows it.
	port := freePort(t)
	d.DockerOK(t, append([]string{"run", "-d", "--name", "pub", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "busybox"}, httpdCmd("pub")...)...)
	if got := httpGet(t, d, "pub", fmt.Sprintf("http://127.0.0.1:%d/", port)); !strings.Contains(got, "hello from pub") {
		t.Errorf("published port %d: %q", port, got)
	}
	if got := strings.TrimSpace(d.DockerOK(t, "port", "pub")); got != fmt.Sprintf("80/tcp -> 127.0.0.1:%d", port) {
		t.Errorf("docker port pub: %q", got)
	}
	if got := strings.TrimSpace(d.DockerOK(t, "port", "pub", "80")); got != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Errorf("docker port pub 80: %q", got)
	}
	if got := d.DockerOK(t, "ps", "--filter", "name=pub", "--format", "{{.Ports}}"); !strings.Contains(got, fmt.Sprintf("127.0.0.1:%d->80/tcp", port)) {
		t.Errorf("docker ps ports: %q", got)
	}
	// Published on every address, with -P beside it: containers reach it
	// through their gateway, on another network and on the same bridge
	// (hairpin), and docker port lists the ephemeral port too.
	port2 := freePort(t)
	d.DockerOK(t, append([]string{"run", "-d", "--name", "pub2", "-p", fmt.Sprintf("%d:80", port2), "--expose", "81", "-P", "busybox"}, httpdCmd("pub2")...)...)
	httpGet(t, d, "pub2", fmt.Sprintf("http://127.0.0.1:%d/", port2))
	backGW := strings.TrimSpace(d.DockerOK(t, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "back"))
	out = d.DockerOK(t, "run", "--rm", "--network", "back", "busybox", "wget", "-qO-", fmt.Sprintf("http://%s:%d/", backGW, port2))
	if !strings.Contains(out, "hello from pub2") {
		t.Errorf("published port from another network's container: %q", out)
	}
	out = d.DockerOK(t, "run", "--rm", "busybox", "sh", "-c", fmt.Sprintf("wget -qO- http://$(ip route | awk '/default/{print $3}'):%d/", port2))
	if !strings.Contains(out, "hello from pub2") {
		t.Errorf("published port from a container on the same bridge: %q", out)
	}
	if out := d.DockerOK(t, "port", "pub2", "81/tcp"); !strings.HasPrefix(out, "0.0.0.0:") {
		t.Errorf("docker port pub2 81/tcp (-P): %q", out)
	}
	// The port is the container's: a second one on it is refused, and
	// leaves no container behind.
	if r := d.Docker(t, "run", "-d", "--name", "clash", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "busybox", "sleep", "9"); r.Code == 0 ||
		!strings.Contains(r.Stderr, fmt.Sprintf("Bind for 127.0.0.1:%d failed: port is already allocated", port)) {
		t.Errorf("second container on host port %d: %s", port, r)
	}
	if out := d.DockerOK(t, "inspect", "-f", "{{.State.Status}} {{len .NetworkSettings.Ports}}", "clash"); strings.TrimSpace(out) != "created 0" {
		t.Errorf("the refused container: %q, want created with no ports", out)
	}

	// host mode sees the host's links (our bridge among them).
	out = d.DockerOK(t, "run", "--rm", "--network", "host", "busybox", "ip", "-o", "link")
	if !strings.Contains(out, bridge+":") {
		t.Errorf("--network host: no %s in\n%s", bridge, out)
	}
	// container: mode shares web's namespace: its server is on 127.0.0.1.
	out = d.DockerOK(t, "run", "--rm", "--network", "container:web", "busybox", "wget", "-qO-", "http://127.0.0.1/")
	if !strings.Contains(out, "hello from web") {
		t.Errorf("--network container:web: %q", out)
	}

	// connect and disconnect while running.
	d.DockerOK(t, "network", "connect", "--alias", "api", "back", "web")
	out = d.DockerOK(t, "inspect", "-f", `{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}`, "web")
	if !strings.Contains(out, "front") || !strings.Contains(out, "back") {
		t.Errorf("web's networks after connect: %q", out)
	}
	out = d.DockerOK(t, "run", "--rm", "--network", "back", "busybox", "wget", "-qO-", "http://api/")
	if !strings.Contains(out, "hello from web") {
		t.Errorf("back reaching web after connect: %q", out)
	}
	if r := d.Docker(t, "network", "rm", "back"); r.Code == 0 || !strings.Contains(r.Stderr, "has active endpoints") {
		t.Errorf("network rm of a network in use: %s", r)
	}
	d.DockerOK(t, "network", "disconnect", "back", "web")
	if r := d.Docker(t, "run", "--rm", "--network", "back", "busybox", "wget", "-qO-", "http://api/"); r.Code == 0 {
		t.Errorf("back reaching web after disconnect: %s", r)
	}
	if r := d.Docker(t, "network", "inspect", "nosuch"); r.Code == 0 || !strings.Contains(r.Stderr, "nosuch") {
		t.Errorf("network inspect nosuch: %s", r)
	}
	if r := d.Docker(t, "network", "rm", "bridge"); r.Code == 0 || !strings.Contains(r.Stderr, "pre-defined network") {
		t.Errorf("network rm bridge: %s", r)
	}
	d.DockerOK(t, "run", "-d", "--name", "hosted", "--network", "host", "busybox", "sleep", "30")
	if r := d.Docker(t, "network", "connect", "back", "hosted"); r.Code == 0 || !strings.Contains(r.Stderr, "cannot be connected") {
		t.Errorf("network connect of a host-mode container: %s", r)
	}
	if r := d.Docker(t, "network", "connect", "host", "web"); r.Code == 0 || !strings.Contains(r.Stderr, "container cannot be disconnected from host network or connected to host network") {
		t.Errorf("network connect host: %s", r)
	}
	if out := d.DockerOK(t, "network", "ls", "--filter", "type=custom", "--filter", "dangling=true", "--format", "{{.Name}}"); strings.Fields(out) == nil ||
		strings.Contains(out, "front") || !strings.Contains(out, "back") {
		t.Errorf("network ls of unused custom networks: %q", out)
	}
	ev := d.DockerOK(t, "events", "--since", "0", "--until", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10),
		"--filter", "type=network", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	for _, want := range []string{"create front", "connect back", "disconnect back"} {
		if !strings.Contains(ev, want) {
			t.Errorf("network events lack %q:\n%s", want, ev)
		}
	}
	d.DockerOK(t, "rm", "-f", "web", "pub", "pub2", "hosted")
	out = d.DockerOK(t, "network", "prune", "-f")
	for _, n := range []string{"front", "back", "closed"} {
		if !strings.Contains(out, n) {
			t.Errorf("network prune: no %s in %q", n, out)
		}
	}
	// Nothing of the containers is left on the host.
	if veths := bridgePorts(t, bridge); len(veths) > 0 {
		t.Errorf("veths on %s after every container went: %v", bridge, veths)
	}
}

// hostAddr is the host's first global IPv4 address outside berth's
// bridges ("" if none).
func hostAddr(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "-4", "addr", "show", "scope", "global").Output()
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 4 && !strings.HasPrefix(f[1], "bn") && !strings.HasPrefix(f[1], "berth") && !strings.HasPrefix(f[1], "br-") {
			return strings.Split(f[3], "/")[0]
		}
	}
	return ""
}

// bridgePorts lists the links enslaved to bridge.
func bridgePorts(t *testing.T, bridge string) []string {
	t.Helper()
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		return nil
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			out = append(out, l.Attrs().Name)
		}
	}
	return out
}
