package e2e

import (
	"strings"
	"testing"
)

// TestDockerCLILinks drives --link through the docker CLI: the errors of
// a missing and a stopped linked container in docker's words, the hosts
// entry and variables in the linking container, inspect's stored form,
// rm --link, and links as aliases on a user-defined network.
func TestDockerCLILinks(t *testing.T) {
	d, _ := netDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	t.Cleanup(func() { removeAllContainers(t, d) })
	if r := d.Docker(t, "run", "--rm", "--link", "nosuch:db", "busybox", "true"); r.Code == 0 || !strings.Contains(r.Stderr, "could not get container for nosuch") {
		t.Errorf("link to a missing container: %s", r)
	}
	d.DockerOK(t, "create", "--name", "db", "--expose", "5432", "-e", "POSTGRES_DB=app", "busybox", "sleep", "300")
	if r := d.Docker(t, "run", "--rm", "--link", "db:pg", "busybox", "true"); r.Code == 0 || !strings.Contains(r.Stderr, "Cannot link to a non running container: /db AS /") {
		t.Errorf("link to a stopped container: %s", r)
	}
	d.DockerOK(t, "start", "db")
	ip := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", "db"))
	out := d.DockerOK(t, "run", "--name", "web", "--link", "db:pg", "busybox", "sh", "-c", "grep pg /etc/hosts; env; wget -q -T2 -O- http://pg:5432/ 2>&1; ping -c1 -W2 pg >/dev/null && echo ping-ok")
	for _, want := range []string{ip + "\tpg ", " db\n", "PG_PORT=tcp://" + ip + ":5432", "PG_PORT_5432_TCP_ADDR=" + ip, "PG_NAME=/web/pg", "PG_ENV_POSTGRES_DB=app", "ping-ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("linking container lacks %q:\n%s", want, out)
		}
	}
	if got := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{json .HostConfig.Links}}", "web")); got != `["/db:/web/pg"]` {
		t.Errorf("inspect links: %s", got)
	}
	d.DockerOK(t, "rm", "--link", "web/pg")
	if got := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{json .HostConfig.Links}}", "web")); got != "null" && got != "[]" {
		t.Errorf("links after rm --link: %s", got)
	}

	// On a user-defined network a link is a name for the linking
	// container alone: at run, and with the berth CLI's connect --link.
	t.Cleanup(func() { d.Docker(t, "network", "rm", "lnet") })
	d.DockerOK(t, "network", "create", "lnet")
	d.DockerOK(t, "run", "-d", "--name", "srv", "--network", "lnet", "busybox", "sleep", "300")
	d.DockerOK(t, "run", "--rm", "--network", "lnet", "--link", "srv:backend", "busybox", "ping", "-c1", "-W2", "backend")
	if r := d.Docker(t, "run", "--rm", "--network", "lnet", "busybox", "ping", "-c1", "-W2", "backend"); r.Code == 0 {
		t.Errorf("a container without the link resolved its alias: %s", r)
	}
	d.DockerOK(t, "run", "-d", "--name", "late", "busybox", "sleep", "300")
	berthOK(t, d, "network", "connect", "--link", "srv:api", "lnet", "late")
	d.DockerOK(t, "exec", "late", "ping", "-c1", "-W2", "api")
}

// TestDockerCLIDisconnectStopped: a stopped container leaves the network
// of its mode through the docker CLI and starts with loopback only; it
// comes back with connect.
func TestDockerCLIDisconnectStopped(t *testing.T) {
	d, _ := netDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	t.Cleanup(func() { removeAllContainers(t, d) })
	d.DockerOK(t, "create", "--name", "solo", "busybox", "ip", "-o", "link")
	d.DockerOK(t, "network", "disconnect", "bridge", "solo")
	if got := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{len .NetworkSettings.Networks}} {{.HostConfig.NetworkMode}}", "solo")); got != "0 bridge" {
		t.Errorf("after disconnect: %q", got)
	}
	if out := d.DockerOK(t, "start", "-a", "solo"); strings.Contains(out, "eth0") {
		t.Errorf("started on no network, yet:\n%s", out)
	}
	d.DockerOK(t, "network", "connect", "bridge", "solo")
	if out := d.DockerOK(t, "start", "-a", "solo"); !strings.Contains(out, "eth0") {
		t.Errorf("connected again, yet:\n%s", out)
	}
}
