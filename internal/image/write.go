package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
)

// NewImage stores cfg and a Docker schema 2 manifest over layers (already
// in ing's store, one per cfg.RootFS.DiffIDs entry) and returns the record
// to Put, without names. It is how import and commit make images. cfgRaw,
// when set, is stored instead of marshalling cfg, so fields cfg does not
// model (docker's "comment", "container_config") survive.
func NewImage(ctx context.Context, ing content.Ingester, cfg ocispec.Image, cfgRaw []byte, layers []ocispec.Descriptor) (Record, error) {
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return Record{}, fmt.Errorf("new image: %d layers, %d diff IDs: %w", len(layers), len(cfg.RootFS.DiffIDs), errdefs.ErrInvalidArgument)
	}
	if cfgRaw == nil {
		var err error
		if cfgRaw, err = json.Marshal(cfg); err != nil {
			return Record{}, fmt.Errorf("new image: %w", err)
		}
	}
	cd, err := writeBytes(ctx, ing, MediaTypeDockerConfig, cfgRaw)
	if err != nil {
		return Record{}, fmt.Errorf("new image: config: %w", err)
	}
	m := Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: MediaTypeDockerManifest, Config: cd, Layers: layers}
	mb, err := json.Marshal(m)
	if err != nil {
		return Record{}, fmt.Errorf("new image: %w", err)
	}
	md, err := writeBytes(ctx, ing, MediaTypeDockerManifest, mb)
	if err != nil {
		return Record{}, fmt.Errorf("new image: manifest: %w", err)
	}
	rec := Record{ID: cd.Digest, Target: md}
	chains := identity.ChainIDs(append([]digest.Digest(nil), cfg.RootFS.DiffIDs...))
	for i, l := range layers {
		rec.Layers = append(rec.Layers, Layer{Blob: l, DiffID: cfg.RootFS.DiffIDs[i], ChainID: chains[i]})
	}
	return rec, nil
}

func writeBytes(ctx context.Context, ing content.Ingester, mt string, b []byte) (ocispec.Descriptor, error) {
	d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if _, err := content.Write(ctx, ing, d, bytes.NewReader(b)); err != nil {
		return ocispec.Descriptor{}, err
	}
	return d, nil
}
