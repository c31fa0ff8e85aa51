package tarball

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/log"
)

// Store is what Load and Save need of the content store.
type Store interface {
	content.Opener
	content.Ingester
	Delete(ctx context.Context, d digest.Digest) error
}

// memLimit: files up to this size stay in memory while the tar streams
// (manifests, configs, docker's VERSION and json files); larger ones go to
// the content store at once.
const (
	memLimit      = 1 << 20
	memTotalLimit = 64 << 20
)

// LoadOptions say how to read an archive.
type LoadOptions struct {
	// Platform picks the manifest from a multi-platform OCI index.
	Platform ocispec.Platform
}

// LoadResult lists the images of the archive and the blobs Load added to
// the store, so a caller whose next step fails can take them out again.
type LoadResult struct {
	Images   []LoadedImage
	NewBlobs []digest.Digest
}

// LoadedImage is one image of the archive, its blobs in the content store.
type LoadedImage struct {
	// Record has ID, Target and Layers (with diff and chain IDs) set, and
	// RepoTags from the archive (normalised); Size is the uncompressed
	// layer size when the archive's layers were uncompressed, else 0.
	Record image.Record
	Config ocispec.Image
}

// file is one regular file of the archive: in memory, or a blob.
type file struct {
	data []byte
	blob ocispec.Descriptor // set when staged in the content store
}

type loader struct {
	cs      Store
	files   map[string]*file
	links   map[string]string // link name → target name
	created map[digest.Digest]bool
	mem     int64
}

// Load reads a docker-archive or OCI layout tar (gzipped or not) from r
// into cs. On error nothing Load added stays in cs.
func Load(ctx context.Context, cs Store, r io.Reader, opts LoadOptions) (res LoadResult, err error) {
	l := &loader{cs: cs, files: map[string]*file{}, links: map[string]string{}, created: map[digest.Digest]bool{}}
	defer func() {
		if err != nil {
			l.undo(ctx)
			res = LoadResult{}
			err = fmt.Errorf("load: %w", err)
		}
	}()
	if opts.Platform.OS == "" {
		opts.Platform = image.DefaultPlatform()
	}
	br := bufio.NewReaderSize(r, 1<<20)
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return res, fmt.Errorf("gzip: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		defer zr.Close()
		src = zr
	}
	if err := l.read(ctx, tar.NewReader(src)); err != nil {
		return res, err
	}
	var imgs []LoadedImage
	switch {
	case l.has("manifest.json"):
		imgs, err = l.dockerArchive(ctx)
	case l.has("index.json"):
		imgs, err = l.ociLayout(ctx, opts.Platform)
	default:
		return res, fmt.Errorf("archive has neither manifest.json (docker-archive) nor index.json (OCI layout): %w", errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return res, err
	}
	if len(imgs) == 0 {
		return res, fmt.Errorf("archive holds no image: %w", errdefs.ErrInvalidArgument)
	}
	// Blobs staged but not referenced (docker's v1 "json" files, duplicates)
	// go again.
	used := map[digest.Digest]bool{}
	for _, im := range imgs {
		for _, d := range im.Record.Blobs() {
			used[d] = true
		}
	}
	for d := range l.created {
		if !used[d] {
			l.deleteBlob(ctx, d)
		} else {
			res.NewBlobs = append(res.NewBlobs, d)
		}
	}
	res.Images = imgs
	return res, nil
}

func (l *loader) undo(ctx context.Context) {
	for d := range l.created {
		l.deleteBlob(ctx, d)
	}
}

func (l *loader) deleteBlob(ctx context.Context, d digest.Digest) {
	// The load failed or did not need the blob; a concurrent load of the
	// same blob would see it vanish, which the image store's Hold/Collect
	// protocol does not cover. Loads of one archive are rare enough.
	if err := l.cs.Delete(context.WithoutCancel(ctx), d); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		log.From(ctx).Warn("load: delete blob; it stays until the next prune", log.KeyDigest, d, log.KeyErr, err)
	}
	delete(l.created, d)
}

// clean turns a tar entry name into the archive-relative name the
// manifests use, refusing names that leave the archive.
func clean(name string) (string, error) {
	if path.IsAbs(name) {
		return "", fmt.Errorf("tar entry %q: absolute path: %w", name, errdefs.ErrInvalidArgument)
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("tar entry %q: path leaves the archive: %w", name, errdefs.ErrInvalidArgument)
	}
	return c, nil
}

func (l *loader) has(name string) bool {
	_, err := l.lookup(name)
	return err == nil
}

// lookup finds the file a manifest names, following the archive's own
// symlinks and hard links (docker save links duplicate layers).
func (l *loader) lookup(name string) (*file, error) {
	c, err := clean(name)
	if err != nil {
		return nil, err
	}
	for range 16 {
		if f, ok := l.files[c]; ok {
			return f, nil
		}
		t, ok := l.links[c]
		if !ok {
			return nil, fmt.Errorf("archive has no file %q: %w", name, errdefs.ErrInvalidArgument)
		}
		c = t
	}
	return nil, fmt.Errorf("archive file %q: too many links: %w", name, errdefs.ErrInvalidArgument)
}

func (l *loader) read(ctx context.Context, tr *tar.Reader) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		name, err := clean(h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir, tar.TypeXGlobalHeader:
			continue
		case tar.TypeSymlink:
			target := h.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			t, err := clean(target)
			if err != nil {
				return fmt.Errorf("symlink %s: %w", name, err)
			}
			l.links[name] = t
			continue
		case tar.TypeLink:
			t, err := clean(h.Linkname)
			if err != nil {
				return fmt.Errorf("hard link %s: %w", name, err)
			}
			l.links[name] = t
			continue
		case tar.TypeReg:
		default:
			return fmt.Errorf("tar entry %q: unexpected type %q: %w", h.Name, h.Typeflag, errdefs.ErrInvalidArgument)
		}
		if err := l.readFile(ctx, name, h.Size, tr); err != nil {
			return err
		}
	}
}

// blobName returns the digest a path like blobs/sha256/<hex> promises.
func blobName(name string) (digest.Digest, bool) {
	parts := strings.Split(name, "/")
	if len(parts) != 3 || parts[0] != "blobs" {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[2])
	return d, d.Validate() == nil
}

func (l *loader) readFile(ctx context.Context, name string, size int64, r io.Reader) error {
	want, named := blobName(name)
	if size <= memLimit && l.mem+size <= memTotalLimit {
		b, err := io.ReadAll(io.LimitReader(r, size+1))
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("read %s: truncated archive: %w", name, errdefs.ErrInvalidArgument)
		}
		if err != nil {
			return fmt.Errorf("read %s: %v: %w", name, err, errdefs.ErrInvalidArgument)
		}
		if int64(len(b)) != size {
			return fmt.Errorf("read %s: truncated (%d of %d bytes): %w", name, len(b), size, errdefs.ErrInvalidArgument)
		}
		if named && digest.FromBytes(b) != want {
			return fmt.Errorf("blob %s: digest %s, expected %s: %w", name, digest.FromBytes(b), want, errdefs.ErrInvalidArgument)
		}
		l.mem += size
		l.files[name] = &file{data: b}
		return nil
	}
	desc := ocispec.Descriptor{Size: size}
	if named {
		desc.Digest = want
	}
	w, err := l.cs.Begin(ctx, desc)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		// Stored before: still read the bytes and check them, so a
		// corrupt archive fails however full the store is.
		h := sha256.New()
		n, err := io.Copy(h, r)
		if err != nil {
			return fmt.Errorf("read %s: %v: %w", name, err, errdefs.ErrInvalidArgument)
		}
		got := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))
		if n != size || got != want {
			return fmt.Errorf("blob %s: digest %s, expected %s: %w", name, got, want, errdefs.ErrInvalidArgument)
		}
		l.files[name] = &file{blob: ocispec.Descriptor{Digest: want, Size: size}}
		return nil
	}
	if err != nil {
		return fmt.Errorf("store %s: %w", name, err)
	}
	defer w.Abort()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(w, h), r); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("read %s: truncated archive: %w", name, errdefs.ErrInvalidArgument)
		}
		return fmt.Errorf("read %s: %w", name, err)
	}
	if !named {
		// The digest was not known at Begin: if the store already has
		// the blob it belongs to someone else, and must not be deleted
		// when this load fails.
		d := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))
		if b, err := l.cs.Open(ctx, d); err == nil {
			b.Close()
			l.files[name] = &file{blob: ocispec.Descriptor{Digest: d, Size: size}}
			return nil
		}
	}
	got, err := w.Commit(ctx)
	if err != nil {
		return fmt.Errorf("store %s: %w", name, err)
	}
	l.created[got.Digest] = true
	l.files[name] = &file{blob: got}
	return nil
}

// bytesOf returns a small file's content, reading a staged blob if needed.
func (l *loader) bytesOf(ctx context.Context, name string) ([]byte, *file, error) {
	f, err := l.lookup(name)
	if err != nil {
		return nil, nil, err
	}
	if f.data != nil || f.blob.Digest == "" {
		return f.data, f, nil
	}
	b, err := content.ReadAll(ctx, l.cs, f.blob.Digest, image.MaxManifestSize)
	return b, f, err
}

// store makes sure f is a blob in the content store, with media type mt,
// and returns its descriptor.
func (l *loader) store(ctx context.Context, f *file, mt string) (ocispec.Descriptor, error) {
	if f.blob.Digest != "" {
		d := f.blob
		d.MediaType = mt
		return d, nil
	}
	want := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(f.data), Size: int64(len(f.data))}
	w, err := l.cs.Begin(ctx, want)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		f.blob = want
		return want, nil
	}
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer w.Abort()
	if _, err := w.Write(f.data); err != nil {
		return ocispec.Descriptor{}, err
	}
	d, err := w.Commit(ctx)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	l.created[d.Digest] = true
	f.blob = d
	return d, nil
}

// storeBytes stores generated bytes (a synthesised manifest).
func (l *loader) storeBytes(ctx context.Context, b []byte, mt string) (ocispec.Descriptor, error) {
	return l.store(ctx, &file{data: b}, mt)
}

// dockerManifestEntry is one image of a docker-archive's manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func (l *loader) dockerArchive(ctx context.Context) ([]LoadedImage, error) {
	mb, _, err := l.bytesOf(ctx, "manifest.json")
	if err != nil {
		return nil, err
	}
	var entries []dockerManifestEntry
	if err := json.Unmarshal(mb, &entries); err != nil {
		return nil, fmt.Errorf("manifest.json: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	var out []LoadedImage
	for i, e := range entries {
		im, err := l.dockerImage(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("manifest.json entry %d: %w", i, err)
		}
		out = append(out, im)
	}
	return out, nil
}

func (l *loader) dockerImage(ctx context.Context, e dockerManifestEntry) (LoadedImage, error) {
	cb, cf, err := l.bytesOf(ctx, e.Config)
	if err != nil {
		return LoadedImage{}, fmt.Errorf("config: %w", err)
	}
	cfg, err := image.ParseConfig(cb)
	if err != nil {
		return LoadedImage{}, err
	}
	if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
		return LoadedImage{}, fmt.Errorf("%d layers but %d diff IDs in the config: %w", len(e.Layers), len(cfg.RootFS.DiffIDs), errdefs.ErrInvalidArgument)
	}
	cd, err := l.store(ctx, cf, image.MediaTypeDockerConfig)
	if err != nil {
		return LoadedImage{}, fmt.Errorf("config: %w", err)
	}
	man := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: image.MediaTypeDockerManifest, Config: cd}
	rec := image.Record{ID: cd.Digest}
	chains := identity.ChainIDs(append([]digest.Digest(nil), cfg.RootFS.DiffIDs...))
	var size int64
	for i, name := range e.Layers {
		f, err := l.lookup(name)
		if err != nil {
			return LoadedImage{}, fmt.Errorf("layer %d: %w", i, err)
		}
		d, err := l.store(ctx, f, image.MediaTypeDockerLayer)
		if err != nil {
			return LoadedImage{}, fmt.Errorf("layer %d: %w", i, err)
		}
		diffID, compressed, err := l.diffID(ctx, d)
		if err != nil {
			return LoadedImage{}, fmt.Errorf("layer %d (%s): %w", i, name, err)
		}
		if diffID != cfg.RootFS.DiffIDs[i] {
			return LoadedImage{}, fmt.Errorf("layer %d (%s): diff ID %s, expected %s: %w", i, name, diffID, cfg.RootFS.DiffIDs[i], errdefs.ErrInvalidArgument)
		}
		ly := image.Layer{Blob: d, DiffID: diffID, ChainID: chains[i]}
		if compressed {
			d.MediaType = image.MediaTypeDockerLayerGzip
			ly.Blob = d
		} else {
			ly.Size = d.Size
			size += d.Size
		}
		man.Layers = append(man.Layers, d)
		rec.Layers = append(rec.Layers, ly)
	}
	mb, err := json.Marshal(man)
	if err != nil {
		return LoadedImage{}, err
	}
	if rec.Target, err = l.storeBytes(ctx, mb, image.MediaTypeDockerManifest); err != nil {
		return LoadedImage{}, fmt.Errorf("manifest: %w", err)
	}
	rec.Size = size
	for _, t := range e.RepoTags {
		n, err := image.ParseTag(t)
		if err != nil {
			return LoadedImage{}, err
		}
		rec.RepoTags = append(rec.RepoTags, n.String())
	}
	return LoadedImage{Record: rec, Config: cfg}, nil
}

// diffID is the digest of the uncompressed layer: the blob's own digest
// for a plain tar, else the digest of its gunzipped stream.
func (l *loader) diffID(ctx context.Context, d ocispec.Descriptor) (digest.Digest, bool, error) {
	b, err := l.cs.Open(ctx, d.Digest)
	if err != nil {
		return "", false, err
	}
	defer b.Close()
	var magic [2]byte
	if _, err := b.ReadAt(magic[:], 0); err != nil && !errors.Is(err, io.EOF) {
		return "", false, err
	}
	if magic != [2]byte{0x1f, 0x8b} {
		return d.Digest, false, nil
	}
	zr, err := gzip.NewReader(content.NewReader(b))
	if err != nil {
		return "", true, fmt.Errorf("gzip: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	h := sha256.New()
	if _, err := io.Copy(h, zr); err != nil {
		return "", true, fmt.Errorf("gzip: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil))), true, nil
}

// Annotations naming an image in an OCI index: the full name containerd
// and docker write, and the OCI one (often only a tag).
const annotationImageName = "io.containerd.image.name"

func (l *loader) ociLayout(ctx context.Context, p ocispec.Platform) ([]LoadedImage, error) {
	if lb, _, err := l.bytesOf(ctx, ocispec.ImageLayoutFile); err == nil {
		var lay ocispec.ImageLayout
		if err := json.Unmarshal(lb, &lay); err != nil || lay.Version != ocispec.ImageLayoutVersion {
			return nil, fmt.Errorf("%s: unsupported layout version %q: %w", ocispec.ImageLayoutFile, lay.Version, errdefs.ErrInvalidArgument)
		}
	}
	ib, _, err := l.bytesOf(ctx, "index.json")
	if err != nil {
		return nil, err
	}
	idx, err := image.ParseIndex(ocispec.MediaTypeImageIndex, ib)
	if err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	// Every blob the index reaches goes into the store first, so Resolve
	// can read it from there.
	var out []LoadedImage
	for i, d := range idx.Manifests {
		if err := l.storeTree(ctx, d, 0); err != nil {
			return nil, fmt.Errorf("index.json entry %d: %w", i, err)
		}
		r, err := image.Resolve(ctx, l.cs, d, p)
		if err != nil {
			return nil, fmt.Errorf("index.json entry %d: %w", i, err)
		}
		rec := image.Record{ID: r.ID(), Target: r.Target}
		if r.Target.Digest != d.Digest {
			idxDesc := d
			rec.Index = &idxDesc
		}
		chains := identity.ChainIDs(append([]digest.Digest(nil), r.Config.RootFS.DiffIDs...))
		var size int64
		for j, ld := range r.Manifest.Layers {
			if ld.MediaType == image.MediaTypeDockerLayer || ld.MediaType == ocispec.MediaTypeImageLayer {
				// An uncompressed layer's digest is its diff ID: check it now.
				if ld.Digest != r.Config.RootFS.DiffIDs[j] {
					return nil, fmt.Errorf("index.json entry %d: layer %d: digest %s, expected diff ID %s: %w", i, j, ld.Digest, r.Config.RootFS.DiffIDs[j], errdefs.ErrInvalidArgument)
				}
				size += ld.Size
			}
			ly := image.Layer{Blob: ld, DiffID: r.Config.RootFS.DiffIDs[j], ChainID: chains[j]}
			if ld.Digest == ly.DiffID {
				ly.Size = ld.Size
			}
			rec.Layers = append(rec.Layers, ly)
		}
		rec.Size = size
		if name := ociName(d); name != "" {
			rec.RepoTags = []string{name}
		}
		out = append(out, LoadedImage{Record: rec, Config: r.Config})
	}
	return out, nil
}

// ociName is the image name an index entry carries, if it is a full
// reference; a bare tag ("latest", as skopeo and umoci write) names no
// repository, so the image loads untagged, as docker does.
func ociName(d ocispec.Descriptor) string {
	for _, k := range []string{annotationImageName, ocispec.AnnotationRefName} {
		v := d.Annotations[k]
		if v == "" || (k == ocispec.AnnotationRefName && !strings.ContainsAny(v, "/:")) {
			continue
		}
		n, err := image.ParseReference(v)
		if err != nil {
			continue
		}
		if _, ok := n.(reference.Tagged); ok {
			return n.String()
		}
	}
	return ""
}

// storeTree puts d and every blob below it (manifests of an index, config
// and layers of a manifest) into the content store, from the archive's
// blobs/ directory.
func (l *loader) storeTree(ctx context.Context, d ocispec.Descriptor, depth int) error {
	if depth > 4 {
		return fmt.Errorf("indexes nested too deep: %w", errdefs.ErrInvalidArgument)
	}
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("digest %q: %v: %w", d.Digest, err, errdefs.ErrInvalidArgument)
	}
	name := path.Join("blobs", d.Digest.Algorithm().String(), d.Digest.Encoded())
	f, err := l.lookup(name)
	if err != nil {
		return fmt.Errorf("missing blob %s: %w", d.Digest, errdefs.ErrInvalidArgument)
	}
	sz := int64(len(f.data))
	if f.blob.Digest != "" {
		sz = f.blob.Size
	}
	if sz != d.Size {
		return fmt.Errorf("blob %s: size %d, descriptor says %d: %w", d.Digest, sz, d.Size, errdefs.ErrInvalidArgument)
	}
	if _, err := l.store(ctx, f, d.MediaType); err != nil {
		return err
	}
	mt := d.MediaType
	if !image.IsIndex(mt) && !image.IsManifest(mt) {
		return nil
	}
	b, _, err := l.bytesOf(ctx, name)
	if err != nil {
		return err
	}
	if image.IsIndex(mt) {
		idx, err := image.ParseIndex(mt, b)
		if err != nil {
			return err
		}
		for _, m := range idx.Manifests {
			// Only what can be chosen needs to be present: other
			// platforms are often left out of a layout.
			if l.has(path.Join("blobs", m.Digest.Algorithm().String(), m.Digest.Encoded())) {
				if err := l.storeTree(ctx, m, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	m, err := image.ParseManifest(mt, b)
	if err != nil {
		return err
	}
	for _, c := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		if err := l.storeTree(ctx, c, depth+1); err != nil {
			return err
		}
	}
	return nil
}
