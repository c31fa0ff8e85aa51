package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cleanVolumes removes d's containers, then its volumes, at the end of t:
// tmpfs and bind volumes and pinned subpaths are mounts that must not
// outlive the test.
func cleanVolumes(t *testing.T, d *Daemon) {
	t.Cleanup(func() {
		if ids := strings.Fields(d.DockerOK(t, "ps", "-aq")); len(ids) > 0 {
			d.DockerOK(t, append([]string{"rm", "-f"}, ids...)...)
		}
		if names := strings.Fields(d.DockerOK(t, "volume", "ls", "-q")); len(names) > 0 {
			d.DockerOK(t, append([]string{"volume", "rm", "-f"}, names...)...)
		}
	})
}

// TestDockerCLIVolumes is a docker CLI session over the volume verbs and
// volumes in use by containers, asserting outputs and exit codes as a
// user sees them.
func TestDockerCLIVolumes(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	cleanVolumes(t, d)
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	expect := func(r Result, code int, out string) {
		t.Helper()
		if r.Code != code || !strings.Contains(r.Stdout+r.Stderr, out) {
			t.Fatalf("want exit %d and %q, got %s", code, out, r)
		}
	}

	// create: named, anonymous, idempotent, refused.
	expect(d.Docker(t, "volume", "create", "--label", "app=x", "data"), 0, "data")
	expect(d.Docker(t, "volume", "create", "data"), 0, "data")
	anon := strings.TrimSpace(d.DockerOK(t, "volume", "create"))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon) {
		t.Fatalf("anonymous volume named %q", anon)
	}
	expect(d.Docker(t, "volume", "create", "-d", "nfs-plugin", "v2"), 1, `volume driver "nfs-plugin"`)
	expect(d.Docker(t, "volume", "create", "bad/name"), 1, "includes invalid characters for a local volume name")
	expect(d.Docker(t, "volume", "create", "-o", "type=ext4", "-o", "device=/dev/sda1", "v3"), 1, "mounts only tmpfs and bind")
	expect(d.Docker(t, "volume", "create", "-o", "colour=red", "v4"), 1, `invalid option: "colour"`)
	expect(d.Docker(t, "volume", "ls", "-q"), 0, "data")
	for _, gone := range []string{"v2", "v3", "v4"} {
		expect(d.Docker(t, "volume", "inspect", gone), 1, "get "+gone+": no such volume")
	}

	// Options of the local driver: a tmpfs, and a bind of a host directory.
	expect(d.Docker(t, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", "scratch"), 0, "scratch")
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "hostfile"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	expect(d.Docker(t, "volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device="+host, "hostdir"), 0, "hostdir")
	expect(d.Docker(t, "run", "--rm", "-v", "scratch:/t", "busybox", "grep", " /t ", "/proc/mounts"), 0, "tmpfs")
	expect(d.Docker(t, "run", "--rm", "-v", "hostdir:/h", "busybox", "cat", "/h/hostfile"), 0, "from host")
	expect(d.Docker(t, "volume", "inspect", "-f", "{{.Options.type}} {{.Options.device}}", "hostdir"), 0, "none "+host)

	// ls and inspect, with docker's columns and filters.
	expect(d.Docker(t, "volume", "ls"), 0, "DRIVER    VOLUME NAME")
	expect(d.Docker(t, "volume", "ls", "--format", "{{.Driver}} {{.Name}} {{.Labels}}", "-f", "label=app"), 0, "local data app=x")
	if out := d.DockerOK(t, "volume", "ls", "-q", "-f", "name=^dat"); strings.TrimSpace(out) != "data" {
		t.Fatalf("ls name filter: %q", out)
	}
	expect(d.Docker(t, "volume", "ls", "-f", "colour=red"), 1, "invalid filter 'colour'")
	expect(d.Docker(t, "volume", "inspect", "-f", "{{.Driver}} {{.Scope}} {{index .Labels \"app\"}} {{.Name}}", "data"), 0, "local local x data")
	expect(d.Docker(t, "volume", "inspect", "data", "nosuch"), 1, "Error response from daemon: get nosuch: no such volume")

	// One volume shared by two containers.
	d.DockerOK(t, "run", "-d", "--name", "writer", "-v", "data:/data", "busybox", "sh", "-c", "echo shared > /data/f; mkdir -p /data/sub; echo deep > /data/sub/g; sleep 1000")
	deadline := time.Now().Add(10 * time.Second)
	for d.Docker(t, "run", "--rm", "-v", "data:/d:ro", "busybox", "cat", "/d/sub/g").Code != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the second container never saw the first one's file")
		}
		time.Sleep(100 * time.Millisecond)
	}
	expect(d.Docker(t, "run", "--rm", "-v", "data:/d:ro", "busybox", "cat", "/d/f"), 0, "shared")
	expect(d.Docker(t, "run", "--rm", "-v", "data:/d:ro", "busybox", "touch", "/d/x"), 1, "Read-only file system")
	expect(d.Docker(t, "volume", "ls", "-q", "-f", "dangling=false"), 0, "data")

	// A subpath shows only that directory; a hostile one makes nothing.
	expect(d.Docker(t, "run", "--rm", "--mount", "type=volume,src=data,dst=/x,volume-subpath=sub", "busybox", "ls", "/x"), 0, "g")
	d.DockerOK(t, "exec", "writer", "ln", "-s", "/etc", "/data/escape")
	before := d.DockerOK(t, "ps", "-aq")
	for sub, msg := range map[string]string{"escape": "resolves outside the volume", "../..": "..", "nosuch": "does not exist in the volume"} {
		expect(d.Docker(t, "run", "--rm", "--mount", "type=volume,src=data,dst=/x,volume-subpath="+sub, "busybox", "ls", "/x"), 125, msg)
	}
	if after := d.DockerOK(t, "ps", "-aq"); after != before {
		t.Fatalf("a refused subpath left a container: %q, was %q", after, before)
	}

	// In use: rm refuses in docker's words, -f too.
	r := d.Docker(t, "volume", "rm", "data")
	expect(r, 1, "volume is in use - [")
	expect(d.Docker(t, "volume", "rm", "-f", "data"), 1, "volume is in use")
	expect(d.Docker(t, "volume", "rm", "nosuch"), 1, "no such volume")
	expect(d.Docker(t, "volume", "rm", "-f", "nosuch"), 0, "")

	// df: the volume, its size and its one user.
	expect(d.Docker(t, "system", "df"), 0, "Local Volumes")
	df := d.DockerOK(t, "system", "df", "-v")
	if !regexp.MustCompile(`(?m)^data\s+1\s+\d+B`).MatchString(df) {
		t.Fatalf("df -v lacks the volume's row:\n%s", df)
	}

	// prune: anonymous only, then every unused one (not the option
	// volumes, as docker: removing them frees nothing here).
	expect(d.Docker(t, "volume", "prune", "-f"), 0, anon)
	if d.Docker(t, "volume", "inspect", anon).Code == 0 {
		t.Fatal("anonymous volume survived prune")
	}
	d.DockerOK(t, "volume", "create", "unused")
	out := d.DockerOK(t, "volume", "prune", "-af")
	if !strings.Contains(out, "unused") || strings.Contains(out, "data") || !strings.Contains(out, "Total reclaimed space") {
		t.Fatalf("prune -a: %q", out)
	}
	expect(d.Docker(t, "volume", "inspect", "-f", "{{.Name}}", "data", "scratch", "hostdir"), 0, "hostdir")

	// Removing the container frees the volume; a bind volume's removal
	// leaves the host's files.
	d.DockerOK(t, "rm", "-f", "writer")
	expect(d.Docker(t, "volume", "rm", "data", "scratch", "hostdir"), 0, "hostdir")
	if _, err := os.Stat(filepath.Join(host, "hostfile")); err != nil {
		t.Fatalf("host directory emptied by volume rm: %v", err)
	}
	if out := d.DockerOK(t, "volume", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("left: %q", out)
	}

	// system prune --volumes takes anonymous volumes of removed containers.
	d.DockerOK(t, "create", "-v", "/anon", "busybox", "true")
	expect(d.Docker(t, "system", "prune", "--volumes", "-f"), 0, "Deleted Volumes:")
	if out := d.DockerOK(t, "volume", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("system prune --volumes left: %q", out)
	}

	ev := d.DockerOK(t, "events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10), "--filter", "type=volume", "--format", "{{.Action}} {{.Actor.ID}}")
	for _, want := range []string{"create data", "create " + anon, "destroy " + anon, "destroy data", "prune"} {
		if !strings.Contains(ev, want) {
			t.Errorf("events lack %q:\n%s", want, ev)
		}
	}
}

// TestVolumeAPIHostileInput sends what the docker CLI never would.
func TestVolumeAPIHostileInput(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	cleanVolumes(t, d)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.Socket)
	}}}
	defer hc.CloseIdleConnections()
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		{"bad JSON", "POST", "/v1.50/volumes/create", `{"Name":`, 400, "invalid JSON"},
		{"not an object", "POST", "/v1.50/volumes/create", `[1,2]`, 400, "invalid JSON"},
		{"bad name", "POST", "/v1.50/volumes/create", `{"Name":"../../etc"}`, 400, "invalid characters"},
		{"name with NUL", "POST", "/v1.50/volumes/create", `{"Name":"a\u0000b"}`, 400, "invalid characters"},
		{"unknown driver", "POST", "/v1.50/volumes/create", `{"Name":"v","Driver":"rexray"}`, 501, "berth has only the"},
		{"cluster volume", "POST", "/v1.50/volumes/create", `{"Name":"v","ClusterVolumeSpec":{}}`, 501, "swarm"},
		{"quota", "POST", "/v1.50/volumes/create", `{"Name":"vq","DriverOpts":{"size":"1G"}}`, 400, "quota"},
		{"inspect traversal", "GET", "/v1.50/volumes/..%2F..%2Fetc", "", 404, "no such volume"},
		{"remove traversal", "DELETE", "/v1.50/volumes/..%2Fcontainers", "", 404, "no such volume"},
		{"update", "PUT", "/v1.50/volumes/v?version=1", `{}`, 503, "swarm"},
		{"prune bad filter", "POST", `/v1.50/volumes/prune?filters={"until":{"1h":true}}`, "", 400, "invalid filter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://berth"+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.msg) {
				t.Fatalf("%d %s, want %d %q", resp.StatusCode, b, tc.status, tc.msg)
			}
		})
	}
	// Nothing was made; the store has only what the daemon keeps there.
	if out := d.DockerOK(t, "volume", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("hostile requests made volumes: %q", out)
	}
	ents, _ := os.ReadDir(filepath.Join(d.Root, "volumes"))
	if len(ents) != 0 {
		t.Fatalf("volume store holds %v", ents)
	}
}

// TestVolumesAcrossDaemonRestart: a daemon killed and started again finds
// its volumes as they were: a tmpfs volume keeps its mount and content
// (not a fresh tmpfs over it), and a container made with a subpath starts
// on the pin made before.
func TestVolumesAcrossDaemonRestart(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	d.DockerOK(t, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "fast")
	d.DockerOK(t, "run", "--rm", "-v", "fast:/f", "-v", "keep:/k", "busybox", "sh", "-c", "echo tmp > /f/x; mkdir /k/sub; echo deep > /k/sub/y")
	d.DockerOK(t, "create", "--name", "later", "--mount", "type=volume,src=keep,dst=/s,volume-subpath=sub", "busybox", "cat", "/s/y")
	killDaemon(t, d)

	d2 := StartDaemon(t, DaemonOptions{Root: d.Root, ExecRoot: d.ExecRoot})
	cleanVolumes(t, d2)
	if out := d2.DockerOK(t, "run", "--rm", "-v", "fast:/f", "busybox", "cat", "/f/x"); out != "tmp\n" {
		t.Fatalf("tmpfs volume after restart holds %q", out)
	}
	if out := d2.DockerOK(t, "start", "-a", "later"); out != "deep\n" {
		t.Fatalf("subpath container after restart printed %q", out)
	}
	d2.DockerOK(t, "rm", "later")
	d2.DockerOK(t, "volume", "rm", "fast", "keep")
}
