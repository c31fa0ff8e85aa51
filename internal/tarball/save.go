package tarball

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
)

// SaveImage is one image to write, with the names to give it in the archive.
type SaveImage struct {
	Record image.Record
	// RepoTags are written to manifest.json in docker's familiar form
	// (busybox:latest); empty saves the image untagged.
	RepoTags []string
}

// Save writes imgs to w as one docker-archive, the way `docker save` does
// since docker 25: manifest.json lists, per image, the config and the
// layers under blobs/sha256/. Layers are written uncompressed, so each
// layer file's digest is its diff ID, as docker load and skopeo expect;
// blobs shared by several images are written once. zstd layers are
// written as stored (docker and skopeo detect the compression).
//
// The same tar is also an OCI image layout (oci-layout, index.json and an
// OCI manifest per image over those blobs), as docker 25's is, so OCI
// tools (skopeo's oci-archive:) read it too. Each tag gets an index entry
// naming it with io.containerd.image.name and the OCI ref.name (the tag).
func Save(ctx context.Context, cs content.Opener, w io.Writer, imgs []SaveImage) error {
	if len(imgs) == 0 {
		return fmt.Errorf("save: no image: %w", errdefs.ErrInvalidArgument)
	}
	tw := tar.NewWriter(w)
	written := map[string]bool{}
	var entries []dockerManifestEntry
	if err := addDir(tw, "blobs/"); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := addDir(tw, "blobs/sha256/"); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	sizes := map[string]int64{}
	write := func(name string, d digest.Digest, gunzip bool) (int64, error) {
		if n, ok := sizes[name]; ok {
			return n, nil
		}
		n, err := copyBlob(ctx, tw, cs, name, d, gunzip)
		if err != nil {
			return 0, err
		}
		sizes[name] = n
		return n, nil
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	for _, im := range imgs {
		e := dockerManifestEntry{RepoTags: im.RepoTags}
		if e.RepoTags == nil {
			e.RepoTags = []string{}
		}
		cfgName := blobPath(im.Record.ID)
		cfgSize, err := write(cfgName, im.Record.ID, false)
		if err != nil {
			return fmt.Errorf("save %s: config: %w", im.Record.ID, err)
		}
		e.Config = cfgName
		man := ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: im.Record.ID, Size: cfgSize},
			Layers:    []ocispec.Descriptor{},
		}
		for i, l := range im.Record.Layers {
			name, fileDigest, mt := blobPath(l.DiffID), l.DiffID, ocispec.MediaTypeImageLayer
			gz := l.Blob.MediaType == image.MediaTypeDockerLayerGzip || l.Blob.MediaType == ocispec.MediaTypeImageLayerGzip ||
				l.Blob.MediaType == image.MediaTypeDockerLayerForeign || l.Blob.MediaType == ocispec.MediaTypeImageLayerNonDistributableGzip //nolint:staticcheck // still found in the wild
			if !gz && l.Blob.Digest != l.DiffID {
				// zstd: as stored.
				name, fileDigest, mt = blobPath(l.Blob.Digest), l.Blob.Digest, ocispec.MediaTypeImageLayerZstd
			}
			n, err := write(name, l.Blob.Digest, gz)
			if err != nil {
				return fmt.Errorf("save %s: layer %d: %w", im.Record.ID, i, err)
			}
			e.Layers = append(e.Layers, name)
			man.Layers = append(man.Layers, ocispec.Descriptor{MediaType: mt, Digest: fileDigest, Size: n})
		}
		entries = append(entries, e)

		mb, err := json.Marshal(man)
		if err != nil {
			return fmt.Errorf("save: %w", err)
		}
		md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb))}
		if name := blobPath(md.Digest); !written[name] {
			if err := addFile(tw, name, md.Size, bytes.NewReader(mb)); err != nil {
				return fmt.Errorf("save: %w", err)
			}
			written[name] = true
		}
		if len(im.RepoTags) == 0 {
			idx.Manifests = append(idx.Manifests, md)
		}
		for _, t := range im.RepoTags {
			n, err := image.ParseTag(t)
			if err != nil {
				return fmt.Errorf("save: %w", err)
			}
			d := md
			d.Annotations = map[string]string{annotationImageName: n.String(), ocispec.AnnotationRefName: n.Tag()}
			idx.Manifests = append(idx.Manifests, d)
		}
	}
	ib, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := addFile(tw, "index.json", int64(len(ib)), bytes.NewReader(ib)); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	mb, err := json.Marshal(entries)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := addFile(tw, "manifest.json", int64(len(mb)), bytes.NewReader(mb)); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	layout := []byte(`{"imageLayoutVersion":"` + ocispec.ImageLayoutVersion + `"}`)
	if err := addFile(tw, ocispec.ImageLayoutFile, int64(len(layout)), bytes.NewReader(layout)); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

func blobPath(d digest.Digest) string {
	return path.Join("blobs", d.Algorithm().String(), d.Encoded())
}

// epoch is the time written on archive entries: the archive's bytes then
// depend only on the images, so saving twice gives the same file.
var epoch = time.Unix(0, 0).UTC()

func addDir(tw *tar.Writer, name string) error {
	return tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX})
}

func addFile(tw *tar.Writer, name string, size int64, r io.Reader) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o444, Size: size, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return err
	}
	n, err := io.Copy(tw, r)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s: wrote %d bytes, expected %d", name, n, size)
	}
	return nil
}

// copyBlob writes blob d as the file name; gunzip decompresses it first,
// which needs a pass to learn the size the tar header must carry.
func copyBlob(ctx context.Context, tw *tar.Writer, cs content.Opener, name string, d digest.Digest, gunzip bool) (int64, error) {
	b, err := cs.Open(ctx, d)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	if !gunzip {
		return b.Size(), addFile(tw, name, b.Size(), content.NewReader(b))
	}
	open := func() (io.ReadCloser, error) {
		zr, err := gzip.NewReader(content.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("blob %s: gzip: %v: %w", d, err, errdefs.ErrInvalidArgument)
		}
		return zr, nil
	}
	zr, err := open()
	if err != nil {
		return 0, err
	}
	size, err := io.Copy(io.Discard, zr)
	zr.Close()
	if err != nil {
		return 0, fmt.Errorf("blob %s: gzip: %v", d, err)
	}
	if zr, err = open(); err != nil {
		return 0, err
	}
	defer zr.Close()
	return size, addFile(tw, name, size, ctxReader{ctx, zr})
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
