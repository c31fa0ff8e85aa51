package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	imagetypes "github.com/moby/moby/api/types/image"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/daemon"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/testutil"
)

// berthBin is the berth binary built once for the package's tests.
var berthBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berth-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	berthBin = filepath.Join(dir, "berth")
	if out, err := exec.Command("go", "build", "-o", berthBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build berth: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	testutil.Main(m)
}

// cli runs berth on one root with one storage driver.
type cli struct {
	t      *testing.T
	root   string
	driver string
}

func newCLI(t *testing.T, driver string) *cli {
	return &cli{t: t, root: filepath.Join(t.TempDir(), "root"), driver: driver}
}

// run runs berth with args and stdin, returning stdout, stderr and the
// exit code.
func (c *cli) run(stdin []byte, args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command(berthBin, append([]string{"--root", c.root, "--storage-driver", c.driver}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("berth %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// ok runs berth and fails the test unless it exits 0.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(nil, args...)
	if code != 0 {
		c.t.Fatalf("berth %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func (c *cli) inspect(ref string) imagetypes.InspectResponse {
	c.t.Helper()
	var docs []imagetypes.InspectResponse
	if err := json.Unmarshal([]byte(c.ok("image", "inspect", ref)), &docs); err != nil || len(docs) != 1 {
		c.t.Fatalf("inspect %s: %v (%d docs)", ref, err, len(docs))
	}
	return docs[0]
}

// engine opens the root in process, between CLI runs, to look at what
// the CLI left on disk.
func (c *cli) engine() *daemon.Engine {
	c.t.Helper()
	e, err := daemon.New(context.Background(), daemon.Config{Root: c.root, StorageDriver: c.driver})
	if err != nil {
		c.t.Fatal(err)
	}
	return e
}

// stored counts the blobs and snapshots under the root.
func (c *cli) stored() (blobs, snaps int) {
	c.t.Helper()
	ctx := context.Background()
	e := c.engine()
	defer e.Close()
	e.Content().Walk(ctx, func(content.Info) error { blobs++; return nil })
	e.Snapshotter().Walk(ctx, func(snapshot.Info) error { snaps++; return nil })
	return blobs, snaps
}

// checkRootfs mounts a view of the image's top layer and checks the
// whiteouts of the test image took effect.
func (c *cli) checkRootfs(ref string) {
	c.t.Helper()
	ctx := context.Background()
	layers := c.inspect(ref).RootFS.Layers
	e := c.engine()
	defer e.Close()
	chain := topChainID(layers)
	ms, err := e.Snapshotter().View(ctx, "test-view", chain)
	if err != nil {
		c.t.Fatalf("view %s: %v", chain, err)
	}
	defer e.Snapshotter().Remove(ctx, "test-view")
	err = mount.WithTempMount(ctx, ms, func(root string) error {
		if _, err := os.Stat(filepath.Join(root, "bin/busybox")); err != nil {
			return err
		}
		if _, err := os.Lstat(filepath.Join(root, "etc/old.conf")); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("etc/old.conf survived its whiteout: %v", err)
		}
		ents, err := os.ReadDir(filepath.Join(root, "opt/replaced"))
		if err != nil {
			return err
		}
		if len(ents) != 1 || ents[0].Name() != "new.txt" {
			return fmt.Errorf("opaque dir holds %v", ents)
		}
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
}

var drivers = []string{"overlay", "vfs"}

func TestImageLifecycle(t *testing.T) {
	testutil.RequireRoot(t)
	imgs := testutil.Images(t)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			c := newCLI(t, driver)
			if out := c.ok("load", "-i", imgs.DockerArchive); out != "Loaded image: busybox:latest\n" {
				t.Errorf("load said %q", out)
			}
			list := c.ok("images")
			lines := strings.Split(strings.TrimSpace(list), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "REPOSITORY   TAG       IMAGE ID       CREATED") || !strings.HasPrefix(lines[1], "busybox      latest    ") {
				t.Errorf("images:\n%s", list)
			}
			ins := c.inspect("busybox")
			if ins.Config == nil || !slices.Equal(ins.Config.Cmd, []string{"sh"}) || ins.Os != "linux" || len(ins.RootFS.Layers) != 2 {
				t.Errorf("inspect: %+v", ins)
			}
			if ins.GraphDriver == nil || (ins.GraphDriver.Name != driver && !(driver == "vfs" && ins.GraphDriver.Name == "copy")) {
				t.Errorf("graph driver %+v", ins.GraphDriver)
			}
			id := ins.ID
			c.checkRootfs("busybox")

			if got := c.ok("image", "inspect", "--format", "{{.Id}} {{index .Config.Labels \"org.berth.test\"}}", "busybox"); got != id+" busybox\n" {
				t.Errorf("inspect --format: %q", got)
			}
			if got := c.ok("images", "-q", "--no-trunc"); got != id+"\n" {
				t.Errorf("images -q: %q", got)
			}
			hist := c.ok("history", "busybox")
			if !strings.Contains(hist, "IMAGE          CREATED") || !strings.Contains(hist, "<missing>") {
				t.Errorf("history:\n%s", hist)
			}

			c.ok("tag", "busybox", "localhost:5000/bb:v1")
			if got := c.ok("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference=localhost:5000/*"); got != "localhost:5000/bb:v1\n" {
				t.Errorf("reference filter: %q", got)
			}
			if got := c.ok("images", "--format", "json", "--filter", "dangling=true"); got != "" {
				t.Errorf("dangling: %q", got)
			}
			if got := c.ok("images", "-q", "--filter", "label=org.berth.test=busybox"); strings.Count(got, "\n") != 2 {
				t.Errorf("label filter: %q", got)
			}
			// The ID names two repositories: docker wants -f.
			if _, errs, code := c.run(nil, "rmi", id[7:19]); code != 125 || !strings.Contains(errs, "referenced in multiple repositories") {
				t.Errorf("rmi by ID: exit %d, %s", code, errs)
			}

			saved := filepath.Join(t.TempDir(), "saved.tar")
			c.ok("save", "-o", saved, "busybox:latest", "localhost:5000/bb:v1")

			out := c.ok("rmi", "busybox")
			if out != "Untagged: busybox:latest\n" {
				t.Errorf("rmi of one tag: %q", out)
			}
			out = c.ok("rmi", "localhost:5000/bb:v1")
			if out != "Untagged: localhost:5000/bb:v1\nDeleted: "+id+"\n" {
				t.Errorf("rmi of the last tag: %q", out)
			}
			if b, s := c.stored(); b != 0 || s != 0 {
				t.Errorf("after rmi: %d blobs, %d snapshots left", b, s)
			}

			// Load what we saved: same image, both names back.
			out, _, code := c.run(mustRead(t, saved), "load")
			if code != 0 || out != "Loaded image: busybox:latest\nLoaded image: localhost:5000/bb:v1\n" {
				t.Errorf("load saved: exit %d, %q", code, out)
			}
			again := c.inspect("localhost:5000/bb:v1")
			if again.ID != id || !slices.Equal(again.RootFS.Layers, ins.RootFS.Layers) {
				t.Errorf("round trip changed the image: %s %v → %s %v", id, ins.RootFS.Layers, again.ID, again.RootFS.Layers)
			}
			c.checkRootfs("busybox")

			// The OCI layout of the same image loads to the same ID.
			oci := filepath.Join(t.TempDir(), "oci.tar")
			if out, err := exec.Command("tar", "-C", imgs.OCILayout, "-cf", oci, ".").CombinedOutput(); err != nil {
				t.Fatalf("tar: %v %s", err, out)
			}
			if out := c.ok("load", "-q", "-i", oci); out != "Loaded image ID: "+id+"\n" {
				t.Errorf("load oci: %q", out)
			}
			c.ok("rmi", "-f", id)
			if b, s := c.stored(); b != 0 || s != 0 {
				t.Errorf("after rmi -f: %d blobs, %d snapshots left", b, s)
			}
		})
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestImportWithChanges(t *testing.T) {
	testutil.RequireRoot(t)
	imgs := testutil.Images(t)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			c := newCLI(t, driver)
			rootfs, err := exec.Command("tar", "-C", imgs.Rootfs, "-cz", ".").Output()
			if err != nil {
				t.Fatal(err)
			}
			out, errs, code := c.run(rootfs, "import",
				"-c", `CMD ["/bin/sh", "-c", "echo hi"]`, "-c", "ENTRYPOINT /bin/env", "-c", "ENV A=1 B=two",
				"-c", "WORKDIR /srv", "-c", "USER nobody", "-c", "EXPOSE 8080/tcp 53/udp", "-c", `LABEL k=v "x y"=z`,
				"-c", "VOLUME /data", "-c", "STOPSIGNAL SIGQUIT", "-m", "imported by test", "-", "imported:v1")
			if code != 0 {
				t.Fatalf("import: exit %d %s", code, errs)
			}
			id := strings.TrimSpace(out)
			ins := c.inspect("imported:v1")
			if ins.ID != id || ins.Comment != "imported by test" || len(ins.RootFS.Layers) != 1 {
				t.Errorf("inspect: id %s comment %q layers %v", ins.ID, ins.Comment, ins.RootFS.Layers)
			}
			cfg := ins.Config
			checks := []struct {
				what string
				ok   bool
			}{
				{"cmd", slices.Equal(cfg.Cmd, []string{"/bin/sh", "-c", "echo hi"})},
				{"entrypoint", slices.Equal(cfg.Entrypoint, []string{"/bin/sh", "-c", "/bin/env"})},
				{"env", slices.Equal(cfg.Env, []string{"A=1", "B=two"})},
				{"workdir", cfg.WorkingDir == "/srv"},
				{"user", cfg.User == "nobody"},
				{"expose", len(cfg.ExposedPorts) == 2},
				{"labels", cfg.Labels["k"] == "v" && cfg.Labels["x y"] == "z"},
				{"volume", len(cfg.Volumes) == 1},
				{"stopsignal", cfg.StopSignal == "SIGQUIT"},
			}
			for _, ck := range checks {
				if !ck.ok {
					t.Errorf("%s not applied: %+v", ck.what, cfg)
				}
			}
			if _, errs, code := c.run(rootfs, "import", "-c", "RUN true", "-", "bad:1"); code != 125 || !strings.Contains(errs, "RUN is not a valid change command") {
				t.Errorf("bad change: exit %d %s", code, errs)
			}
			c.ok("rmi", "imported:v1")
			if b, s := c.stored(); b != 0 || s != 0 {
				t.Errorf("after rmi: %d blobs, %d snapshots left", b, s)
			}
		})
	}
}

func TestHostileLoadLeavesNothing(t *testing.T) {
	testutil.RequireRoot(t)
	imgs := testutil.Images(t)
	archive := mustRead(t, imgs.DockerArchive)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"truncated", archive[:len(archive)*2/3], "truncated"},
		{"empty", []byte{}, "neither manifest.json"},
		{"not a tar", bytes.Repeat([]byte("berth "), 200), "read tar"},
	}
	for _, driver := range drivers {
		c := newCLI(t, driver)
		for _, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				_, errs, code := c.run(tt.in, "load")
				if code != 125 || !strings.Contains(errs, tt.want) {
					t.Errorf("exit %d, stderr %q; want 125 and %q", code, errs, tt.want)
				}
				if out := c.ok("images", "-q"); out != "" {
					t.Errorf("images after a failed load: %q", out)
				}
				if b, s := c.stored(); b != 0 || s != 0 {
					t.Errorf("%d blobs, %d snapshots left", b, s)
				}
			})
		}
		if _, errs, code := c.run(nil, "rmi", "nosuch"); code != 125 || !strings.Contains(errs, "No such image: nosuch") {
			t.Errorf("rmi nosuch: exit %d %q", code, errs)
		}
	}
}

func TestSkopeoReadsSave(t *testing.T) {
	testutil.RequireRoot(t)
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed (Debian: skopeo)")
	}
	imgs := testutil.Images(t)
	c := newCLI(t, "vfs")
	c.ok("load", "-i", imgs.DockerArchive)
	id := c.inspect("busybox").ID
	dir := t.TempDir()
	saved := filepath.Join(dir, "saved.tar")
	c.ok("save", "-o", saved, "busybox")
	out, err := exec.Command("skopeo", "inspect", "docker-archive:"+saved).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	var info struct{ Layers []string }
	if err := json.Unmarshal(out, &info); err != nil || len(info.Layers) != 2 {
		t.Fatalf("skopeo inspect: %v %s", err, out)
	}
	copied := filepath.Join(dir, "copied.tar")
	if out, err := exec.Command("skopeo", "copy", "docker-archive:"+saved, "docker-archive:"+copied+":copied:1").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	c.ok("load", "-i", copied)
	if got := c.inspect("copied:1").ID; got != id {
		t.Errorf("skopeo's copy loads as %s, want %s", got, id)
	}
	ociDir := filepath.Join(dir, "oci")
	if out, err := exec.Command("skopeo", "copy", "docker-archive:"+saved, "oci:"+ociDir+":skopeo").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy to oci: %v\n%s", err, out)
	}
	ociTar := filepath.Join(dir, "oci.tar")
	if out, err := exec.Command("tar", "-C", ociDir, "-cf", ociTar, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	if out := c.ok("load", "-i", ociTar); out != "Loaded image ID: "+id+"\n" {
		t.Errorf("load of skopeo's OCI layout: %q", out)
	}
}

func TestUmociLayoutLoads(t *testing.T) {
	testutil.RequireRoot(t)
	if _, err := exec.LookPath("umoci"); err != nil {
		t.Skip("umoci not installed (Debian: umoci)")
	}
	imgs := testutil.Images(t)
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	for _, args := range [][]string{
		{"init", "--layout", layout},
		{"new", "--image", layout + ":t"},
		{"insert", "--image", layout + ":t", filepath.Join(imgs.Rootfs, "bin"), "/bin"},
		{"config", "--image", layout + ":t", "--config.cmd", "sh", "--config.label", "made.by=umoci"},
	} {
		if out, err := exec.Command("umoci", args...).CombinedOutput(); err != nil {
			t.Fatalf("umoci %v: %v\n%s", args, err, out)
		}
	}
	tarball := filepath.Join(dir, "layout.tar")
	if out, err := exec.Command("tar", "-C", layout, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			c := newCLI(t, driver)
			out := c.ok("load", "-i", tarball)
			id, ok := strings.CutPrefix(strings.TrimSpace(out), "Loaded image ID: ")
			if !ok {
				t.Fatalf("load said %q", out)
			}
			ins := c.inspect(id)
			if ins.Config.Labels["made.by"] != "umoci" || len(ins.RootFS.Layers) != 1 || ins.Size == 0 {
				t.Errorf("inspect: labels %v layers %v size %d", ins.Config.Labels, ins.RootFS.Layers, ins.Size)
			}
			c.ok("rmi", id)
			if b, s := c.stored(); b != 0 || s != 0 {
				t.Errorf("after rmi: %d blobs, %d snapshots", b, s)
			}
		})
	}
}
