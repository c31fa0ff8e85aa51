package registry

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// benchVersion changes whenever BenchImage's output would.
const benchVersion = "1"

// BenchImage writes, under dir, an OCI image layout of the pull/push
// benchmark's image and returns the layout's path. The image is about
// 150 MB unpacked in three layers, like a typical application image:
//
//	layer 1: 12,000 small text files (0.5–8 KiB) in nested directories
//	layer 2: three 20 MiB files of random bytes (incompressible)
//	layer 3: 2,000 small files and two 15 MiB random files
//
// Contents are pseudo-random from a fixed seed, so every run (and every
// machine) gets the same digests. An existing current layout is reused:
// generating and compressing takes several seconds.
func BenchImage(dir string) (string, error) {
	out := filepath.Join(dir, "bench-image-v"+benchVersion)
	if _, err := os.Stat(filepath.Join(out, "index.json")); err == nil {
		return out, nil
	}
	tmp, err := os.MkdirTemp(dir, ".bench-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Join(tmp, "blobs", "sha256"), 0o755); err != nil {
		return "", err
	}
	rng := rand.New(rand.NewChaCha8([32]byte{'b', 'e', 'r', 't', 'h'}))
	type spec struct {
		small      int
		large      int
		largeBytes int64
	}
	var (
		layers  []ocispec.Descriptor
		diffIDs []digest.Digest
	)
	for i, s := range []spec{{small: 12000}, {large: 3, largeBytes: 20 << 20}, {small: 2000, large: 2, largeBytes: 15 << 20}} {
		desc, diffID, err := writeBenchLayer(tmp, i, rng, s.small, s.large, s.largeBytes)
		if err != nil {
			return "", fmt.Errorf("bench layer %d: %w", i, err)
		}
		layers = append(layers, desc)
		diffIDs = append(diffIDs, diffID)
	}
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Config:   ocispec.ImageConfig{Cmd: []string{"/bin/sh"}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	}
	cfgDesc, err := writeJSONBlob(tmp, ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		return "", err
	}
	m := ocispec.Manifest{Versioned: imgspec.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc, Layers: layers}
	mDesc, err := writeJSONBlob(tmp, ocispec.MediaTypeImageManifest, m)
	if err != nil {
		return "", err
	}
	mDesc.Annotations = map[string]string{ocispec.AnnotationRefName: "latest"}
	idx := ocispec.Index{Versioned: imgspec.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{mDesc}}
	b, _ := json.Marshal(idx)
	if err := os.WriteFile(filepath.Join(tmp, "index.json"), b, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, out); err != nil {
		if _, serr := os.Stat(filepath.Join(out, "index.json")); serr == nil {
			return out, nil // another process won the race
		}
		return "", err
	}
	return out, nil
}

func writeJSONBlob(dir, mt string, v any) (ocispec.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d := digest.FromBytes(b)
	if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()), b, 0o644); err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(b))}, nil
}

type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.n += int64(len(p))
	return len(p), nil
}

func writeBenchLayer(dir string, n int, rng *rand.Rand, small, large int, largeBytes int64) (ocispec.Descriptor, digest.Digest, error) {
	f, err := os.CreateTemp(dir, "layer-")
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer f.Close()
	compressed := &countingHash{h: sha256.New()}
	uncompressed := sha256.New()
	// BestSpeed: generating the image must stay a few seconds; the ratio
	// hardly differs for these contents.
	gz, err := gzip.NewWriterLevel(io.MultiWriter(f, compressed), gzip.BestSpeed)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	tw := tar.NewWriter(io.MultiWriter(gz, uncompressed))
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	root := fmt.Sprintf("data%d", n)
	dirs := map[string]bool{}
	mkdir := func(p string) error {
		if dirs[p] {
			return nil
		}
		dirs[p] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX})
	}
	if err := mkdir(root); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	words := []string{"berth", "layer", "overlay", "snapshot", "digest", "registry", "manifest", "config", "kernel", "namespace", "cgroup", "mount", "\n"}
	buf := make([]byte, 0, 8192)
	for i := range small {
		d := fmt.Sprintf("%s/d%02d/e%02d", root, i%50, (i/50)%20)
		if err := mkdir(fmt.Sprintf("%s/d%02d", root, i%50)); err != nil {
			return ocispec.Descriptor{}, "", err
		}
		if err := mkdir(d); err != nil {
			return ocispec.Descriptor{}, "", err
		}
		size := 512 + rng.IntN(8192-512)
		buf = buf[:0]
		for len(buf) < size {
			buf = append(buf, words[rng.IntN(len(words))]...)
			buf = append(buf, ' ')
		}
		buf = buf[:size]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("%s/f%05d.txt", d, i), Mode: 0o644, Size: int64(size), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return ocispec.Descriptor{}, "", err
		}
		if _, err := tw.Write(buf); err != nil {
			return ocispec.Descriptor{}, "", err
		}
	}
	chunk := make([]byte, 1<<20)
	for i := range large {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("%s/large%d.bin", root, i), Mode: 0o644, Size: largeBytes, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return ocispec.Descriptor{}, "", err
		}
		for left := largeBytes; left > 0; left -= int64(len(chunk)) {
			for j := 0; j+8 <= len(chunk); j += 8 {
				v := rng.Uint64()
				for k := range 8 {
					chunk[j+k] = byte(v >> (8 * k))
				}
			}
			w := chunk
			if left < int64(len(w)) {
				w = w[:left]
			}
			if _, err := tw.Write(w); err != nil {
				return ocispec.Descriptor{}, "", err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if err := gz.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if err := f.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(compressed.h.Sum(nil)))
	if err := os.Rename(f.Name(), filepath.Join(dir, "blobs", "sha256", d.Encoded())); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	diffID := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(uncompressed.Sum(nil)))
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: compressed.n}, diffID, nil
}
