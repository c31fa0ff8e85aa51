package tarball

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/testutil"
)

// ociLayout is an OCI layout held in memory: blobs by digest and index.json.
type ociLayout struct {
	blobs map[digest.Digest][]byte
	index ocispec.Index
}

func readLayout(t *testing.T, dir string) *ociLayout {
	t.Helper()
	l := &ociLayout{blobs: map[digest.Digest][]byte{}}
	ents, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		l.blobs[digest.NewDigestFromEncoded(digest.SHA256, e.Name())] = b
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &l.index); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *ociLayout) put(t *testing.T, mt string, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(b)
	l.blobs[d] = b
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(b))}
}

// tar writes the layout as a tar, in a fresh directory.
func (l *ociLayout) tar(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755)
	for d, b := range l.blobs {
		os.WriteFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()), b, 0o644)
	}
	ib, _ := json.Marshal(l.index)
	os.WriteFile(filepath.Join(dir, "index.json"), ib, 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	return tarDir(t, dir)
}

// multiPlatform turns the test image's layout into one whose index.json
// points at a nested image index for linux/amd64 and linux/arm64/v8 (the
// arm64 image reuses the layers under its own config), with a full name.
func multiPlatform(t *testing.T) (l *ociLayout, amd, arm digest.Digest) {
	t.Helper()
	l = readLayout(t, testutil.Images(t).OCILayout)
	amdDesc := l.index.Manifests[0]
	var m ocispec.Manifest
	json.Unmarshal(l.blobs[amdDesc.Digest], &m)
	var cfg ocispec.Image
	json.Unmarshal(l.blobs[m.Config.Digest], &cfg)
	cfg.Architecture, cfg.Variant = "arm64", "v8"
	m.Config = l.put(t, ocispec.MediaTypeImageConfig, cfg)
	armDesc := l.put(t, ocispec.MediaTypeImageManifest, m)
	armDesc.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	amdDesc.Annotations = nil
	amdDesc.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	nested := l.put(t, ocispec.MediaTypeImageIndex, ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{armDesc, amdDesc}})
	nested.Annotations = map[string]string{"io.containerd.image.name": "example.com/multi/busybox:2"}
	l.index.Manifests = []ocispec.Descriptor{nested}
	var amdM ocispec.Manifest
	json.Unmarshal(l.blobs[amdDesc.Digest], &amdM)
	return l, amdM.Config.Digest, m.Config.Digest
}

func TestLoadSelectsPlatform(t *testing.T) {
	ctx := context.Background()
	l, amd, arm := multiPlatform(t)
	archive := l.tar(t)
	tests := []struct {
		platform string
		want     digest.Digest
		err      string
	}{
		{"", amd, ""},
		{"linux/arm64", arm, ""},
		{"linux/s390x", "", "no manifest for platform linux/s390x (the image has: linux/arm64/v8, linux/amd64)"},
	}
	for _, tt := range tests {
		t.Run(tt.platform, func(t *testing.T) {
			p, err := image.ParsePlatform(tt.platform)
			if err != nil {
				t.Fatal(err)
			}
			cs := newContent(t)
			res, err := Load(ctx, cs, bytes.NewReader(archive), LoadOptions{Platform: p})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want %q", err, tt.err)
				}
				if b := blobs(t, cs); len(b) != 0 {
					t.Errorf("blobs left: %v", b)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rec := res.Images[0].Record
			if rec.ID != tt.want || rec.Index == nil || len(rec.RepoTags) != 1 || rec.RepoTags[0] != "example.com/multi/busybox:2" {
				t.Errorf("got %s index %v tags %v; want %s", rec.ID, rec.Index, rec.RepoTags, tt.want)
			}
		})
	}
}

func TestLoadRejectsUnknownMediaType(t *testing.T) {
	ctx := context.Background()
	l := readLayout(t, testutil.Images(t).OCILayout)
	var m ocispec.Manifest
	json.Unmarshal(l.blobs[l.index.Manifests[0].Digest], &m)
	m.Layers[1].MediaType = "application/vnd.example.layer.v1+squashfs"
	d := l.put(t, ocispec.MediaTypeImageManifest, m)
	l.index.Manifests[0] = d
	cs := newContent(t)
	_, err := Load(ctx, cs, bytes.NewReader(l.tar(t)), LoadOptions{})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), `unknown media type "application/vnd.example.layer.v1+squashfs"`) {
		t.Fatalf("got %v", err)
	}
	if b := blobs(t, cs); len(b) != 0 {
		t.Errorf("blobs left: %v", b)
	}
}
