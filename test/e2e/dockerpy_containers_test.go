package e2e

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// dockerPyContainers is a short docker-py session over containers: run
// (foreground output, detached), logs, exec, wait, remove, images, and
// docker-py's exception classes for errors.
const dockerPyContainers = `
import sys, docker
url, archive = sys.argv[1:3]
c = docker.DockerClient(base_url=url, version="auto")
with open(archive, "rb") as f:
    c.images.load(f.read())
assert "busybox:latest" in [t for i in c.images.list() for t in i.tags], c.images.list()

# docker-py reads the output only when HostConfig.LogConfig.Type is
# json-file (docker fills in its default driver at create).
out = c.containers.run("busybox", ["echo", "hello py"], remove=True)
assert out == b"hello py\n", out

try:
    c.containers.run("busybox", ["sh", "-c", "echo oops >&2; exit 3"], remove=True)
    sys.exit("a failing run did not raise")
except docker.errors.ContainerError as e:
    assert e.exit_status == 3, e.exit_status

ctr = c.containers.run("busybox", ["sh", "-c", "echo up; trap 'exit 0' TERM; while true; do sleep 0.1; done"],
                       detach=True, name="pyweb", environment={"K": "v"}, labels={"from": "py"})
ctr.reload()
assert ctr.status == "running", ctr.status
assert c.containers.get("pyweb").id == ctr.id
assert [x.name for x in c.containers.list(filters={"label": "from=py"})] == ["pyweb"]

import time
for _ in range(100):
    if b"up" in ctr.logs():
        break
    time.sleep(0.05)
assert ctr.logs() == b"up\n", ctr.logs()

code, out = ctr.exec_run(["sh", "-c", "echo $K; exit 5"])
assert (code, out) == (5, b"v\n"), (code, out)
code, out = ctr.exec_run("pwd", workdir="/etc")
assert (code, out) == (0, b"/etc\n"), (code, out)

ctr.stop(timeout=5)
res = ctr.wait()
assert res["StatusCode"] == 0, res
ctr.remove()
try:
    c.containers.get("pyweb")
    sys.exit("get of a removed container did not raise")
except docker.errors.NotFound:
    pass

ctr = c.containers.create("busybox", ["sh", "-c", "exit 9"])
ctr.start()
assert ctr.wait()["StatusCode"] == 9
ctr.remove(force=True)

try:
    c.containers.create("nosuch/image:1", "true")
    sys.exit("create from a missing image did not raise")
except docker.errors.ImageNotFound:
    pass

for x in c.containers.list(all=True):
    x.remove(force=True)
c.images.remove("busybox")
assert c.images.list() == []
print("ok")
`

// TestDockerPyContainers runs the container session with docker-py.
func TestDockerPyContainers(t *testing.T) {
	requireDockerPy(t)
	d := StartDaemon(t, DaemonOptions{})
	removeAllContainers(t, d)
	r := runPython(t, dockerPyContainers, d.Host, testutil.Images(t).DockerArchive)
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "ok" {
		t.Fatalf("docker-py containers session: %s", r)
	}
}
