package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/testutil"
)

// dockerPySession is a short docker-py session over the image and system
// API: version negotiation ("auto"), load, get, tag, remove, errors as
// docker-py's exception classes, df and events.
const dockerPySession = `
import sys, time, docker
url, api_version, archive = sys.argv[1:4]
start = int(time.time()) - 1
c = docker.DockerClient(base_url=url, version="auto")
assert c.ping()
v = c.version()
assert v["ApiVersion"] == api_version, v
with open(archive, "rb") as f:
    imgs = c.images.load(f.read())
assert imgs[0].tags == ["busybox:latest"], imgs[0].tags
img = c.images.get("busybox")
assert img.labels.get("org.berth.test") == "busybox", img.labels
assert img.tag("py/copy", "1")
assert "py/copy:1" in c.images.get("py/copy:1").tags
c.images.remove("py/copy:1")
try:
    c.images.get("nope:1")
    sys.exit("get of a missing image did not raise")
except docker.errors.ImageNotFound:
    pass
try:
    c.images.remove(img.id)
except docker.errors.APIError as e:
    sys.exit("remove by id: %s" % e)
assert c.images.list() == []
df = c.df()
assert df["Images"] == [], df
evs = list(c.events(since=start, until=int(time.time()) + 1, decode=True, filters={"type": "image"}))
actions = [e["Action"] for e in evs]
for a in ("load", "tag", "untag", "delete"):
    assert a in actions, actions
print("ok")
`

// TestDockerPy runs the session with the docker Python package.
func TestDockerPy(t *testing.T) {
	requireDockerPy(t)
	d := StartDaemon(t, DaemonOptions{})
	r := runPython(t, dockerPySession, d.Host, api.MaxAPIVersion, testutil.Images(t).DockerArchive)
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "ok" {
		t.Errorf("docker-py session: %s", r)
	}
}

// requireDockerPy skips t on a machine without docker-py.
func requireDockerPy(t *testing.T) {
	t.Helper()
	if err := exec.Command("python3", "-c", "import docker").Run(); err != nil {
		t.Skip("needs docker-py: Debian's python3-docker (or python3 -m pip install docker)")
	}
}

// runPython runs a Python script given as source with args.
func runPython(t *testing.T, source string, args ...string) Result {
	t.Helper()
	script := filepath.Join(t.TempDir(), "session.py")
	if err := os.WriteFile(script, []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	return run(t, nil, nil, "python3", append([]string{script}, args...)...)
}
