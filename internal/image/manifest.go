package image

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Docker's media types (Image Manifest V2, Schema 2).
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerLayerForeign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	mediaTypeDockerSchema1      = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeDockerSchema1Sig   = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// MaxManifestSize bounds manifests, indexes and configs read into memory.
// Registries cap manifests at 4 MiB; configs of real images stay far below.
const MaxManifestSize = 8 << 20

// IsManifest reports whether mt is an image manifest type berth handles.
func IsManifest(mt string) bool {
	return mt == MediaTypeDockerManifest || mt == ocispec.MediaTypeImageManifest
}

// IsIndex reports whether mt is a manifest list or OCI index.
func IsIndex(mt string) bool {
	return mt == MediaTypeDockerManifestList || mt == ocispec.MediaTypeImageIndex
}

// IsLayer reports whether mt is a layer type berth can unpack.
func IsLayer(mt string) bool {
	switch mt {
	case MediaTypeDockerLayer, MediaTypeDockerLayerGzip, MediaTypeDockerLayerForeign,
		ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd,
		ocispec.MediaTypeImageLayerNonDistributable, ocispec.MediaTypeImageLayerNonDistributableGzip, ocispec.MediaTypeImageLayerNonDistributableZstd: //nolint:staticcheck // still found in the wild
		return true
	}
	return false
}

// IsConfig reports whether mt is an image config type.
func IsConfig(mt string) bool {
	return mt == MediaTypeDockerConfig || mt == ocispec.MediaTypeImageConfig
}

func unsupported(what, mt string) error {
	if mt == mediaTypeDockerSchema1 || mt == mediaTypeDockerSchema1Sig {
		return fmt.Errorf("%s: media type %s (Docker schema 1) is deprecated and not supported: %w", what, mt, errdefs.ErrNotImplemented)
	}
	return fmt.Errorf("%s: unknown media type %q: %w", what, mt, errdefs.ErrInvalidArgument)
}

// Manifest is an image manifest, Docker schema 2 or OCI (the same shape).
type Manifest = ocispec.Manifest

// sniff finds the media type of a manifest or index whose descriptor did
// not say (an OCI layout or docker-archive may omit it): the document's own
// mediaType field, else its shape.
func sniff(b []byte) string {
	var probe struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Config        json.RawMessage `json:"config"`
		Manifests     json.RawMessage `json:"manifests"`
		FSLayers      json.RawMessage `json:"fsLayers"`
	}
	if json.Unmarshal(b, &probe) != nil {
		return ""
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case probe.FSLayers != nil || probe.SchemaVersion == 1:
		return mediaTypeDockerSchema1
	case probe.Manifests != nil:
		return ocispec.MediaTypeImageIndex
	case probe.Config != nil:
		return ocispec.MediaTypeImageManifest
	}
	return ""
}

// ParseManifest decodes b as an image manifest of media type mt (empty: taken
// from the document) and checks the media types of its config and layers.
func ParseManifest(mt string, b []byte) (Manifest, error) {
	if mt == "" {
		mt = sniff(b)
	}
	if !IsManifest(mt) {
		return Manifest{}, unsupported("manifest", mt)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, fmt.Errorf("manifest: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if m.MediaType != "" && m.MediaType != mt {
		return Manifest{}, fmt.Errorf("manifest: media type %s in a %s descriptor: %w", m.MediaType, mt, errdefs.ErrInvalidArgument)
	}
	if m.SchemaVersion != 2 {
		return Manifest{}, fmt.Errorf("manifest: schema version %d, want 2: %w", m.SchemaVersion, errdefs.ErrInvalidArgument)
	}
	m.MediaType = mt
	if !IsConfig(m.Config.MediaType) {
		if m.Config.MediaType == "" {
			return Manifest{}, fmt.Errorf("manifest: config has no media type: %w", errdefs.ErrInvalidArgument)
		}
		// Artifacts (helm charts, signatures) are manifests too, but not images.
		return Manifest{}, unsupported("manifest config", m.Config.MediaType)
	}
	if err := checkDescriptor(m.Config); err != nil {
		return Manifest{}, fmt.Errorf("manifest config: %w", err)
	}
	for i, l := range m.Layers {
		if !IsLayer(l.MediaType) {
			return Manifest{}, unsupported(fmt.Sprintf("manifest layer %d", i), l.MediaType)
		}
		if err := checkDescriptor(l); err != nil {
			return Manifest{}, fmt.Errorf("manifest layer %d: %w", i, err)
		}
	}
	return m, nil
}

func checkDescriptor(d ocispec.Descriptor) error {
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("digest %q: %v: %w", d.Digest, err, errdefs.ErrInvalidArgument)
	}
	if d.Size < 0 {
		return fmt.Errorf("negative size %d: %w", d.Size, errdefs.ErrInvalidArgument)
	}
	return nil
}

// ParseIndex decodes b as a manifest list or OCI index of media type mt
// (empty: taken from the document).
func ParseIndex(mt string, b []byte) (ocispec.Index, error) {
	if mt == "" {
		mt = sniff(b)
	}
	if !IsIndex(mt) {
		return ocispec.Index{}, unsupported("index", mt)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return ocispec.Index{}, fmt.Errorf("index: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if idx.SchemaVersion != 2 {
		return ocispec.Index{}, fmt.Errorf("index: schema version %d, want 2: %w", idx.SchemaVersion, errdefs.ErrInvalidArgument)
	}
	idx.MediaType = mt
	for i, d := range idx.Manifests {
		if err := checkDescriptor(d); err != nil {
			return ocispec.Index{}, fmt.Errorf("index entry %d: %w", i, err)
		}
	}
	return idx, nil
}

// ParseConfig decodes an image config and checks what berth relies on.
func ParseConfig(b []byte) (ocispec.Image, error) {
	var c ocispec.Image
	if err := json.Unmarshal(b, &c); err != nil {
		return ocispec.Image{}, fmt.Errorf("image config: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if c.RootFS.Type != "layers" {
		return ocispec.Image{}, fmt.Errorf("image config: rootfs type %q, want layers: %w", c.RootFS.Type, errdefs.ErrInvalidArgument)
	}
	for i, d := range c.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return ocispec.Image{}, fmt.Errorf("image config: diff ID %d %q: %v: %w", i, d, err, errdefs.ErrInvalidArgument)
		}
	}
	return c, nil
}

// SelectManifest picks from idx the manifest that best fits p. Entries
// without a platform (attestations carry "unknown/unknown") never match.
func SelectManifest(idx ocispec.Index, p ocispec.Platform) (ocispec.Descriptor, error) {
	var best *ocispec.Descriptor
	bestScore := 0
	var seen []string
	for i := range idx.Manifests {
		d := &idx.Manifests[i]
		if d.Platform == nil {
			continue
		}
		seen = append(seen, FormatPlatform(*d.Platform))
		if !IsManifest(d.MediaType) && !IsIndex(d.MediaType) && d.MediaType != "" {
			continue
		}
		if sc := platformScore(p, *d.Platform); sc > bestScore {
			best, bestScore = d, sc
		}
	}
	if best == nil {
		have := "none"
		if len(seen) > 0 {
			have = strings.Join(seen, ", ")
		}
		return ocispec.Descriptor{}, fmt.Errorf("no manifest for platform %s (the image has: %s): %w", FormatPlatform(p), have, errdefs.ErrNotFound)
	}
	return *best, nil
}

// Resolved is an image manifest with its config, read from the store.
type Resolved struct {
	Target    ocispec.Descriptor // the manifest chosen (never an index)
	Manifest  Manifest
	Config    ocispec.Image
	ConfigRaw []byte
}

// Resolve follows d (a manifest, or an index through the entry that fits p)
// to a manifest and its config, all read from o. A platform mismatch of a
// single-manifest image is an error too: docker would run it under
// emulation, berth refuses clearly.
func Resolve(ctx context.Context, o content.Opener, d ocispec.Descriptor, p ocispec.Platform) (Resolved, error) {
	for depth := 0; ; depth++ {
		if depth > 4 {
			return Resolved{}, fmt.Errorf("resolve %s: indexes nested too deep: %w", d.Digest, errdefs.ErrInvalidArgument)
		}
		b, err := content.ReadAll(ctx, o, d.Digest, MaxManifestSize)
		if err != nil {
			return Resolved{}, fmt.Errorf("resolve %s: %w", d.Digest, err)
		}
		mt := d.MediaType
		if mt == "" {
			mt = sniff(b)
		}
		if IsIndex(mt) {
			idx, err := ParseIndex(mt, b)
			if err != nil {
				return Resolved{}, fmt.Errorf("resolve %s: %w", d.Digest, err)
			}
			if d, err = SelectManifest(idx, p); err != nil {
				return Resolved{}, fmt.Errorf("resolve %s: %w", d.Digest, err)
			}
			continue
		}
		m, err := ParseManifest(mt, b)
		if err != nil {
			return Resolved{}, fmt.Errorf("resolve %s: %w", d.Digest, err)
		}
		d.MediaType = mt
		d.Size = int64(len(b))
		cb, err := content.ReadAll(ctx, o, m.Config.Digest, MaxManifestSize)
		if err != nil {
			return Resolved{}, fmt.Errorf("resolve %s: config: %w", d.Digest, err)
		}
		c, err := ParseConfig(cb)
		if err != nil {
			return Resolved{}, fmt.Errorf("resolve %s: %w", d.Digest, err)
		}
		if len(c.RootFS.DiffIDs) != len(m.Layers) {
			return Resolved{}, fmt.Errorf("resolve %s: %d layers but %d diff IDs in the config: %w", d.Digest, len(m.Layers), len(c.RootFS.DiffIDs), errdefs.ErrInvalidArgument)
		}
		cp := ocispec.Platform{OS: c.OS, Architecture: c.Architecture, Variant: c.Variant}
		if c.OS != "" && platformScore(p, cp) == 0 {
			return Resolved{}, fmt.Errorf("resolve %s: image is for %s, not %s: %w", d.Digest, FormatPlatform(normalizePlatform(cp)), FormatPlatform(p), errdefs.ErrNotFound)
		}
		return Resolved{Target: d, Manifest: m, Config: c, ConfigRaw: cb}, nil
	}
}

// ID is an image's ID: the digest of its config, as docker's.
func (r Resolved) ID() digest.Digest { return r.Manifest.Config.Digest }
