package distribution

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/log"
)

// Store is where Pull writes blobs: internal/content.Store satisfies it.
type Store interface {
	content.Ingester
	content.Opener
}

// PullOptions tune Pull. The zero value pulls linux on this machine's
// architecture, anonymously, silently.
type PullOptions struct {
	// Platform selects from a manifest list or index; zero means
	// image.DefaultPlatform().
	Platform ocispec.Platform
	Auth     *AuthConfig
	// Progress, when set, receives an update per blob step. Calls are
	// serialised.
	Progress func(Progress)
	// Layer, when set, is called once per layer (index i in the manifest)
	// as soon as its blob is committed to the store or found already there.
	// Calls come from several goroutines at once and in any order; an
	// error stops the pull.
	Layer func(ctx context.Context, i int, layer ocispec.Descriptor) error
	// Config, when set, is called with the image config's bytes as soon as
	// the config blob is in the store (which is usually before the first
	// layer, but Layer calls may come first). An error stops the pull.
	Config func(ctx context.Context, config ocispec.Descriptor, raw []byte) error
}

// PullResult describes a pulled image. All its blobs are in the store.
type PullResult struct {
	// Name is the reference pulled, docker-normalised.
	Name reference.Named
	// Target is what the registry serves for Name: a manifest, or the index
	// the platform's manifest was chosen from. Its digest is the image's
	// repo digest (name@digest), as docker records it.
	Target ocispec.Descriptor
	// Manifest is the image manifest (Target unless Target is an index).
	Manifest ocispec.Descriptor
	Config   ocispec.Descriptor
	Layers   []ocispec.Descriptor
	// Fetched counts the blob bytes downloaded (zero when all were present).
	Fetched int64
}

// Pull fetches ref's image for opts.Platform into store.
//
// Nothing partial is left in store on failure: each blob is either
// committed whole and verified, or not at all. Blobs committed before the
// failure stay (they are valid, and a retried pull reuses them); the
// manifest goes in last, so no complete-looking image exists until every
// blob does.
func (c *Client) Pull(ctx context.Context, ref reference.Named, store Store, opts PullOptions) (PullResult, error) {
	res, err := c.pull(ctx, ref, store, opts)
	if err != nil {
		return PullResult{}, fmt.Errorf("pull %s: %w", reference.FamiliarString(ref), err)
	}
	return res, nil
}

func (c *Client) pull(ctx context.Context, ref reference.Named, store Store, opts PullOptions) (PullResult, error) {
	gref, err := c.gname(ref)
	if err != nil {
		return PullResult{}, err
	}
	platform := opts.Platform
	if platform.OS == "" {
		platform = image.DefaultPlatform()
	}
	rep := &reporter{fn: opts.Progress}
	puller, err := remote.NewPuller(c.remoteOptions(ctx, opts.Auth, nil)...)
	if err != nil {
		return PullResult{}, err
	}
	res := PullResult{Name: ref}

	// Resolve: the reference, then (for an index) the platform's entry.
	top, topRaw, err := c.getManifest(ctx, puller, gref)
	if err != nil {
		return PullResult{}, err
	}
	res.Target = top
	type doc struct {
		desc ocispec.Descriptor
		raw  []byte
	}
	docs := []doc{{top, topRaw}} // stored last, parents after children
	cur, raw := top, topRaw
	for depth := 0; image.IsIndex(cur.MediaType); depth++ {
		if depth >= 2 {
			return PullResult{}, fmt.Errorf("resolve %s: indexes nested too deep: %w", cur.Digest, errdefs.ErrInvalidArgument)
		}
		idx, err := image.ParseIndex(cur.MediaType, raw)
		if err != nil {
			return PullResult{}, fmt.Errorf("resolve %s: %w", cur.Digest, err)
		}
		sel, err := image.SelectManifest(idx, platform)
		if err != nil {
			return PullResult{}, fmt.Errorf("resolve %s: %w", cur.Digest, err)
		}
		child, childRaw, err := c.getManifest(ctx, puller, gref.Context().Digest(sel.Digest.String()))
		if err != nil {
			return PullResult{}, err
		}
		if child.Digest != sel.Digest {
			return PullResult{}, fmt.Errorf("resolve %s: manifest digest %s, index says %s: %w", cur.Digest, child.Digest, sel.Digest, errdefs.ErrInvalidArgument)
		}
		child.Platform = sel.Platform
		docs = append(docs, doc{child, childRaw})
		cur, raw = child, childRaw
	}
	m, err := image.ParseManifest(cur.MediaType, raw)
	if err != nil {
		return PullResult{}, fmt.Errorf("resolve %s: %w", cur.Digest, err)
	}
	res.Manifest, res.Config, res.Layers = cur, m.Config, m.Layers
	log.From(ctx).Debug("pull resolved", log.KeyImage, ref.String(), log.KeyDigest, cur.Digest.String(), "layers", len(m.Layers))

	// Fetch the config and every layer at once, up to Jobs at a time.
	fetched, err := c.fetchAll(ctx, puller, gref.Context(), opts.Auth, store, m, rep, opts.Config, opts.Layer)
	if err != nil {
		return PullResult{}, err
	}
	res.Fetched = fetched

	for i := len(docs) - 1; i >= 0; i-- {
		if _, err := content.Write(ctx, store, docs[i].desc, bytes.NewReader(docs[i].raw)); err != nil {
			return PullResult{}, fmt.Errorf("store manifest %s: %w", docs[i].desc.Digest, err)
		}
	}
	return res, nil
}

// getManifest fetches a manifest or index and checks its media type is one
// berth knows. go-containerregistry checks the bytes against the digest
// when the reference has one; for a tag, the digest is computed from the
// bytes received (the Docker-Content-Digest header is not trusted), so the
// repo digest always names exactly what was stored.
func (c *Client) getManifest(ctx context.Context, puller *remote.Puller, ref name.Reference) (ocispec.Descriptor, []byte, error) {
	var (
		d   *remote.Descriptor
		err error
	)
	for attempt := 0; ; attempt++ {
		// A manifest is small: a whole stall period for it is generous, and
		// keeps a registry that answers the headers but never the body from
		// hanging the pull.
		actx, cancel := context.WithTimeout(ctx, c.cfg.StallTimeout)
		d, err = puller.Get(actx, ref)
		cancel()
		// Error answers were retried by the transport already; a manifest
		// body that broke off is fetched again here.
		var te *transport.Error
		if err == nil || attempt >= c.cfg.Retries || !retryable(err) || errors.As(err, &te) {
			break
		}
		if err := c.backoff(ctx, attempt+1); err != nil {
			return ocispec.Descriptor{}, nil, err
		}
	}
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("fetch manifest %s: %w", ref.Identifier(), classify(err))
	}
	mt, _, perr := mime.ParseMediaType(string(d.MediaType))
	if perr != nil {
		mt = string(d.MediaType)
	}
	if !image.IsIndex(mt) && !image.IsManifest(mt) {
		return ocispec.Descriptor{}, nil, fmt.Errorf("fetch manifest %s: unsupported media type %q: %w", ref.Identifier(), mt, errdefs.ErrInvalidArgument)
	}
	dg, err := digest.Parse(d.Digest.String())
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("fetch manifest %s: digest: %v: %w", ref.Identifier(), err, errdefs.ErrInvalidArgument)
	}
	if len(d.Manifest) > image.MaxManifestSize {
		return ocispec.Descriptor{}, nil, fmt.Errorf("fetch manifest %s: %d bytes is too large: %w", ref.Identifier(), len(d.Manifest), errdefs.ErrInvalidArgument)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: dg, Size: int64(len(d.Manifest))}, d.Manifest, nil
}

// fetchAll downloads m's config and layers in parallel. The first error
// cancels the rest.
func (c *Client) fetchAll(ctx context.Context, puller *remote.Puller, repo name.Repository, auth *AuthConfig, store Store, m image.Manifest, rep *reporter, onConfig func(context.Context, ocispec.Descriptor, []byte) error, onLayer func(context.Context, int, ocispec.Descriptor) error) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		total    int64
		sem      = make(chan struct{}, c.cfg.Jobs)
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	run := func(i int, desc ocispec.Descriptor, isConfig bool) {
		defer wg.Done()
		what := fmt.Sprintf("layer %s", desc.Digest)
		if isConfig {
			what = fmt.Sprintf("config %s", desc.Digest)
		}
		// The config skips the queue: it is small, and the unpacker
		// waits for its diff IDs before it can take any layer.
		if !isConfig {
			select {
			case sem <- struct{}{}:
			default:
				// Queued behind Jobs other transfers, as docker shows it.
				rep.send(Progress{Digest: desc.Digest, Status: StatusWaiting, Total: desc.Size})
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
		n, err := c.fetchBlob(ctx, puller, repo, auth, store, desc, isConfig, rep)
		if !isConfig {
			<-sem
		}
		if err != nil {
			fail(fmt.Errorf("fetch %s: %w", what, err))
			return
		}
		mu.Lock()
		total += n
		mu.Unlock()
		switch {
		case isConfig && onConfig != nil:
			raw, err := content.ReadAll(ctx, store, desc.Digest, image.MaxManifestSize)
			if err == nil {
				err = onConfig(ctx, desc, raw)
			}
			if err != nil {
				fail(fmt.Errorf("%s: %w", what, err))
			}
		case !isConfig && onLayer != nil:
			if err := onLayer(ctx, i, desc); err != nil {
				fail(fmt.Errorf("%s: %w", what, err))
			}
		}
	}
	for _, l := range m.Layers {
		rep.send(Progress{Digest: l.Digest, Status: StatusResolved, Total: l.Size})
	}
	wg.Add(1 + len(m.Layers))
	go run(-1, m.Config, true)
	for i, l := range m.Layers {
		go run(i, l, false)
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		return total, ctx.Err()
	}
	return total, firstErr
}

// fetchBlob makes sure desc is in store, downloading it unless present.
// A transfer that breaks off is resumed where it stopped (an HTTP Range
// request), or started again when the registry does not do ranges; the
// ingest never commits bytes that do not match desc.
func (c *Client) fetchBlob(ctx context.Context, puller *remote.Puller, repo name.Repository, auth *AuthConfig, store Store, desc ocispec.Descriptor, isConfig bool, rep *reporter) (int64, error) {
	if b, err := store.Open(ctx, desc.Digest); err == nil {
		size := b.Size()
		b.Close()
		if size == desc.Size {
			rep.send(Progress{Digest: desc.Digest, Config: isConfig, Status: StatusExists, Current: size, Total: size})
			return 0, nil
		}
	}
	ing, err := store.Begin(ctx, desc)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		// Another pull committed it meanwhile.
		rep.send(Progress{Digest: desc.Digest, Config: isConfig, Status: StatusExists, Current: desc.Size, Total: desc.Size})
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer func() { ing.Abort() }()
	var (
		written int64             // bytes in ing so far
		ranged  http.RoundTripper // authenticated, for resuming; made once
	)
	base := Progress{Digest: desc.Digest, Config: isConfig, Status: StatusDownloading, Total: desc.Size}
	for attempt := 0; ; attempt++ {
		var body io.ReadCloser
		if written == 0 {
			body, err = c.openBlob(ctx, puller, repo, desc)
		} else {
			body, err = c.openRange(ctx, &ranged, repo, auth, desc, written)
			if errors.Is(err, errNoRange) {
				// Start over in a fresh ingest with the plain GET.
				ing.Abort()
				if ing, err = store.Begin(ctx, desc); errors.Is(err, errdefs.ErrAlreadyExists) {
					return 0, nil
				} else if err != nil {
					return 0, err
				}
				written = 0
				body, err = c.openBlob(ctx, puller, repo, desc)
			}
		}
		if err == nil {
			var n int64
			n, err = copyBlob(ing, body, desc, written, c.cfg.StallTimeout, rep, base)
			written += n
			if err == nil {
				return c.commitBlob(ctx, ing, desc, written, isConfig, rep)
			}
		}
		// Error answers (5xx) were already retried by the transport; here
		// only transfers that broke off mid-body are tried again.
		var te *transport.Error
		if attempt >= c.cfg.Retries || !retryable(err) || errors.As(err, &te) || ctx.Err() != nil {
			if attempt > 0 {
				return 0, fmt.Errorf("gave up after %d tries: %w", attempt+1, classify(err))
			}
			return 0, classify(err)
		}
		log.From(ctx).Debug("blob transfer failed, retrying", log.KeyDigest, desc.Digest.String(), log.KeyErr, err, "attempt", attempt+1, "have", written)
		rep.send(Progress{Digest: desc.Digest, Config: isConfig, Status: StatusRetrying, Detail: err.Error(), Current: written, Total: desc.Size})
		if err := c.backoff(ctx, attempt+1); err != nil {
			return 0, err
		}
	}
}

// openBlob starts the blob's download from its beginning;
// go-containerregistry's reader checks the digest at its end.
func (c *Client) openBlob(ctx context.Context, puller *remote.Puller, repo name.Repository, desc ocispec.Descriptor) (io.ReadCloser, error) {
	l, err := puller.Layer(ctx, repo.Digest(desc.Digest.String()))
	if err != nil {
		return nil, err
	}
	return l.Compressed()
}

// errNoRange is a registry answering a ranged request with the whole blob.
var errNoRange = errors.New("registry does not serve byte ranges")

// openRange asks for the blob from byte offset on (RFC 9110 §14.2). The
// request goes through the registry's auth handshake like any other, made
// once per blob on the first resume. go-containerregistry has no ranged
// reads; this is the only request berth builds itself.
func (c *Client) openRange(ctx context.Context, rt *http.RoundTripper, repo name.Repository, auth *AuthConfig, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	if *rt == nil {
		t, err := transport.NewWithContext(ctx, repo.Registry, auth.authenticator(), c.retrying(), []string{repo.Scope(transport.PullScope)})
		if err != nil {
			return nil, err
		}
		*rt = t
	}
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), desc.Digest)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	resp, err := (&http.Client{Transport: *rt}).Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		resp.Body.Close()
		return nil, errNoRange
	}
	if err := transport.CheckError(resp, http.StatusPartialContent); err != nil {
		resp.Body.Close()
		return nil, err
	}
	var start int64
	if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-", &start); err != nil || start != offset {
		resp.Body.Close()
		return nil, errNoRange
	}
	return resp.Body, nil
}

// copyBlob appends body to ing, after have bytes already there, and
// returns how many it added. A registry may send more than the manifest
// says; the copy stops one byte past it instead of filling the disk.
func copyBlob(ing content.Ingest, body io.ReadCloser, desc ocispec.Descriptor, have int64, stall time.Duration, rep *reporter, base Progress) (int64, error) {
	rc := newStallReader(body, stall)
	defer rc.Close()
	cnt := &counter{r: io.LimitReader(rc, desc.Size-have+1), rep: rep, base: base, offset: have}
	n, err := io.Copy(ing, cnt)
	if err != nil && strings.Contains(err.Error(), "error verifying") {
		// go-containerregistry's verify package reports a mismatch as a
		// plain error; give it a class so it is not retried and callers
		// see bad input rather than a network failure.
		return n, fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	return n, err
}

// commitBlob checks the size and commits; Commit checks the digest of
// everything written, first try and resumptions together.
func (c *Client) commitBlob(ctx context.Context, ing content.Ingest, desc ocispec.Descriptor, n int64, isConfig bool, rep *reporter) (int64, error) {
	if n > desc.Size {
		return n, fmt.Errorf("more than the %d bytes the manifest says: %w", desc.Size, errdefs.ErrInvalidArgument)
	}
	if n < desc.Size {
		return n, fmt.Errorf("size %d, manifest says %d: %w", n, desc.Size, errdefs.ErrInvalidArgument)
	}
	rep.send(Progress{Digest: desc.Digest, Config: isConfig, Status: StatusVerifying, Current: n, Total: desc.Size})
	if _, err := ing.Commit(ctx); err != nil {
		return n, err
	}
	rep.send(Progress{Digest: desc.Digest, Config: isConfig, Status: StatusDownloaded, Current: n, Total: desc.Size})
	return n, nil
}

// errStalled is a transfer that went quiet; it counts as a connection that
// broke off (io.ErrUnexpectedEOF), so it is retried.
var errStalled = fmt.Errorf("transfer stalled: %w", io.ErrUnexpectedEOF)

// stallReader closes its body when no byte has come for d, which makes the
// blocked Read fail.
type stallReader struct {
	rc      io.ReadCloser
	d       time.Duration
	timer   *time.Timer
	stalled atomic.Bool
}

func newStallReader(rc io.ReadCloser, d time.Duration) *stallReader {
	s := &stallReader{rc: rc, d: d}
	s.timer = time.AfterFunc(d, func() {
		s.stalled.Store(true)
		rc.Close()
	})
	return s
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	if n > 0 {
		s.timer.Reset(s.d)
	}
	if err != nil && err != io.EOF && s.stalled.Load() {
		err = fmt.Errorf("no data for %s: %w", s.d, errStalled)
	}
	return n, err
}

func (s *stallReader) Close() error {
	s.timer.Stop()
	return s.rc.Close()
}
