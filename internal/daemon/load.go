package daemon

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/distribution/reference"
	evtypes "github.com/moby/moby/api/types/events"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/tarball"
)

// ImageLoadOptions says what to load.
type ImageLoadOptions struct {
	// Input is a docker-archive or OCI layout tar, gzipped or not.
	Input io.Reader
	// Platform picks from multi-platform OCI indexes ("" is linux/<arch>).
	Platform string
}

// LoadedImage is one image a load added.
type LoadedImage struct {
	ID       digest.Digest
	RepoTags []string // familiar names
	// Moved are the tags (familiar) this image took from another image,
	// with that image's ID: docker says it "renames the old one".
	Moved map[string]digest.Digest
}

// ImageLoadResult lists the images loaded.
type ImageLoadResult struct {
	Images []LoadedImage
}

// ImageLoad reads an archive into the stores and unpacks every layer into
// its snapshot, so the images are ready to run. On error nothing of the
// archive stays: no image, no blob, no snapshot.
func (e *Engine) ImageLoad(ctx context.Context, opts ImageLoadOptions) (res ImageLoadResult, err error) {
	p, err := image.ParsePlatform(opts.Platform)
	if err != nil {
		return res, err
	}
	release := e.images.Hold()
	held := true
	defer func() {
		if held {
			release()
		}
		if err != nil {
			// Collect takes back the blobs and snapshots of a half-done
			// load; it must run without our hold.
			if _, cerr := e.collect(context.WithoutCancel(ctx)); cerr != nil {
				log.From(ctx).Warn("load: clean up after failure; blobs or snapshots may stay until the next prune", log.KeyErr, cerr)
			}
		}
	}()
	start := time.Now()
	loaded, err := tarball.Load(ctx, e.content, opts.Input, tarball.LoadOptions{Platform: p})
	if err != nil {
		return res, err
	}
	log.From(ctx).Debug("load: archive read and verified", "images", len(loaded.Images), "blobs", len(loaded.NewBlobs), "took", time.Since(start))
	start = time.Now()
	// Unpack every image before recording any, so an archive whose
	// second image is broken adds no image at all.
	recs := make([]image.Record, len(loaded.Images))
	for i, im := range loaded.Images {
		if recs[i], err = e.unpack(ctx, im.Record); err != nil {
			return res, fmt.Errorf("load: %w", err)
		}
	}
	log.From(ctx).Debug("load: layers unpacked", "took", time.Since(start))
	for i, rec := range recs {
		moved := map[string]digest.Digest{}
		for _, t := range rec.RepoTags {
			if old, err := e.images.Lookup(ctx, t); err == nil && old.ID != rec.ID {
				moved[image.Familiar(t)] = old.ID
			}
		}
		if _, err := e.images.Put(ctx, rec); err != nil {
			for _, done := range recs[:i] {
				if derr := e.images.Delete(context.WithoutCancel(ctx), done.ID); derr != nil {
					log.From(ctx).Warn("load: remove image after a later one failed", log.KeyImage, done.ID, log.KeyErr, derr)
				}
			}
			return res, fmt.Errorf("load: %w", err)
		}
		res.Images = append(res.Images, LoadedImage{ID: rec.ID, RepoTags: familiar(rec.RepoTags), Moved: moved})
	}
	release()
	held = false
	for _, im := range res.Images {
		// docker names a loaded image by its ID in the event.
		e.emitImage(ctx, evtypes.ActionLoad, im.ID.String(), im.ID.String())
	}
	return res, nil
}

// ImageSaveOptions says what to save and where.
type ImageSaveOptions struct {
	// Refs are names (name:tag; a bare name saves every tag of that
	// repository) or IDs (saved untagged).
	Refs   []string
	Output io.Writer
	// Platform, if set (os/arch[/variant] or the API's JSON), is the
	// platform every image must be for: berth keeps one platform per
	// image, so a mismatch is an error rather than a choice.
	Platform string
}

// ImageSave writes the images as one docker-archive.
func (e *Engine) ImageSave(ctx context.Context, opts ImageSaveOptions) error {
	if len(opts.Refs) == 0 {
		return fmt.Errorf("save: no image named: %w", errdefs.ErrInvalidArgument)
	}
	var want *ocispec.Platform
	if opts.Platform != "" {
		p, err := image.ParsePlatform(opts.Platform)
		if err != nil {
			return fmt.Errorf("save: %w", err)
		}
		want = &p
	}
	var imgs []tarball.SaveImage
	index := map[digest.Digest]int{}
	add := func(r image.Record, ref, tag string) error {
		if want != nil {
			if err := e.checkPlatform(ctx, r, ref, *want); err != nil {
				return err
			}
		}
		i, ok := index[r.ID]
		if !ok {
			i = len(imgs)
			index[r.ID] = i
			imgs = append(imgs, tarball.SaveImage{Record: r})
		}
		if tag != "" && !slices.Contains(imgs[i].RepoTags, tag) {
			imgs[i].RepoTags = append(imgs[i].RepoTags, tag)
		}
		return nil
	}
	for _, ref := range opts.Refs {
		if n, err := reference.ParseNormalizedNamed(ref); err == nil && reference.IsNameOnly(n) {
			recs, err := e.images.List(ctx)
			if err != nil {
				return err
			}
			found := false
			for _, r := range recs {
				for _, t := range r.RepoTags {
					if tn, err := reference.ParseNormalizedNamed(t); err == nil && tn.Name() == n.Name() {
						if err := add(r, ref, image.Familiar(t)); err != nil {
							return err
						}
						found = true
					}
				}
			}
			if found {
				continue
			}
		}
		r, err := e.images.Lookup(ctx, ref)
		if err != nil {
			return err
		}
		tag := ""
		if n, err := image.ParseReference(ref); err == nil && slices.Contains(r.RepoTags, n.String()) {
			tag = image.Familiar(n.String())
		}
		if err := add(r, ref, tag); err != nil {
			return err
		}
	}
	if err := tarball.Save(ctx, e.content, opts.Output, imgs); err != nil {
		return err
	}
	for _, im := range imgs {
		e.emitImage(ctx, evtypes.ActionSave, im.Record.ID.String(), im.Record.ID.String())
	}
	return nil
}

// checkPlatform refuses an image that is not for want, in docker's words.
func (e *Engine) checkPlatform(ctx context.Context, r image.Record, ref string, want ocispec.Platform) error {
	c, err := e.config(ctx, r)
	if err != nil {
		return err
	}
	have := ocispec.Platform{OS: c.OS, Architecture: c.Architecture, Variant: c.Variant}
	one := ocispec.Index{Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest, Platform: &have}}}
	if _, err := image.SelectManifest(one, want); err != nil {
		return fmt.Errorf("image with reference %s was found but does not match the specified platform: wanted %s, actual: %s: %w",
			ref, image.FormatPlatform(want), image.FormatPlatform(have), errdefs.ErrNotFound)
	}
	return nil
}

// ImageImportOptions describe `docker import`.
type ImageImportOptions struct {
	// Source is a root filesystem as a tar, gzipped or not.
	Source io.Reader
	// Reference, if set, tags the new image (name[:tag]).
	Reference string
	// Changes are Dockerfile instructions applied to the config
	// (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME, STOPSIGNAL).
	Changes []string
	// Message is recorded as the history comment.
	Message string
	// Platform is the os/arch to record ("" is linux/<arch>).
	Platform string
}

// ImageImportResult names the new image.
type ImageImportResult struct {
	ID digest.Digest
}

// ImageImport makes a one-layer image from a root filesystem tarball.
func (e *Engine) ImageImport(ctx context.Context, opts ImageImportOptions) (res ImageImportResult, err error) {
	p, err := image.ParsePlatform(opts.Platform)
	if err != nil {
		return res, err
	}
	var tag reference.NamedTagged
	if opts.Reference != "" {
		if tag, err = image.ParseTag(opts.Reference); err != nil {
			return res, err
		}
	}
	cfg := ocispec.Image{
		Platform: p,
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
	if err := image.ApplyChanges(&cfg.Config, opts.Changes); err != nil {
		return res, fmt.Errorf("import: %w", err)
	}
	release := e.images.Hold()
	held := true
	defer func() {
		if held {
			release()
		}
		if err != nil {
			if _, cerr := e.collect(context.WithoutCancel(ctx)); cerr != nil {
				log.From(ctx).Warn("import: clean up after failure; blobs or snapshots may stay until the next prune", log.KeyErr, cerr)
			}
		}
	}()
	layer, diffID, err := e.storeLayer(ctx, opts.Source)
	if err != nil {
		return res, fmt.Errorf("import: %w", err)
	}
	now := time.Now().UTC()
	cfg.Created = &now
	cfg.RootFS.DiffIDs = []digest.Digest{diffID}
	comment := opts.Message
	if comment == "" {
		comment = "Imported from -"
	}
	cfg.History = []ocispec.History{{Created: &now, Comment: comment}}
	rec, err := image.NewImage(ctx, e.content, cfg, nil, []ocispec.Descriptor{layer})
	if err != nil {
		return res, fmt.Errorf("import: %w", err)
	}
	rec.Layers[0].Size = layer.Size
	rec.Size = layer.Size
	if tag != nil {
		rec.RepoTags = []string{tag.String()}
	}
	if rec, err = e.unpack(ctx, rec); err != nil {
		return res, fmt.Errorf("import: %w", err)
	}
	if rec, err = e.images.Put(ctx, rec); err != nil {
		return res, fmt.Errorf("import: %w", err)
	}
	release()
	held = false
	e.emitImage(ctx, evtypes.ActionImport, rec.ID.String(), rec.ID.String())
	return ImageImportResult{ID: rec.ID}, nil
}

// storeLayer stores a rootfs tar as an uncompressed layer blob (docker's
// import does the same), so its digest is its diff ID.
func (e *Engine) storeLayer(ctx context.Context, src io.Reader) (ocispec.Descriptor, digest.Digest, error) {
	if src == nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("no source: %w", errdefs.ErrInvalidArgument)
	}
	br := bufio.NewReaderSize(src, 1<<20)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return ocispec.Descriptor{}, "", fmt.Errorf("gzip: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		defer zr.Close()
		r = zr
	}
	w, err := e.content.Begin(ctx, ocispec.Descriptor{MediaType: image.MediaTypeDockerLayer})
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer w.Abort()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(w, h), r); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return ocispec.Descriptor{}, "", fmt.Errorf("read layer: truncated: %w", errdefs.ErrInvalidArgument)
		}
		return ocispec.Descriptor{}, "", fmt.Errorf("read layer: %w", err)
	}
	d, err := w.Commit(ctx)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	return d, digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil))), nil
}
