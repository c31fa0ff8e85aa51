package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/internal/testutil/registry"
)

// loadBusybox loads the offline busybox image with docker load.
func loadBusybox(t *testing.T, d *Daemon) {
	t.Helper()
	img := testutil.Images(t)
	out := d.DockerOK(t, "load", "-i", img.DockerArchive)
	if !strings.Contains(out, "Loaded image: busybox:latest") {
		t.Fatalf("docker load: %q", out)
	}
}

func tarNames(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		names = append(names, h.Name)
	}
}

// TestDockerCLIImages is a scripted session of the image verbs.
func TestDockerCLIImages(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	start := time.Now()
	// A broken archive is refused and leaves nothing.
	if r := d.DockerIn(t, []byte("this is not a tar archive"), "load"); r.Code != 1 || !strings.Contains(r.Stderr, "Error response from daemon") {
		t.Errorf("load of garbage: %s", r)
	}
	if out := d.DockerOK(t, "images", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("images after a failed load: %q", out)
	}
	loadBusybox(t, d)

	if out := d.DockerOK(t, "images", "--format", "{{.Repository}}:{{.Tag}}"); strings.TrimSpace(out) != "busybox:latest" {
		t.Errorf("docker images = %q", out)
	}
	id := strings.TrimSpace(d.DockerOK(t, "image", "inspect", "--format", "{{.Id}}", "busybox"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("image id %q", id)
	}
	if got := strings.TrimSpace(d.DockerOK(t, "image", "inspect", "--format", "{{.Os}} {{index .Config.Labels \"org.berth.test\"}}", "busybox:latest")); got != "linux busybox" {
		t.Errorf("inspect = %q", got)
	}

	d.DockerOK(t, "tag", "busybox", "e2e/copy:v1")
	tags := d.DockerOK(t, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	if !strings.Contains(tags, "e2e/copy:v1 "+strings.TrimPrefix(id, "sha256:")[:12]) {
		t.Errorf("after tag:\n%s", tags)
	}
	if out := d.DockerOK(t, "history", "-q", "busybox"); !strings.Contains(out, strings.TrimPrefix(id, "sha256:")[:12]) {
		t.Errorf("history -q:\n%s", out)
	}

	// save, remove, load back.
	archive := filepath.Join(t.TempDir(), "saved.tar")
	d.DockerOK(t, "save", "-o", archive, "e2e/copy:v1")
	names := strings.Join(tarNames(t, archive), " ")
	if !strings.Contains(names, "manifest.json") {
		t.Errorf("saved archive has no manifest.json: %s", names)
	}
	if out := d.DockerOK(t, "rmi", "e2e/copy:v1"); strings.TrimSpace(out) != "Untagged: e2e/copy:v1" {
		t.Errorf("rmi of a second name = %q", out)
	}
	if out := d.DockerOK(t, "load", "-i", archive); !strings.Contains(out, "Loaded image: e2e/copy:v1") {
		t.Errorf("load of saved = %q", out)
	}

	// Docker's errors and exit codes.
	r := d.Docker(t, "rmi", "nope:1")
	if r.Code != 1 || !strings.Contains(r.Stderr, "No such image: nope:1") {
		t.Errorf("rmi nope: %s", r)
	}
	r = d.Docker(t, "image", "inspect", "nope")
	if r.Code != 1 || !strings.Contains(r.Stderr, "No such image") {
		t.Errorf("inspect nope: %s", r)
	}
	r = d.Docker(t, "rmi", strings.TrimPrefix(id, "sha256:")[:12])
	if r.Code != 1 || !strings.Contains(r.Stderr, "image is referenced in multiple repositories") {
		t.Errorf("rmi by id with two repositories: %s", r)
	}

	df := d.DockerOK(t, "system", "df", "--format", "{{.Type}} {{.TotalCount}}")
	if !strings.Contains(df, "Images 1") {
		t.Errorf("system df:\n%s", df)
	}

	// Removing by ID with force deletes the image and both names.
	out := d.DockerOK(t, "rmi", "-f", id)
	if !strings.Contains(out, "Untagged: busybox:latest") || !strings.Contains(out, "Deleted: "+id) {
		t.Errorf("rmi -f id:\n%s", out)
	}
	if out := d.DockerOK(t, "images", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("images after rmi: %q", out)
	}

	// Every step above is an event, and --since/--until replays them.
	until := time.Now().Add(time.Second)
	ev := d.DockerOK(t, "events", "--since", strconv.FormatInt(start.Unix(), 10), "--until", strconv.FormatInt(until.Unix(), 10),
		"--filter", "type=image", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
	// As docker: load, save, untag and delete name the image by ID; tag
	// names the new tag.
	for _, want := range []string{"image load " + id, "image tag e2e/copy:v1", "image save " + id, "image untag " + id, "image delete"} {
		if !strings.Contains(ev, want) {
			t.Errorf("events lack %q:\n%s", want, ev)
		}
	}
	ev = d.DockerOK(t, "events", "--since", strconv.FormatInt(start.Unix(), 10), "--until", strconv.FormatInt(until.Unix(), 10),
		"--filter", "event=tag", "--format", "{{.Action}}")
	if strings.TrimSpace(ev) != "tag" {
		t.Errorf("events filtered to tag: %q", ev)
	}
}

// TestDockerCLIPushPull pushes to and pulls from a real registry on
// 127.0.0.1 with the docker CLI.
func TestDockerCLIPushPull(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	reg := registry.Start(t, registry.Options{})
	loadBusybox(t, d)
	ref := reg.Ref("e2e/busybox:1")
	d.DockerOK(t, "tag", "busybox", ref)

	out := d.DockerOK(t, "push", ref)
	if !strings.Contains(out, "The push refers to repository ["+reg.Host+"/e2e/busybox]") || !strings.Contains(out, "1: digest: sha256:") {
		t.Errorf("docker push:\n%s", out)
	}
	// Pushing again uploads nothing.
	if out := d.DockerOK(t, "push", ref); !strings.Contains(out, "Layer already exists") {
		t.Errorf("second push:\n%s", out)
	}

	// By ID: removing the last tag of a pushed image leaves it behind with
	// its repo digest (docker would drop that digest too; see the report).
	id := strings.TrimSpace(d.DockerOK(t, "image", "inspect", "--format", "{{.Id}}", ref))
	d.DockerOK(t, "rmi", "-f", id)
	if out := d.DockerOK(t, "images", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("images left: %q", out)
	}
	out = d.DockerOK(t, "pull", ref)
	if !strings.Contains(out, "Status: Downloaded newer image for "+ref) || !strings.Contains(out, "Digest: sha256:") {
		t.Errorf("docker pull:\n%s", out)
	}
	if out := d.DockerOK(t, "pull", ref); !strings.Contains(out, "Image is up to date for "+ref) {
		t.Errorf("second pull:\n%s", out)
	}
	digests := d.DockerOK(t, "image", "inspect", "--format", "{{json .RepoDigests}}", ref)
	if !strings.Contains(digests, reg.Host+"/e2e/busybox@sha256:") {
		t.Errorf("repo digests %s", digests)
	}
	r := d.Docker(t, "pull", reg.Ref("e2e/missing:1"))
	if r.Code != 1 || !strings.Contains(r.Stderr, "Error response from daemon") {
		t.Errorf("pull of a missing image: %s", r)
	}
}

// TestDockerCLILoginPush logs in to a registry that wants basic auth and
// pushes with the credential the CLI then sends in X-Registry-Auth.
func TestDockerCLILoginPush(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	reg := registry.Start(t, registry.Options{Auth: registry.Basic})
	loadBusybox(t, d)
	ref := reg.Ref("private/busybox:1")
	d.DockerOK(t, "tag", "busybox", ref)

	r := d.Docker(t, "push", ref)
	if r.Code == 0 {
		t.Fatalf("push without login succeeded: %s", r)
	}
	r = d.DockerIn(t, []byte("wrong\n"), "login", reg.Host, "-u", reg.User, "--password-stdin")
	if r.Code != 1 || !strings.Contains(strings.ToLower(r.Stderr), "unauthorized") {
		t.Errorf("login with a wrong password: %s", r)
	}
	r = d.DockerIn(t, []byte(reg.Password+"\n"), "login", reg.Host, "-u", reg.User, "--password-stdin")
	if r.Code != 0 || !strings.Contains(r.Stdout, "Login Succeeded") {
		t.Fatalf("login: %s", r)
	}
	if out := d.DockerOK(t, "push", ref); !strings.Contains(out, "1: digest: sha256:") {
		t.Errorf("push after login:\n%s", out)
	}
}

// TestDockerCLIImportPruneEvents: import of a rootfs tar, prune, filters,
// and a live `docker events` that sees work as it happens.
func TestDockerCLIImportPruneEvents(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	img := testutil.Images(t)

	// A live events stream from the CLI, read while we work.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := exec.CommandContext(ctx, DockerCLI, "events", "--filter", "type=image", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	ev.Env = append(os.Environ(), d.dockerEnv(t)...)
	var evOut syncBuffer
	ev.Stdout = &evOut
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); ev.Wait() }()

	rootfs := filepath.Join(t.TempDir(), "rootfs.tar")
	tarDir(t, img.Rootfs, rootfs)
	f, err := os.ReadFile(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	r := d.DockerIn(t, f, "import", "--change", "CMD [\"/bin/sh\"]", "-m", "from e2e", "-", "imported:1")
	if r.Code != 0 || !strings.HasPrefix(strings.TrimSpace(r.Stdout), "sha256:") {
		t.Fatalf("import: %s", r)
	}
	got := strings.TrimSpace(d.DockerOK(t, "image", "inspect", "--format", "{{json .Config.Cmd}} {{.Comment}}", "imported:1"))
	if got != `["/bin/sh"] from e2e` {
		t.Errorf("imported image = %q", got)
	}
	loadBusybox(t, d)
	if out := d.DockerOK(t, "images", "--filter", "reference=imp*", "--format", "{{.Repository}}"); strings.TrimSpace(out) != "imported" {
		t.Errorf("filtered images = %q", out)
	}
	if out := d.DockerOK(t, "images", "--filter", "label=org.berth.test=busybox", "--format", "{{.Repository}}"); strings.TrimSpace(out) != "busybox" {
		t.Errorf("label filter = %q", out)
	}
	r = d.Docker(t, "images", "--filter", "colour=blue")
	if r.Code != 1 || !strings.Contains(r.Stderr, "invalid filter 'colour'") {
		t.Errorf("bad filter: %s", r)
	}
	// Untag the import: dangling now, so plain prune takes it.
	id := strings.TrimSpace(d.DockerOK(t, "image", "inspect", "--format", "{{.Id}}", "imported:1"))
	d.DockerOK(t, "tag", "imported:1", "keep:1")
	d.DockerOK(t, "rmi", "imported:1")
	if out := d.DockerOK(t, "image", "prune", "-f"); strings.Contains(out, id) {
		t.Errorf("prune took a tagged image:\n%s", out)
	}
	out := d.DockerOK(t, "image", "prune", "-a", "-f")
	if !strings.Contains(out, "deleted: "+id) || !strings.Contains(out, "Total reclaimed space:") {
		t.Errorf("prune -a:\n%s", out)
	}
	if out := d.DockerOK(t, "images", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("images after prune -a: %q", out)
	}

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(evOut.String(), "prune") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{"import", "load sha256:", "tag keep:1", "untag " + id, "delete", "prune"} {
		if !strings.Contains(evOut.String(), want) {
			t.Errorf("live events lack %q:\n%s", want, evOut.String())
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tarDir writes dir as a tar file (the rootfs docker import reads),
// with tar(1): the rootfs holds symlinks and devices as they are.
func tarDir(t *testing.T, dir, out string) {
	t.Helper()
	if b, err := exec.Command("tar", "-C", dir, "-cf", out, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar %s: %v: %s", dir, err, b)
	}
}
