package distribution_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/internal/testutil/registry"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// testManifest is the test image's manifest descriptor, from its layout.
func testManifest(t *testing.T) ocispec.Descriptor {
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

func newStore(t *testing.T) *content.Store {
	t.Helper()
	s, err := content.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustRef(t *testing.T, s string) reference.Named {
	t.Helper()
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		t.Fatal(err)
	}
	return reference.TagNameOnly(n)
}

// fastClient retries quickly so the hostile tests stay short.
func fastClient() *distribution.Client {
	return distribution.New(distribution.Config{Backoff: 10 * time.Millisecond, Retries: 3, StallTimeout: 300 * time.Millisecond})
}

// checkStore asserts that want are all stored and the ingest area is empty:
// nothing half-written is left behind.
func checkStore(t *testing.T, s *content.Store, want []digest.Digest) {
	t.Helper()
	for _, d := range want {
		if _, err := s.Info(context.Background(), d); err != nil {
			t.Errorf("blob %s: %v", d, err)
		}
	}
	ents, err := os.ReadDir(filepath.Join(s.Dir(), "ingest"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Errorf("ingest area not empty: %d entries", len(ents))
	}
}

func TestPullAuth(t *testing.T) {
	images := testutil.Images(t)
	want := testManifest(t)
	for _, tc := range []struct {
		name string
		auth registry.Auth
	}{
		{"anonymous", registry.Anonymous},
		{"basic", registry.Basic},
		{"token", registry.Token},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := registry.Start(t, registry.Options{Auth: tc.auth})
			reg.Seed(t, images.OCILayout, "test/busybox:latest")
			store := newStore(t)
			c := fastClient()
			var auth *distribution.AuthConfig
			if reg.User != "" {
				auth = &distribution.AuthConfig{Username: reg.User, Password: reg.Password}
				// Without credentials the registry must refuse, with the
				// error class the API turns into 401.
				_, err := c.Pull(context.Background(), mustRef(t, reg.Ref("test/busybox")), store, distribution.PullOptions{})
				if !errors.Is(err, errdefs.ErrUnauthorized) {
					t.Fatalf("anonymous pull from an auth registry: %v, want ErrUnauthorized", err)
				}
			}
			var (
				mu     sync.Mutex
				layers []int
			)
			res, err := c.Pull(context.Background(), mustRef(t, reg.Ref("test/busybox")), store, distribution.PullOptions{
				Auth: auth,
				Layer: func(ctx context.Context, i int, l ocispec.Descriptor) error {
					// The layer must be committed when we are told.
					if _, err := store.Info(ctx, l.Digest); err != nil {
						return err
					}
					mu.Lock()
					layers = append(layers, i)
					mu.Unlock()
					return nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Target.Digest != want.Digest || res.Manifest.Digest != want.Digest {
				t.Fatalf("repo digest %s / manifest %s, want %s", res.Target.Digest, res.Manifest.Digest, want.Digest)
			}
			slices.Sort(layers)
			if !slices.Equal(layers, []int{0, 1}) {
				t.Fatalf("layer callbacks %v, want [0 1]", layers)
			}
			all := []digest.Digest{res.Manifest.Digest, res.Config.Digest}
			for _, l := range res.Layers {
				all = append(all, l.Digest)
			}
			checkStore(t, store, all)
		})
	}
}

func TestPullTwiceDownloadsNothing(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	reg.Seed(t, testutil.Images(t).OCILayout, "test/busybox:latest")
	proxy := registry.NewProxy(t, reg)
	store := newStore(t)
	c := fastClient()
	ref := mustRef(t, proxy.Host+"/test/busybox:latest")
	first, err := c.Pull(context.Background(), ref, store, distribution.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if first.Fetched == 0 {
		t.Fatal("first pull fetched nothing")
	}
	proxy.ResetCount()
	var (
		statuses  []distribution.Status
		gotConfig digest.Digest
	)
	second, err := c.Pull(context.Background(), ref, store, distribution.PullOptions{
		Progress: func(p distribution.Progress) { statuses = append(statuses, p.Status) },
		// Called for a config already in the store too, with its bytes.
		Config: func(ctx context.Context, d ocispec.Descriptor, raw []byte) error {
			gotConfig = digest.FromBytes(raw)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if second.Fetched != 0 || proxy.Count("GET", "/blobs/") != 0 {
		t.Fatalf("second pull fetched %d bytes in %d blob GETs", second.Fetched, proxy.Count("GET", "/blobs/"))
	}
	if gotConfig != first.Config.Digest {
		t.Fatalf("config hook saw %s, want %s", gotConfig, first.Config.Digest)
	}
	if !slices.Contains(statuses, distribution.StatusExists) {
		t.Fatalf("no %q in progress %v", distribution.StatusExists, statuses)
	}
}

func TestPullByDigest(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	reg.Seed(t, testutil.Images(t).OCILayout, "test/busybox:latest")
	want := testManifest(t)
	res, err := fastClient().Pull(context.Background(), mustRef(t, reg.Ref("test/busybox@"+want.Digest.String())), newStore(t), distribution.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Target.Digest != want.Digest {
		t.Fatalf("digest %s, want %s", res.Target.Digest, want.Digest)
	}
	// A digest the registry does not have is ErrNotFound.
	missing := digest.FromString("nothing")
	_, err = fastClient().Pull(context.Background(), mustRef(t, reg.Ref("test/busybox@"+missing.String())), newStore(t), distribution.PullOptions{})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("pull of a missing digest: %v, want ErrNotFound", err)
	}
}

// putIndex puts an OCI index listing the test manifest for the given
// platforms as repo:tag (anonymous registry).
func putIndex(t *testing.T, reg *registry.Registry, repo, tag string, m ocispec.Descriptor, platforms ...ocispec.Platform) digest.Digest {
	t.Helper()
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	for _, p := range platforms {
		d := ocispec.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size, Platform: &p}
		idx.Manifests = append(idx.Manifests, d)
	}
	b, _ := json.Marshal(idx)
	req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/v2/%s/manifests/%s", reg.Host, repo, tag), bytes.NewReader(b))
	req.Header.Set("Content-Type", ocispec.MediaTypeImageIndex)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("put index: status %d", resp.StatusCode)
	}
	return digest.FromBytes(b)
}

func TestPullPlatform(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	reg.Seed(t, testutil.Images(t).OCILayout, "test/busybox:latest")
	m := testManifest(t)
	idxDigest := putIndex(t, reg, "test/busybox", "multi", m,
		ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"},
		ocispec.Platform{OS: "linux", Architecture: "amd64"})
	ref := mustRef(t, reg.Ref("test/busybox:multi"))

	res, err := fastClient().Pull(context.Background(), ref, newStore(t), distribution.PullOptions{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The repo digest is the index's, as docker records it; the image is
	// the platform's manifest.
	if res.Target.Digest != idxDigest || res.Manifest.Digest != m.Digest {
		t.Fatalf("target %s manifest %s; want %s and %s", res.Target.Digest, res.Manifest.Digest, idxDigest, m.Digest)
	}

	_, err = fastClient().Pull(context.Background(), ref, newStore(t), distribution.PullOptions{
		Platform: ocispec.Platform{OS: "linux", Architecture: "s390x"},
	})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("pull for a missing platform: %v, want ErrNotFound", err)
	}
	t.Logf("missing platform: %v", err)
}

func TestPushPullRoundTrip(t *testing.T) {
	reg := registry.Start(t, registry.Options{Auth: registry.Token})
	reg.Seed(t, testutil.Images(t).OCILayout, "src/busybox:latest")
	auth := &distribution.AuthConfig{Username: reg.User, Password: reg.Password}
	c := fastClient()
	ctx := context.Background()
	a := newStore(t)
	src := mustRef(t, reg.Ref("src/busybox:latest"))
	pulled, err := c.Pull(ctx, src, a, distribution.PullOptions{Auth: auth})
	if err != nil {
		t.Fatal(err)
	}

	// Push to another repository of the same registry: every layer can be
	// mounted from where it came from instead of uploaded.
	var statuses []distribution.Status
	dst := mustRef(t, reg.Ref("dst/busybox:v1"))
	pushed, err := c.Push(ctx, dst, pulled.Manifest, a, distribution.PushOptions{
		Auth:      auth,
		MountFrom: []reference.Named{src},
		Progress: func(p distribution.Progress) {
			if p.Status != distribution.StatusPushing && p.Status != distribution.StatusPreparing {
				statuses = append(statuses, p.Status)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if pushed.Digest != pulled.Manifest.Digest {
		t.Fatalf("pushed digest %s, want %s", pushed.Digest, pulled.Manifest.Digest)
	}
	if slices.Contains(statuses, distribution.StatusPushed) || !slices.Contains(statuses, distribution.StatusMounted) {
		t.Fatalf("statuses %v: want mounts, no uploads", statuses)
	}

	// Pulled back into an empty store, the image is the same.
	b := newStore(t)
	back, err := c.Pull(ctx, dst, b, distribution.PullOptions{Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	if back.Target.Digest != pushed.Digest || back.Config.Digest != pulled.Config.Digest {
		t.Fatalf("round trip: manifest %s config %s; want %s %s", back.Target.Digest, back.Config.Digest, pushed.Digest, pulled.Config.Digest)
	}
}

func TestPushUploadsAndSkips(t *testing.T) {
	reg := registry.Start(t, registry.Options{Auth: registry.Basic})
	reg.Seed(t, testutil.Images(t).OCILayout, "src/busybox:latest")
	proxy := registry.NewProxy(t, reg)
	auth := &distribution.AuthConfig{Username: reg.User, Password: reg.Password}
	c := fastClient()
	ctx := context.Background()
	store := newStore(t)
	pulled, err := c.Pull(ctx, mustRef(t, reg.Ref("src/busybox")), store, distribution.PullOptions{Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	dst := mustRef(t, proxy.Host+"/fresh/busybox:1")
	if _, err := c.Push(ctx, dst, pulled.Manifest, store, distribution.PushOptions{Auth: auth}); err != nil {
		t.Fatal(err)
	}
	if n := proxy.Count("PUT", "/blobs/uploads/"); n != 3 {
		t.Fatalf("first push finished %d uploads, want 3 (config and two layers)", n)
	}
	proxy.ResetCount()
	var statuses []distribution.Status
	res, err := c.Push(ctx, dst, pulled.Manifest, store, distribution.PushOptions{Auth: auth,
		Progress: func(p distribution.Progress) { statuses = append(statuses, p.Status) }})
	if err != nil {
		t.Fatal(err)
	}
	if n := proxy.Count("", "/blobs/uploads/"); n != 0 {
		t.Fatalf("second push made %d upload requests, want none", n)
	}
	if proxy.Count("HEAD", "/blobs/") != 3 || !slices.Contains(statuses, distribution.StatusLayerExists) {
		t.Fatalf("second push: %d HEADs, statuses %v", proxy.Count("HEAD", "/blobs/"), statuses)
	}
	if res.Digest != pulled.Manifest.Digest {
		t.Fatalf("digest %s, want %s", res.Digest, pulled.Manifest.Digest)
	}
}

func TestPullHostile(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	reg.Seed(t, testutil.Images(t).OCILayout, "test/busybox:latest")
	m := testManifest(t)
	for _, tc := range []struct {
		name    string
		faults  []registry.Fault
		wantErr error // nil: the pull must succeed despite the faults
	}{
		{"500 twice then fine", []registry.Fault{{Method: "GET", Path: "/blobs/", Times: 2}}, nil},
		{"manifest 503 once", []registry.Fault{{Method: "GET", Path: "/manifests/", Times: 1, Status: 503}}, nil},
		{"closed mid-blob once", []registry.Fault{{Method: "GET", Path: "/blobs/", Times: 1, Action: registry.CloseMidBody}}, nil},
		{"stalled mid-blob once", []registry.Fault{{Method: "GET", Path: "/blobs/", Times: 1, Action: registry.Stall}}, nil},
		{"stalled mid-blob always", []registry.Fault{{Method: "GET", Path: "/blobs/", Action: registry.Stall}}, errdefs.ErrUnavailable},
		{"500 always", []registry.Fault{{Method: "GET", Path: "/blobs/"}}, errdefs.ErrUnavailable},
		{"closed mid-blob always", []registry.Fault{{Method: "GET", Path: "/blobs/", Action: registry.CloseMidBody}}, nil},
		{"corrupt blob", []registry.Fault{{Method: "GET", Path: "/blobs/", Action: registry.Corrupt}}, errdefs.ErrInvalidArgument},
		// More bytes than the manifest promised: cut off, not stored.
		{"oversized blob", []registry.Fault{{Method: "GET", Path: "/blobs/", Action: registry.Replace,
			ContentType: "application/octet-stream", Body: bytes.Repeat([]byte{0}, 4<<20)}}, errdefs.ErrInvalidArgument},
		{"unknown manifest media type", []registry.Fault{{Method: "", Path: "/manifests/", Action: registry.Replace,
			ContentType: "application/vnd.example.unknown+json", Body: []byte(`{"schemaVersion":2,"mediaType":"application/vnd.example.unknown+json"}`)}}, errdefs.ErrInvalidArgument},
		{"schema 1 manifest", []registry.Fault{{Method: "", Path: "/manifests/", Action: registry.Replace,
			ContentType: "application/vnd.docker.distribution.manifest.v1+prettyjws", Body: []byte(`{"schemaVersion":1}`)}}, errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := registry.NewProxy(t, reg)
			for _, f := range tc.faults {
				proxy.Inject(f)
			}
			store := newStore(t)
			res, err := fastClient().Pull(context.Background(), mustRef(t, proxy.Host+"/test/busybox:latest"), store, distribution.PullOptions{})
			if tc.name == "closed mid-blob always" {
				// Every try breaks off: a clean error after the retries.
				if err == nil {
					t.Fatal("pull succeeded though every blob transfer broke off")
				}
				tc.wantErr = err
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				checkStore(t, store, []digest.Digest{res.Manifest.Digest, res.Config.Digest})
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			t.Logf("error: %v", err)
			// No manifest, no half blob: nothing looks like an image.
			if _, err := store.Info(context.Background(), m.Digest); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("manifest stored after a failed pull: %v", err)
			}
			checkStore(t, store, nil)
		})
	}
}

func TestLogin(t *testing.T) {
	for _, tc := range []struct {
		name string
		auth registry.Auth
	}{
		{"basic", registry.Basic},
		{"token", registry.Token},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := registry.Start(t, registry.Options{Auth: tc.auth})
			c := fastClient()
			if err := c.Login(context.Background(), reg.Host, distribution.AuthConfig{Username: reg.User, Password: reg.Password}); err != nil {
				t.Fatalf("good credentials: %v", err)
			}
			err := c.Login(context.Background(), reg.Host, distribution.AuthConfig{Username: reg.User, Password: "wrong"})
			if !errors.Is(err, errdefs.ErrUnauthorized) {
				t.Fatalf("wrong password: %v, want ErrUnauthorized", err)
			}
		})
	}
}

func TestTags(t *testing.T) {
	reg := registry.Start(t, registry.Options{Auth: registry.Token})
	layout := testutil.Images(t).OCILayout
	reg.Seed(t, layout, "test/busybox:a")
	reg.Seed(t, layout, "test/busybox:b")
	tags, err := fastClient().Tags(context.Background(), mustRef(t, reg.Ref("test/busybox")), &distribution.AuthConfig{Username: reg.User, Password: reg.Password})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(tags)
	if !slices.Equal(tags, []string{"a", "b"}) {
		t.Fatalf("tags %v, want [a b]", tags)
	}
}

// TestPullTLS pulls from a registry that speaks only HTTPS with a
// certificate from a private CA: refused until the CA is in the registry's
// certs.d directory, as docker's /etc/docker/certs.d/<host>/ca.crt.
func TestPullTLS(t *testing.T) {
	reg := registry.Start(t, registry.Options{TLS: true, Auth: registry.Basic})
	reg.Seed(t, testutil.Images(t).OCILayout, "test/busybox:latest")
	auth := &distribution.AuthConfig{Username: reg.User, Password: reg.Password}
	ref := mustRef(t, reg.Ref("test/busybox:latest"))

	_, err := fastClient().Pull(context.Background(), ref, newStore(t), distribution.PullOptions{Auth: auth})
	if err == nil {
		t.Fatal("pull trusted a certificate from an unknown CA")
	}
	t.Logf("untrusted: %v", err)

	certs := t.TempDir()
	if err := os.MkdirAll(filepath.Join(certs, reg.Host), 0o755); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(reg.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certs, reg.Host, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	c := distribution.New(distribution.Config{CertsDir: certs, Backoff: 10 * time.Millisecond})
	res, err := c.Pull(context.Background(), ref, newStore(t), distribution.PullOptions{Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	if res.Target.Digest != testManifest(t).Digest {
		t.Fatalf("digest %s", res.Target.Digest)
	}
	if err := c.Login(context.Background(), reg.Host, *auth); err != nil {
		t.Fatalf("login over TLS: %v", err)
	}
}

// TestPullQueue: with one transfer at a time, the second layer waits (and
// says so) and the pull still completes.
func TestPullQueue(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	reg.Seed(t, testutil.Images(t).OCILayout, "test/busybox:latest")
	c := distribution.New(distribution.Config{Jobs: 1})
	var statuses []distribution.Status
	_, err := c.Pull(context.Background(), mustRef(t, reg.Ref("test/busybox")), newStore(t), distribution.PullOptions{
		Progress: func(p distribution.Progress) { statuses = append(statuses, p.Status) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(statuses, distribution.StatusWaiting) {
		t.Fatalf("no %q in %v", distribution.StatusWaiting, statuses)
	}
}

// TestPullResumes: a blob transfer that breaks off half way is resumed with
// a Range request for the rest (through the token handshake), not fetched
// again from the start, and the blob still verifies.
func TestPullResumes(t *testing.T) {
	reg := registry.Start(t, registry.Options{Auth: registry.Token})
	reg.Seed(t, testutil.Images(t).OCILayout, "test/busybox:latest")
	m := testManifest(t)
	b, err := os.ReadFile(filepath.Join(testutil.Images(t).OCILayout, "blobs", "sha256", m.Digest.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(b, &man); err != nil {
		t.Fatal(err)
	}
	big := man.Layers[0]
	for _, l := range man.Layers {
		if l.Size > big.Size {
			big = l
		}
	}
	proxy := registry.NewProxy(t, reg)
	proxy.Inject(registry.Fault{Method: "GET", Path: "/blobs/" + big.Digest.String(), Times: 1, Action: registry.CloseMidBody})
	store := newStore(t)
	res, err := fastClient().Pull(context.Background(), mustRef(t, proxy.Host+"/test/busybox:latest"), store,
		distribution.PullOptions{Auth: &distribution.AuthConfig{Username: reg.User, Password: reg.Password}})
	if err != nil {
		t.Fatal(err)
	}
	ranges := proxy.Ranges("GET", "/blobs/"+big.Digest.String())
	want := fmt.Sprintf("bytes=%d-", big.Size/2)
	if len(ranges) != 2 || ranges[0] != "" || ranges[1] != want {
		t.Fatalf("requests for the big layer had ranges %q, want [\"\" %q]", ranges, want)
	}
	var total int64
	for _, l := range man.Layers {
		total += l.Size
	}
	if res.Fetched != total+man.Config.Size {
		t.Fatalf("fetched %d bytes, want %d", res.Fetched, total+man.Config.Size)
	}
	checkStore(t, store, []digest.Digest{big.Digest})
}
