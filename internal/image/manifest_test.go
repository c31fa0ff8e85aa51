package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
)

// putJSON stores v in cs and returns its descriptor.
func putJSON(t *testing.T, cs *content.Store, mt string, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d, err := content.Write(context.Background(), cs, ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// makeImage stores a config, one layer blob per entry of layers and a
// manifest of type mt, and returns the manifest descriptor.
func makeImage(t *testing.T, cs *content.Store, mt, arch string, layers ...string) ocispec.Descriptor {
	t.Helper()
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: arch}, RootFS: ocispec.RootFS{Type: "layers"}}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: mt}
	layerType, cfgType := ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageConfig
	if mt == MediaTypeDockerManifest {
		layerType, cfgType = MediaTypeDockerLayerGzip, MediaTypeDockerConfig
	}
	for _, l := range layers {
		b := []byte(l)
		d, err := content.Write(context.Background(), cs, ocispec.Descriptor{MediaType: layerType, Digest: digest.FromBytes(b), Size: int64(len(b))}, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		m.Layers = append(m.Layers, d)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromString("diff "+l))
	}
	m.Config = putJSON(t, cs, cfgType, cfg)
	return putJSON(t, cs, mt, m)
}

func newContent(t *testing.T) *content.Store {
	t.Helper()
	cs, err := content.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func TestResolveSelectsPlatform(t *testing.T) {
	ctx := context.Background()
	cs := newContent(t)
	amd := makeImage(t, cs, MediaTypeDockerManifest, "amd64", "a")
	arm := makeImage(t, cs, ocispec.MediaTypeImageManifest, "arm64", "b")
	amd.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	attest := arm
	attest.Platform = &ocispec.Platform{OS: "unknown", Architecture: "unknown"}
	list := putJSON(t, cs, MediaTypeDockerManifestList, ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: MediaTypeDockerManifestList, Manifests: []ocispec.Descriptor{attest, arm, amd}})

	tests := []struct {
		platform string
		want     digest.Digest
		err      string
	}{
		{"linux/amd64", amd.Digest, ""},
		{"linux/arm64", arm.Digest, ""},
		{"linux/aarch64/v8", arm.Digest, ""},
		{"linux/s390x", "", "no manifest for platform linux/s390x (the image has: unknown/unknown, linux/arm64/v8, linux/amd64)"},
	}
	for _, tt := range tests {
		t.Run(tt.platform, func(t *testing.T) {
			p, err := ParsePlatform(tt.platform)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Resolve(ctx, cs, list, p)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, errdefs.ErrNotFound) {
					t.Fatalf("got %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Target.Digest != tt.want {
				t.Errorf("chose %s, want %s", r.Target.Digest, tt.want)
			}
		})
	}
	// A single manifest for another platform is refused, not run.
	if _, err := Resolve(ctx, cs, arm, DefaultPlatform()); err == nil || !strings.Contains(err.Error(), "image is for linux/arm64") {
		t.Fatalf("arm image on amd64: %v", err)
	}
}

func TestParseManifestRejectsUnknown(t *testing.T) {
	cfg := `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + hex64 + `","size":2}`
	tests := []struct {
		name, mt, doc, want string
	}{
		{"unknown manifest type", "application/vnd.example+json", `{}`, `unknown media type "application/vnd.example+json"`},
		{"schema 1", "", `{"schemaVersion":1,"fsLayers":[]}`, "Docker schema 1"},
		{"helm chart config", ocispec.MediaTypeImageManifest, `{"schemaVersion":2,"config":{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"sha256:` + hex64 + `","size":1}}`, "unknown media type \"application/vnd.cncf.helm.config.v1+json\""},
		{"unknown layer", ocispec.MediaTypeImageManifest, `{"schemaVersion":2,"config":` + cfg + `,"layers":[{"mediaType":"text/plain","digest":"sha256:` + hex64 + `","size":1}]}`, `manifest layer 0: unknown media type "text/plain"`},
		{"bad digest", ocispec.MediaTypeImageManifest, `{"schemaVersion":2,"config":` + cfg + `,"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:../x","size":1}]}`, "manifest layer 0: digest"},
		{"not json", ocispec.MediaTypeImageManifest, `{`, "manifest: unexpected end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifest(tt.mt, []byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParsePlatform(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "linux/amd64"},
		{"linux/amd64", "linux/amd64"},
		{"linux/x86_64", "linux/amd64"},
		{"linux/arm/v6", "linux/arm/v6"},
		{"linux/arm", "linux/arm/v7"},
		{"arm64", "linux/arm64"},
		{`{"architecture":"arm","os":"linux","variant":"v6"}`, "linux/arm/v6"},
		{`{"os":"linux","architecture":"x86_64"}`, "linux/amd64"},
		{`{"os":"linux"}`, "linux/amd64"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParsePlatform(tt.in)
			if err != nil || FormatPlatform(p) != tt.want {
				t.Fatalf("got %v, %v; want %s", FormatPlatform(p), err, tt.want)
			}
		})
	}
	for _, bad := range []string{"linux//", `{"os":`} {
		if _, err := ParsePlatform(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("%s: %v", bad, err)
		}
	}
}
