package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestDockerCLIIPv6Ports publishes busybox httpd through the docker CLI
// on [::1] and, on a dual-stack network, on every address: the host
// reaches it on [::1] (both ports), on 127.0.0.1 and on the bridge's IPv6
// address; docker port lists [::] beside 0.0.0.0, as docker's does; the
// host forwards IPv6 while the network exists.
func TestDockerCLIIPv6Ports(t *testing.T) {
	d, _ := netDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	before, _ := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding")
	t.Cleanup(func() {
		if ids := strings.Fields(d.DockerOK(t, "ps", "-aq")); len(ids) > 0 {
			d.DockerOK(t, append([]string{"rm", "-f"}, ids...)...)
		}
		d.Docker(t, "network", "prune", "-f")
		if after, _ := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding"); string(after) != string(before) {
			t.Errorf("IPv6 forwarding %q after the network went, %q before", after, before)
		}
	})
	d.DockerOK(t, "network", "create", "--ipv6", "--subnet", "10.196.3.0/24", "--subnet", "fd42:e2e::/64", "dual")
	if got, _ := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding"); string(got) != "1\n" {
		t.Errorf("IPv6 forwarding with an IPv6 network: %q", got)
	}
	lo6, any := freePort(t), freePort(t)
	d.DockerOK(t, append([]string{"run", "-d", "--name", "web6", "--network", "dual",
		"-p", fmt.Sprintf("[::1]:%d:80", lo6), "-p", fmt.Sprintf("%d:80", any), "busybox"}, httpdCmd("web6")...)...)
	for _, url := range []string{
		fmt.Sprintf("http://[::1]:%d/", lo6),
		fmt.Sprintf("http://[::1]:%d/", any),
		fmt.Sprintf("http://127.0.0.1:%d/", any),
		fmt.Sprintf("http://[fd42:e2e::1]:%d/", any),
	} {
		if got := httpGet(t, d, "web6", url); !strings.Contains(got, "hello from web6") {
			t.Errorf("%s: %q", url, got)
		}
	}
	out := d.DockerOK(t, "port", "web6")
	for _, want := range []string{
		fmt.Sprintf("80/tcp -> [::1]:%d", lo6),
		fmt.Sprintf("80/tcp -> 0.0.0.0:%d", any),
		fmt.Sprintf("80/tcp -> [::]:%d", any),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("docker port web6: no %q in\n%s", want, out)
		}
	}
	// an IPv4-only container published on [::1]
	lo4 := freePort(t)
	d.DockerOK(t, append([]string{"run", "-d", "--name", "web4", "-p", fmt.Sprintf("[::1]:%d:80", lo4), "busybox"}, httpdCmd("web4")...)...)
	if got := httpGet(t, d, "web4", fmt.Sprintf("http://[::1]:%d/", lo4)); !strings.Contains(got, "hello from web4") {
		t.Errorf("[::1] to an IPv4-only container: %q", got)
	}
}
