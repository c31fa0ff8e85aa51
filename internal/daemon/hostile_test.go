package daemon

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

// wrongDiffIDLayout is the test image's OCI layout with the config's
// second diff ID changed: every blob matches its digest, so only
// unpacking (which hashes the uncompressed tar) can find the lie.
func wrongDiffIDLayout(t *testing.T) []byte {
	t.Helper()
	dir := testutil.Images(t).OCILayout
	blobs := map[string][]byte{}
	ents, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		blobs[e.Name()] = b
	}
	var idx ocispec.Index
	ib, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	json.Unmarshal(ib, &idx)
	var m ocispec.Manifest
	json.Unmarshal(blobs[idx.Manifests[0].Digest.Encoded()], &m)
	var cfg ocispec.Image
	json.Unmarshal(blobs[m.Config.Digest.Encoded()], &cfg)
	cfg.RootFS.DiffIDs[1] = digest.FromString("not this layer")
	put := func(v any) ocispec.Descriptor {
		b, _ := json.Marshal(v)
		d := digest.FromBytes(b)
		blobs[d.Encoded()] = b
		return ocispec.Descriptor{Digest: d, Size: int64(len(b))}
	}
	cd := put(cfg)
	m.Config.Digest, m.Config.Size = cd.Digest, cd.Size
	md := put(m)
	idx.Manifests[0].Digest, idx.Manifests[0].Size = md.Digest, md.Size
	ib, _ = json.Marshal(idx)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	add("index.json", ib)
	for name, b := range blobs {
		add("blobs/sha256/"+name, b)
	}
	tw.Close()
	return buf.Bytes()
}

func TestLoadWrongDiffIDLeavesNothing(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	archive := wrongDiffIDLayout(t)
	for _, driver := range []string{"overlay", "vfs"} {
		t.Run(driver, func(t *testing.T) {
			e, err := New(ctx, Config{Root: t.TempDir(), StorageDriver: driver})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			_, err = e.ImageLoad(ctx, ImageLoadOptions{Input: bytes.NewReader(archive)})
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "sha256:") {
				t.Fatalf("got %v, want a diff ID mismatch", err)
			}
			list, _ := e.ImageList(ctx, ImageListOptions{})
			if len(list.Images) != 0 {
				t.Errorf("images: %v", list.Images)
			}
			if b, sn := e.counts(t); b != 0 || sn != 0 {
				t.Errorf("%d blobs, %d snapshots left", b, sn)
			}
		})
	}
}
