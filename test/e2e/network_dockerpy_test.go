package e2e

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// dockerPyNetworks is docker-py's network API over a running container:
// create with IPAM, a container created on it with an alias through
// networking_config, reached by name and alias from another, connect and
// disconnect (seen in the network's containers), errors as docker-py's
// exception classes, legacy links, stats' network counters, prune.
const dockerPyNetworks = `
import sys, docker
url, archive = sys.argv[1:3]
c = docker.DockerClient(base_url=url, version="auto")

def output(cmd, network):
    ctr = c.containers.run("busybox", cmd, network=network, detach=True)
    code = ctr.wait()["StatusCode"]
    out = ctr.logs()
    ctr.remove()
    assert code == 0, (code, out)
    return out

with open(archive, "rb") as f:
    c.images.load(f.read())
ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.196.3.0/24", gateway="10.196.3.1")])
net = c.networks.create("pynet", driver="bridge", ipam=ipam, labels={"from": "py"})
other = c.networks.create("pyother")
try:
    c.networks.create("pynet")
    sys.exit("duplicate network created")
except docker.errors.APIError as e:
    assert e.status_code == 409 and "already exists" in str(e), e
try:
    c.networks.get("nosuch")
    sys.exit("get of a missing network did not raise")
except docker.errors.NotFound:
    pass
assert [n.name for n in c.networks.list(filters={"label": "from=py"})] == ["pynet"]
cfg = c.api.create_networking_config({"pynet": c.api.create_endpoint_config(aliases=["svc"], ipv4_address="10.196.3.50")})
hc = c.api.create_host_config(network_mode="pynet")
cid = c.api.create_container("busybox", ["sh", "-c", "mkdir -p /www && echo py > /www/index.html && exec httpd -f -p 80 -h /www"],
                             name="pyweb", host_config=hc, networking_config=cfg)["Id"]
c.api.start(cid)
web = c.containers.get(cid)
addr = web.attrs["NetworkSettings"]["Networks"]["pynet"]["IPAddress"]
assert addr == "10.196.3.50", addr
out = output(["sh", "-c", "wget -qO- http://pyweb/ && wget -qO- http://svc/"], "pynet")
assert out == b"py\npy\n", out
other.connect(web, aliases=["alt"])
other.reload()
assert cid in other.attrs["Containers"], other.attrs
out = output(["wget", "-qO-", "http://alt/"], "pyother")
assert out == b"py\n", out
other.disconnect(web)
other.reload()
assert other.attrs["Containers"] == {}, other.attrs
try:
    net.remove()
    sys.exit("removed a network in use")
except docker.errors.APIError as e:
    assert e.status_code == 409, e
web.remove(force=True)

# legacy links on the default bridge: variables and hosts entry
db = c.containers.run("busybox", ["sleep", "300"], name="pydb", detach=True, environment={"DB_USER": "me"})
out = c.containers.run("busybox", ["sh", "-c", "env; cat /etc/hosts"], links={"pydb": "pg"}, remove=True)
assert b"PG_ENV_DB_USER=me" in out and b"PG_NAME=/" in out and b"\tpg " in out, out
# stats' networks of a container that sent traffic
pinger = c.containers.run("busybox", ["sh", "-c", "ping -c3 -i0.2 $(ip route | awk '/default/{print $3}'); sleep 300"], detach=True)
for _ in range(20):
    s = pinger.stats(stream=False)
    eth0 = s.get("networks", {}).get("eth0", {})
    if eth0.get("tx_packets", 0) >= 3 and eth0.get("rx_packets", 0) >= 3 and eth0.get("rx_bytes", 0) > 0:
        break
else:
    sys.exit("stats networks: %r" % s.get("networks"))
pinger.remove(force=True)
db.remove(force=True)

pruned = c.networks.prune()
assert sorted(pruned["NetworksDeleted"]) == ["pynet", "pyother"], pruned
print("ok")
`

// TestDockerPyNetworks runs the session with the docker Python package.
func TestDockerPyNetworks(t *testing.T) {
	requireDockerPy(t)
	d, _ := netDaemon(t, DaemonOptions{})
	t.Cleanup(func() {
		if ids := strings.Fields(d.DockerOK(t, "ps", "-aq")); len(ids) > 0 {
			d.DockerOK(t, append([]string{"rm", "-f"}, ids...)...)
		}
		d.Docker(t, "network", "prune", "-f")
	})
	r := runPython(t, dockerPyNetworks, d.Host, testutil.Images(t).DockerArchive)
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "ok" {
		t.Errorf("docker-py network session: %s", r)
	}
}
