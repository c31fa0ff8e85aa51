package daemon

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"

	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/log"
)

// registries holds each Engine's registry client. It lives here rather
// than in Engine until engine.go grows Config.InsecureRegistries; Engines
// are few and long-lived, so the map does not grow.
var registries sync.Map // *Engine → *distribution.Client

// ConfigureRegistries sets how e reaches registries (insecure-registries,
// parallel transfers, retries). Call it right after New, before any pull,
// push or login; without it loopback registries use plain HTTP and all
// others HTTPS.
func (e *Engine) ConfigureRegistries(cfg distribution.Config) {
	registries.Store(e, distribution.New(cfg))
}

// Registry is e's registry client.
func (e *Engine) Registry() *distribution.Client {
	if c, ok := registries.Load(e); ok {
		return c.(*distribution.Client)
	}
	c, _ := registries.LoadOrStore(e, distribution.New(distribution.Config{}))
	return c.(*distribution.Client)
}

// PullOptions tune Pull.
type PullOptions struct {
	// Platform is docker's --platform (os[/arch[/variant]]); empty means
	// this machine's.
	Platform string
	// Auth is the credential for the reference's registry; nil pulls
	// anonymously.
	Auth *distribution.AuthConfig
	// Progress receives per-layer updates (download, then extraction).
	Progress func(distribution.Progress)
}

// PullResult says what Pull recorded.
type PullResult struct {
	Image image.Record
	// Name is the normalised reference pulled.
	Name string
	// Digest is the registry's digest of what Name points to: the
	// image's repo digest.
	Digest digest.Digest
	// Status is docker's last line: "Downloaded newer image for busybox:latest"
	// or "Image is up to date for busybox:latest".
	Status string
}

// Pull fetches ref's image from its registry, unpacks its layers and
// records it under ref with its repo digest. Layers are fetched in
// parallel, each verified as it streams into the content store, then
// unpacked into snapshots. On failure no image is recorded and what the
// pull wrote is collected.
func (e *Engine) Pull(ctx context.Context, ref string, opts PullOptions) (_ PullResult, err error) {
	named, err := image.ParseReference(ref)
	if err != nil {
		return PullResult{}, fmt.Errorf("pull: %w", err)
	}
	platform, err := image.ParsePlatform(opts.Platform)
	if err != nil {
		return PullResult{}, fmt.Errorf("pull %s: %w", reference.FamiliarString(named), err)
	}
	ctx = log.With(ctx, log.KeyImage, named.String())
	before, _ := e.images.Lookup(ctx, named.String())

	// Blobs and snapshots written from here on are referenced only once the
	// record is in: keep garbage collection out until then, and on failure
	// let it take back what this pull left (after letting go of the hold).
	release := e.images.Hold()
	held := true
	defer func() {
		if held {
			release()
		}
		if err != nil {
			if _, cerr := e.collect(context.WithoutCancel(ctx)); cerr != nil {
				log.From(ctx).Warn("pull: clean up after failure; blobs or snapshots may stay until the next prune", log.KeyErr, cerr)
			}
		}
	}()

	res, err := e.Registry().Pull(ctx, named, e.content, distribution.PullOptions{
		Platform: platform,
		Auth:     opts.Auth,
		Progress: opts.Progress,
	})
	if err != nil {
		return PullResult{}, err
	}
	resolved, err := image.Resolve(ctx, e.content, res.Manifest, platform)
	if err != nil {
		return PullResult{}, fmt.Errorf("pull %s: %w", reference.FamiliarString(named), err)
	}
	rec := image.Record{ID: resolved.ID(), Target: resolved.Target}
	if res.Target.Digest != res.Manifest.Digest {
		idx := res.Target
		rec.Index = &idx
	}
	chains := identity.ChainIDs(slices.Clone(resolved.Config.RootFS.DiffIDs))
	for i, l := range resolved.Manifest.Layers {
		rec.Layers = append(rec.Layers, image.Layer{Blob: l, DiffID: resolved.Config.RootFS.DiffIDs[i], ChainID: chains[i]})
	}
	if _, ok := named.(reference.Digested); !ok {
		rec.RepoTags = []string{named.String()}
	}
	rd, err := image.RepoDigest(named, res.Target.Digest)
	if err != nil {
		return PullResult{}, fmt.Errorf("pull %s: %w", reference.FamiliarString(named), err)
	}
	rec.RepoDigests = []string{rd}
	if rec, err = e.unpack(ctx, rec); err != nil {
		return PullResult{}, fmt.Errorf("pull %s: %w", reference.FamiliarString(named), err)
	}
	stored, err := e.images.Put(ctx, rec)
	if err != nil {
		return PullResult{}, fmt.Errorf("pull %s: %w", reference.FamiliarString(named), err)
	}
	release()
	held = false
	status := "Downloaded newer image for " + reference.FamiliarString(named)
	if before.ID == stored.ID {
		status = "Image is up to date for " + reference.FamiliarString(named)
	}
	log.From(ctx).Info("pull done", log.KeyDigest, res.Target.Digest.String(), "fetched", res.Fetched)
	return PullResult{Image: stored, Name: named.String(), Digest: res.Target.Digest, Status: status}, nil
}
