package e2e

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// dockerPyVolumes is a docker-py session over the volume API: create,
// get, list with filters, a container using the volume, remove refused
// while in use (APIError 409), prune, NotFound.
const dockerPyVolumes = `
import sys, docker
url, archive = sys.argv[1:3]
c = docker.DockerClient(base_url=url, version="auto")
with open(archive, "rb") as f:
    c.images.load(f.read())
v = c.volumes.create(name="pyvol", driver="local", labels={"k": "v"})
assert v.name == "pyvol" and v.attrs["Driver"] == "local" and v.attrs["Labels"] == {"k": "v"}, v.attrs
assert c.volumes.get("pyvol").attrs["Mountpoint"].endswith("/volumes/pyvol/_data")
assert [x.name for x in c.volumes.list(filters={"label": "k=v"})] == ["pyvol"]
out = c.containers.run("busybox", ["sh", "-c", "echo py > /data/f; cat /data/f"], volumes={"pyvol": {"bind": "/data", "mode": "rw"}}, name="pyc")
assert out == b"py\n", out
try:
    v.remove()
    sys.exit("remove of a volume in use did not raise")
except docker.errors.APIError as e:
    assert e.status_code == 409 and "volume is in use" in str(e), e
c.containers.get("pyc").remove()
anon = c.volumes.create()
rep = c.volumes.prune()
assert rep["VolumesDeleted"] == [anon.name], rep
rep = c.volumes.prune(filters={"all": "true"})
assert rep["VolumesDeleted"] == ["pyvol"] and rep["SpaceReclaimed"] == 3, rep
try:
    c.volumes.get("pyvol")
    sys.exit("get of a removed volume did not raise")
except docker.errors.NotFound:
    pass
print("ok")
`

// TestDockerPyVolumes runs the session with the docker Python package.
func TestDockerPyVolumes(t *testing.T) {
	requireDockerPy(t)
	d := StartDaemon(t, DaemonOptions{})
	cleanVolumes(t, d)
	r := runPython(t, dockerPyVolumes, d.Host, testutil.Images(t).DockerArchive)
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "ok" {
		t.Errorf("docker-py session: %s", r)
	}
}
