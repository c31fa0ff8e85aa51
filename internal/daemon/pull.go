package daemon

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribution/reference"
	evtypes "github.com/moby/moby/api/types/events"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/unpack"
)

// Registry is e's registry client, set up from Config.InsecureRegistries
// and Config.CertsDir.
func (e *Engine) Registry() *distribution.Client { return e.registry }

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
// parallel, each verified as it streams into the content store, and each
// is unpacked into its snapshot as soon as it is in, while the others still
// download. On failure no image is recorded and what the pull wrote is
// collected.
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

	prog := serialize(opts.Progress)
	su := &streamUnpack{e: e, ctx: ctx, platform: platform, progress: prog, ready: make(chan struct{})}
	res, err := e.Registry().Pull(ctx, named, e.content, distribution.PullOptions{
		Platform: platform,
		Auth:     opts.Auth,
		Progress: prog,
		Config:   su.config,
		Layer:    su.layer,
	})
	if err != nil {
		su.abort(err)
		return PullResult{}, err
	}
	if err := su.wait(); err != nil {
		return PullResult{}, fmt.Errorf("pull %s: %w", reference.FamiliarString(named), err)
	}
	if err := e.syncLayers(ctx); err != nil {
		return PullResult{}, fmt.Errorf("pull %s: %w", reference.FamiliarString(named), err)
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
		rec.Layers = append(rec.Layers, image.Layer{Blob: l, DiffID: resolved.Config.RootFS.DiffIDs[i], ChainID: chains[i], Size: su.size(i)})
		rec.Size += su.size(i)
	}
	if _, ok := named.(reference.Digested); !ok {
		rec.RepoTags = []string{named.String()}
	}
	rd, err := image.RepoDigest(named, res.Target.Digest)
	if err != nil {
		return PullResult{}, fmt.Errorf("pull %s: %w", reference.FamiliarString(named), err)
	}
	rec.RepoDigests = []string{rd}
	if err := e.knownLayerSizes(ctx, &rec); err != nil {
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
	// docker's pull event: the actor is the reference, "name" its repository.
	e.emitImage(ctx, evtypes.ActionPull, reference.FamiliarString(named), reference.FamiliarName(named))
	return PullResult{Image: stored, Name: named.String(), Digest: res.Target.Digest, Status: status}, nil
}

// knownLayerSizes fills in the sizes of layers this pull did not unpack
// (their snapshots were there already, from this image or another sharing
// them) from the images that did, and sums rec.Size.
func (e *Engine) knownLayerSizes(ctx context.Context, rec *image.Record) error {
	missing := false
	for _, l := range rec.Layers {
		missing = missing || l.Size == 0
	}
	if missing {
		recs, err := e.images.List(ctx)
		if err != nil {
			return err
		}
		known := map[digest.Digest]int64{}
		for _, r := range recs {
			for _, l := range r.Layers {
				if l.Size > 0 {
					known[l.ChainID] = l.Size
				}
			}
		}
		for i := range rec.Layers {
			if rec.Layers[i].Size == 0 {
				rec.Layers[i].Size = known[rec.Layers[i].ChainID]
			}
		}
	}
	rec.Size = 0
	for _, l := range rec.Layers {
		rec.Size += l.Size
	}
	return nil
}

// streamUnpack unpacks a pull's layers while it downloads: the config's
// diff IDs begin an unpack job, and each layer goes to the job as soon as
// its blob is committed, so extraction overlaps the remaining downloads
// (and, on overlay, layers extract side by side).
type streamUnpack struct {
	e *Engine
	// ctx is the pull's: the job outlives the download callbacks, whose
	// context ends when the last blob is in.
	ctx      context.Context
	platform ocispec.Platform
	progress func(distribution.Progress)

	ready   chan struct{} // closed once job or err is set
	job     *unpack.Job
	diffIDs []digest.Digest
	err     error
	sizes   []atomic.Int64 // unpacked bytes of each layer read
}

func (s *streamUnpack) config(_ context.Context, _ ocispec.Descriptor, raw []byte) error {
	defer close(s.ready)
	cfg, err := image.ParseConfig(raw)
	if err != nil {
		s.err = err
		return err
	}
	// A single-platform image for another machine fails here, before its
	// layers are downloaded and unpacked, with the words image.Resolve
	// would use after. The match is image's own (through SelectManifest).
	if cfg.OS != "" {
		have := ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
		one := ocispec.Index{Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest, Platform: &have}}}
		if _, err := image.SelectManifest(one, s.platform); err != nil {
			s.err = fmt.Errorf("image is for %s, not %s: %w", image.FormatPlatform(have), image.FormatPlatform(s.platform), errdefs.ErrNotFound)
			return s.err
		}
	}
	s.diffIDs = cfg.RootFS.DiffIDs
	s.sizes = make([]atomic.Int64, len(s.diffIDs))
	s.job, s.err = s.e.unpacker.Begin(s.ctx, s.diffIDs)
	return s.err
}

func (s *streamUnpack) layer(ctx context.Context, i int, l ocispec.Descriptor) error {
	select {
	case <-s.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.err != nil {
		return s.err
	}
	if i >= len(s.diffIDs) {
		return fmt.Errorf("layer %d: the config lists %d layers: %w", i, len(s.diffIDs), errdefs.ErrInvalidArgument)
	}
	return s.job.Add(i, unpack.Layer{
		DiffID: s.diffIDs[i],
		Open: func(ctx context.Context) (io.ReadCloser, error) {
			b, err := s.e.content.Open(ctx, l.Digest)
			if err != nil {
				return nil, err
			}
			// Extraction progress counts compressed bytes, as docker's does.
			pr := &extractProgress{r: content.NewReader(b), progress: s.progress, base: distribution.Progress{
				ID: distribution.ShortID(l.Digest), Digest: l.Digest, Status: distribution.StatusExtracting, Total: l.Size}}
			return newCountingReader(pr, b, &s.sizes[i])
		},
	})
}

// abort stops the job after the download failed and waits for it to
// remove its working snapshots.
func (s *streamUnpack) abort(err error) {
	select {
	case <-s.ready:
	default:
		return // the job never began
	}
	if s.job != nil {
		s.job.Fail(0, err)
		_, _ = s.job.Wait()
	}
}

func (s *streamUnpack) wait() error {
	select {
	case <-s.ready:
	default:
		return fmt.Errorf("unpack: no image config came: %w", errdefs.ErrInvalidArgument)
	}
	if s.err != nil {
		return s.err
	}
	_, err := s.job.Wait()
	return err
}

func (s *streamUnpack) size(i int) int64 {
	if i < len(s.sizes) {
		return s.sizes[i].Load()
	}
	return 0
}

// extractProgress reports extraction of one layer every 100ms, and "Pull
// complete" when the whole blob has been read.
type extractProgress struct {
	r        io.Reader
	progress func(distribution.Progress)
	base     distribution.Progress
	n        int64
	last     time.Time
}

func (p *extractProgress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.progress == nil {
		return n, err
	}
	now := time.Now()
	if err == io.EOF {
		u := p.base
		u.Status, u.Current, u.Time = distribution.StatusPullComplete, p.n, now
		p.progress(u)
	} else if now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		u := p.base
		u.Current, u.Time = p.n, now
		p.progress(u)
	}
	return n, err
}

// serialize makes fn safe to call from several goroutines, one call at a
// time (downloads and extractions report concurrently).
func serialize(fn func(distribution.Progress)) func(distribution.Progress) {
	if fn == nil {
		return nil
	}
	var mu sync.Mutex
	return func(p distribution.Progress) {
		mu.Lock()
		defer mu.Unlock()
		fn(p)
	}
}
