package tarball

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func newContent(t *testing.T) *content.Store {
	t.Helper()
	cs, err := content.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func blobs(t *testing.T, cs *content.Store) []digest.Digest {
	t.Helper()
	var out []digest.Digest
	if err := cs.Walk(context.Background(), func(i content.Info) error { out = append(out, i.Digest); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// tarDir makes a tar of dir, as `tar -C dir -c .` would.
func tarDir(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = rel
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			tw.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
	return buf.Bytes()
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func TestLoadSaveRoundTrip(t *testing.T) {
	ctx := context.Background()
	imgs := testutil.Images(t)
	docker, err := os.ReadFile(imgs.DockerArchive)
	if err != nil {
		t.Fatal(err)
	}
	oci := tarDir(t, imgs.OCILayout)
	tests := []struct {
		name   string
		in     []byte
		tagged bool
	}{
		{"docker-archive", docker, true},
		{"docker-archive gzip", gzipBytes(docker), true},
		{"oci layout", oci, false},
		{"oci layout gzip", gzipBytes(oci), false},
	}
	var ids []digest.Digest
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := newContent(t)
			res, err := Load(ctx, cs, bytes.NewReader(tt.in), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Images) != 1 {
				t.Fatalf("%d images", len(res.Images))
			}
			rec := res.Images[0].Record
			if tt.tagged && !slices.Equal(rec.RepoTags, []string{"docker.io/library/busybox:latest"}) {
				t.Errorf("tags %v", rec.RepoTags)
			}
			if len(rec.Layers) != 2 {
				t.Fatalf("layers %v", rec.Layers)
			}
			ids = append(ids, rec.ID)
			for _, d := range rec.Blobs() {
				if _, err := cs.Info(ctx, d); err != nil {
					t.Errorf("blob %s: %v", d, err)
				}
			}
			// Nothing but the image's own blobs stays.
			want := slices.Clone(rec.Blobs())
			slices.Sort(want)
			if got := blobs(t, cs); !slices.Equal(got, want) {
				t.Errorf("store has %v, want %v", got, want)
			}

			var out bytes.Buffer
			if err := Save(ctx, cs, &out, []SaveImage{{Record: rec, RepoTags: []string{"busybox:latest"}}}); err != nil {
				t.Fatal(err)
			}
			cs2 := newContent(t)
			res2, err := Load(ctx, cs2, &out, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			rec2 := res2.Images[0].Record
			if rec2.ID != rec.ID {
				t.Errorf("config digest changed: %s → %s", rec.ID, rec2.ID)
			}
			for i := range rec.Layers {
				if rec2.Layers[i].DiffID != rec.Layers[i].DiffID || rec2.Layers[i].ChainID != rec.Layers[i].ChainID {
					t.Errorf("layer %d changed: %+v → %+v", i, rec.Layers[i], rec2.Layers[i])
				}
			}
			if tt.name == "docker-archive" && rec2.Target.Digest != rec.Target.Digest {
				t.Errorf("manifest digest changed: %s → %s", rec.Target.Digest, rec2.Target.Digest)
			}
		})
	}
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Errorf("formats disagree on the image ID: %v", ids)
		}
	}
}

func TestSaveReadableBySkopeo(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed (Debian: skopeo)")
	}
	ctx := context.Background()
	cs := newContent(t)
	imgs := testutil.Images(t)
	f, err := os.Open(imgs.DockerArchive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Load(ctx, cs, f, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "saved.tar")
	w, _ := os.Create(out)
	if err := Save(ctx, cs, w, []SaveImage{{Record: res.Images[0].Record, RepoTags: []string{"busybox:latest"}}}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	b, err := exec.Command("skopeo", "inspect", "--raw", "--config", "docker-archive:"+out).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, b)
	}
	if digest.FromBytes(b) != res.Images[0].Record.ID {
		t.Errorf("skopeo sees config %s, want %s", digest.FromBytes(b), res.Images[0].Record.ID)
	}
	// The same file read as an OCI layout.
	b, err = exec.Command("skopeo", "inspect", "--raw", "--config", "oci-archive:"+out+":latest").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect oci-archive: %v\n%s", err, b)
	}
	if digest.FromBytes(b) != res.Images[0].Record.ID {
		t.Errorf("skopeo (oci-archive) sees config %s, want %s", digest.FromBytes(b), res.Images[0].Record.ID)
	}
}

func TestSavedArchiveIsAnOCILayout(t *testing.T) {
	ctx := context.Background()
	cs := newContent(t)
	f, err := os.Open(testutil.Images(t).DockerArchive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Load(ctx, cs, f, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := res.Images[0].Record
	var out bytes.Buffer
	if err := Save(ctx, cs, &out, []SaveImage{{Record: rec, RepoTags: []string{"busybox:latest", "localhost:5000/x:2"}}}); err != nil {
		t.Fatal(err)
	}
	// Without manifest.json, Load takes the OCI route.
	oci := rewrite(t, out.Bytes(), func(h *tar.Header, b []byte) (*tar.Header, []byte) {
		if h.Name == "manifest.json" {
			return nil, nil
		}
		return h, b
	})
	res2, err := Load(ctx, newContent(t), bytes.NewReader(oci), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res2.Images) != 2 {
		t.Fatalf("%d images, want one per tag", len(res2.Images))
	}
	var tags []string
	for _, im := range res2.Images {
		if im.Record.ID != rec.ID {
			t.Errorf("ID %s, want %s", im.Record.ID, rec.ID)
		}
		tags = append(tags, im.Record.RepoTags...)
	}
	slices.Sort(tags)
	if !slices.Equal(tags, []string{"docker.io/library/busybox:latest", "localhost:5000/x:2"}) {
		t.Errorf("tags %v", tags)
	}
}

// rewrite copies a tar, letting edit change or drop entries.
func rewrite(t *testing.T, in []byte, edit func(h *tar.Header, body []byte) (*tar.Header, []byte)) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(in))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		h, body = edit(h, body)
		if h == nil {
			continue
		}
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	tw.Close()
	return buf.Bytes()
}

func TestLoadHostileLeavesNothing(t *testing.T) {
	ctx := context.Background()
	imgs := testutil.Images(t)
	docker, err := os.ReadFile(imgs.DockerArchive)
	if err != nil {
		t.Fatal(err)
	}
	oci := tarDir(t, imgs.OCILayout)
	flipLayer := func(h *tar.Header, b []byte) (*tar.Header, []byte) {
		if strings.HasSuffix(h.Name, "layer.tar") {
			b = append([]byte(nil), b...)
			b[len(b)-1] ^= 1
		}
		return h, b
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"truncated", docker[:len(docker)/2], "truncated archive"},
		{"layer digest mismatch", rewrite(t, docker, flipLayer), "diff ID"},
		{"escaping path", rewrite(t, docker, func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if h.Name == "manifest.json" {
				h.Name = "../manifest.json"
			}
			return h, b
		}), "path leaves the archive"},
		{"escaping symlink", rewrite(t, docker, func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if strings.HasSuffix(h.Name, "VERSION") {
				return &tar.Header{Name: h.Name, Typeflag: tar.TypeSymlink, Linkname: "../../../etc/passwd"}, nil
			}
			return h, b
		}), "path leaves the archive"},
		{"missing layer", rewrite(t, docker, func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if strings.HasSuffix(h.Name, "layer.tar") {
				return nil, nil
			}
			return h, b
		}), "archive has no file"},
		{"oci blob not matching its name", rewrite(t, oci, func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if strings.HasPrefix(h.Name, "blobs/") && len(b) > 1000 {
				b = append([]byte(nil), b...)
				b[100] ^= 1
			}
			return h, b
		}), "expected sha256:"},
		{"oci missing blob", rewrite(t, oci, func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if strings.HasPrefix(h.Name, "blobs/") && len(b) > 1000 {
				return nil, nil
			}
			return h, b
		}), "missing blob"},
		{"not an image", tarDir(t, t.TempDir()), "neither manifest.json"},
		{"garbage", []byte("this is not a tar file at all, not even close, really................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................."), "read tar"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := newContent(t)
			_, err := Load(ctx, cs, bytes.NewReader(tt.in), LoadOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error class: %v", err)
			}
			if b := blobs(t, cs); len(b) != 0 {
				t.Errorf("blobs left behind: %v", b)
			}
		})
	}
}

func TestLoadFailureKeepsExistingBlobs(t *testing.T) {
	ctx := context.Background()
	imgs := testutil.Images(t)
	docker, err := os.ReadFile(imgs.DockerArchive)
	if err != nil {
		t.Fatal(err)
	}
	cs := newContent(t)
	if _, err := Load(ctx, cs, bytes.NewReader(docker), LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	before := blobs(t, cs)
	// The same archive, truncated after its first layer: that layer was
	// already stored and must survive the failed load.
	if _, err := Load(ctx, cs, bytes.NewReader(docker[:len(docker)-600]), LoadOptions{}); err == nil {
		t.Fatal("truncated archive loaded")
	}
	if after := blobs(t, cs); !slices.Equal(before, after) {
		t.Errorf("blobs changed: %v → %v", before, after)
	}
}
