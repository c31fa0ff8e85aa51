package daemon_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/daemon"
	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/internal/testutil/registry"
)

// newRegistryEngine opens an Engine on a temp root, with fast retries so
// the hostile cases stay short.
func newRegistryEngine(t *testing.T) *daemon.Engine {
	t.Helper()
	e, err := daemon.New(context.Background(), daemon.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	daemon.SetRegistry(e, distribution.Config{Backoff: 10 * time.Millisecond, Retries: 2})
	return e
}

func layoutManifest(t *testing.T) ocispec.Descriptor {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.Images(t).OCILayout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	return idx.Manifests[0]
}

// TestPullPushPull pulls the test image, pushes it under another name,
// removes it and pulls the pushed name: the image ID, repo digest and size
// survive the round trip.
func TestPullPushPull(t *testing.T) {
	testutil.RequireRoot(t)
	reg := registry.Start(t, registry.Options{Auth: registry.Basic})
	reg.Seed(t, testutil.Images(t).OCILayout, "test/busybox:latest")
	auth := &distribution.AuthConfig{Username: reg.User, Password: reg.Password}
	want := layoutManifest(t)
	ctx := context.Background()

	e := newRegistryEngine(t)
	_, sub := e.Events().Subscribe(time.Time{}, nil)
	defer sub.Close()
	var statuses []distribution.Status
	res, err := e.Pull(ctx, reg.Ref("test/busybox"), daemon.PullOptions{Auth: auth,
		Progress: func(p distribution.Progress) { statuses = append(statuses, p.Status) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != want.Digest {
		t.Fatalf("repo digest %s, want %s", res.Digest, want.Digest)
	}
	if got, wantRD := res.Image.RepoDigests, reg.Ref("test/busybox@"+want.Digest.String()); len(got) != 1 || got[0] != wantRD {
		t.Fatalf("repo digests %v, want [%s]", got, wantRD)
	}
	if len(res.Image.RepoTags) != 1 || res.Image.RepoTags[0] != reg.Ref("test/busybox:latest") {
		t.Fatalf("repo tags %v", res.Image.RepoTags)
	}
	if len(res.Image.Layers) != 2 {
		t.Fatalf("%d layers recorded, want 2", len(res.Image.Layers))
	}
	// Every layer is unpacked into its chain-ID snapshot, and was counted.
	for i, l := range res.Image.Layers {
		info, err := e.Snapshotter().Stat(ctx, l.ChainID.String())
		if err != nil || info.Kind != snapshot.KindCommitted {
			t.Fatalf("layer %d snapshot %s: %+v, %v", i, l.ChainID, info, err)
		}
		if l.Size <= 0 {
			t.Fatalf("layer %d size %d", i, l.Size)
		}
	}
	if !slices.Contains(statuses, distribution.StatusPullComplete) {
		t.Fatalf("no %q in progress %v", distribution.StatusPullComplete, statuses)
	}
	again, err := e.Pull(ctx, reg.Ref("test/busybox"), daemon.PullOptions{Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	if again.Image.Size != res.Image.Size {
		t.Fatalf("second pull: size %d, first %d", again.Image.Size, res.Image.Size)
	}
	if again.Status != "Image is up to date for "+reg.Ref("test/busybox:latest") {
		t.Fatalf("second pull status %q", again.Status)
	}

	pushed, err := e.Push(ctx, reg.Ref("other/name:v2"), daemon.PushOptions{Auth: auth})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("push of an absent tag: %v, want ErrNotFound", err)
	}
	if err := tagForTest(ctx, e, res.Image.ID.String(), reg.Ref("other/name:v2")); err != nil {
		t.Fatal(err)
	}
	pushed, err = e.Push(ctx, reg.Ref("other/name:v2"), daemon.PushOptions{Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	if pushed.Digest != want.Digest || pushed.Tag != "v2" {
		t.Fatalf("pushed %+v, want digest %s", pushed, want.Digest)
	}
	// docker's pull and push events: the actor is the reference, "name"
	// its repository. The failed push published nothing.
	var got []string
	for len(sub.C) > 0 {
		m := <-sub.C
		got = append(got, string(m.Action)+" "+m.Actor.ID+" "+m.Actor.Attributes["name"])
	}
	wantEv := []string{
		"pull " + reg.Ref("test/busybox:latest") + " " + reg.Ref("test/busybox"),
		"pull " + reg.Ref("test/busybox:latest") + " " + reg.Ref("test/busybox"),
		"push " + reg.Ref("other/name:v2") + " " + reg.Ref("other/name"),
	}
	if !slices.Equal(got, wantEv) {
		t.Fatalf("events %q, want %q", got, wantEv)
	}

	// rmi frees the blobs and snapshots; pulling the pushed name brings the
	// same image back.
	if _, err := e.ImageRemove(ctx, res.Image.ID.String(), daemon.ImageRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Content().Info(ctx, res.Image.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("config blob after rmi: %v", err)
	}
	back, err := e.Pull(ctx, reg.Ref("other/name:v2"), daemon.PullOptions{Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	if back.Image.ID != res.Image.ID || back.Digest != pushed.Digest || back.Image.Size != res.Image.Size {
		t.Fatalf("round trip: id %s digest %s size %d; want %s %s %d", back.Image.ID, back.Digest, back.Image.Size, res.Image.ID, pushed.Digest, res.Image.Size)
	}
}

// tagForTest tags through the image store (the Engine's tag verb is not
// this package's to test).
func tagForTest(ctx context.Context, e *daemon.Engine, id, ref string) error {
	rec, err := e.Images().Lookup(ctx, id)
	if err != nil {
		return err
	}
	n, err := image.ParseTag(ref)
	if err != nil {
		return err
	}
	_, err = e.Images().Tag(ctx, rec.ID, n)
	return err
}

// TestPullFailureRecordsNothing: a registry that fails every blob leaves no
// image, and nothing the store would show.
func TestPullFailureRecordsNothing(t *testing.T) {
	testutil.RequireRoot(t)
	reg := registry.Start(t, registry.Options{})
	reg.Seed(t, testutil.Images(t).OCILayout, "test/busybox:latest")
	for _, tc := range []struct {
		name  string
		fault registry.Fault
	}{
		{"500", registry.Fault{Method: "GET", Path: "/blobs/"}},
		{"closed mid-blob", registry.Fault{Method: "GET", Path: "/blobs/", Action: registry.CloseMidBody}},
		{"corrupt", registry.Fault{Method: "GET", Path: "/blobs/", Action: registry.Corrupt}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := registry.NewProxy(t, reg)
			proxy.Inject(tc.fault)
			e := newRegistryEngine(t)
			_, err := e.Pull(context.Background(), proxy.Host+"/test/busybox:latest", daemon.PullOptions{})
			if err == nil {
				t.Fatal("pull through a failing registry succeeded")
			}
			recs, err := e.Images().List(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 0 {
				t.Fatalf("%d images recorded after a failed pull", len(recs))
			}
			ents, _ := os.ReadDir(filepath.Join(e.Root(), "content", "ingest"))
			if len(ents) != 0 {
				t.Fatalf("ingest not empty after a failed pull: %d entries", len(ents))
			}
		})
	}
}

func TestLoginEngine(t *testing.T) {
	testutil.RequireRoot(t)
	reg := registry.Start(t, registry.Options{Auth: registry.Token})
	e := newRegistryEngine(t)
	res, err := e.Login(context.Background(), daemon.LoginOptions{Registry: reg.Host,
		Auth: distribution.AuthConfig{Username: reg.User, Password: reg.Password}})
	if err != nil || res.Status != "Login Succeeded" {
		t.Fatalf("login: %+v, %v", res, err)
	}
	_, err = e.Login(context.Background(), daemon.LoginOptions{Registry: reg.Host,
		Auth: distribution.AuthConfig{Username: reg.User, Password: "nope"}})
	if !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Fatalf("bad password: %v, want ErrUnauthorized", err)
	}
}

// TestPullWrongPlatform: a single-platform image for another architecture
// is refused once its config is in, before its layers are downloaded.
func TestPullWrongPlatform(t *testing.T) {
	testutil.RequireRoot(t)
	reg := registry.Start(t, registry.Options{})
	reg.Seed(t, testutil.Images(t).OCILayout, "test/busybox:latest")
	proxy := registry.NewProxy(t, reg)
	e := newRegistryEngine(t)
	_, err := e.Pull(context.Background(), proxy.Host+"/test/busybox:latest", daemon.PullOptions{Platform: "linux/s390x"})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("pull for s390x: %v, want ErrNotFound", err)
	}
	t.Logf("error: %v", err)
	if recs, _ := e.Images().List(context.Background()); len(recs) != 0 {
		t.Fatalf("%d images recorded", len(recs))
	}
}

// TestPullConcurrent: two pulls of the same image at once (compose does
// this) both succeed and leave one image.
func TestPullConcurrent(t *testing.T) {
	testutil.RequireRoot(t)
	reg := registry.Start(t, registry.Options{})
	reg.Seed(t, testutil.Images(t).OCILayout, "test/busybox:latest")
	reg.Seed(t, testutil.Images(t).OCILayout, "test/busybox:other")
	e := newRegistryEngine(t)
	ctx := context.Background()
	errs := make(chan error, 2)
	for _, tag := range []string{"latest", "other"} {
		go func() {
			_, err := e.Pull(ctx, reg.Ref("test/busybox:"+tag), daemon.PullOptions{})
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	recs, err := e.Images().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || len(recs[0].RepoTags) != 2 {
		t.Fatalf("images after concurrent pulls: %+v", recs)
	}
	ents, _ := os.ReadDir(filepath.Join(e.Root(), "content", "ingest"))
	if len(ents) != 0 {
		t.Fatalf("ingest not empty: %d entries", len(ents))
	}
}

// TestPushImported pushes an image made by import (one uncompressed layer,
// a Docker schema 2 manifest written by berth) and pulls it back into a
// fresh engine: the registry takes berth's own manifests, not only those it
// served.
func TestPushImported(t *testing.T) {
	testutil.RequireRoot(t)
	reg := registry.Start(t, registry.Options{})
	ctx := context.Background()
	e := newRegistryEngine(t)
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	body := []byte("hello from an imported image\n")
	if err := tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(body)
	tw.Close()
	ref := reg.Ref("imported/hello:1")
	imp, err := e.ImageImport(ctx, daemon.ImageImportOptions{Source: &tarball, Reference: ref})
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := e.Push(ctx, ref, daemon.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fresh := newRegistryEngine(t)
	back, err := fresh.Pull(ctx, ref, daemon.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if back.Image.ID != imp.ID || back.Digest != pushed.Digest {
		t.Fatalf("pulled %s (%s), pushed %s (%s)", back.Image.ID, back.Digest, imp.ID, pushed.Digest)
	}
}

// TestConfigCertsDir: the Engine reaches a TLS registry whose CA sits in
// Config.CertsDir (laid out as docker's certs.d), and not without it.
func TestConfigCertsDir(t *testing.T) {
	testutil.RequireRoot(t)
	reg := registry.Start(t, registry.Options{TLS: true})
	reg.Seed(t, testutil.Images(t).OCILayout, "test/busybox:latest")
	ca, err := os.ReadFile(reg.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	certs := t.TempDir()
	if err := os.MkdirAll(filepath.Join(certs, reg.Host), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certs, reg.Host, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		certs string
		ok    bool
	}{
		{"with the CA", certs, true},
		{"without", t.TempDir(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := daemon.New(ctx, daemon.Config{Root: t.TempDir(), CertsDir: tc.certs, InsecureRegistries: []string{"registry.invalid:5000"}})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			info, err := e.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ic := info.RegistryConfig.IndexConfigs["registry.invalid:5000"]; ic == nil || ic.Secure {
				t.Errorf("info does not show the insecure registry: %+v", info.RegistryConfig)
			}
			_, err = e.Pull(ctx, reg.Ref("test/busybox"), daemon.PullOptions{})
			if (err == nil) != tc.ok {
				t.Fatalf("pull: %v, want success %v", err, tc.ok)
			}
		})
	}
}
