package distribution

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
)

// PushOptions tune Push.
type PushOptions struct {
	Auth *AuthConfig
	// Progress, when set, receives an update per blob step; calls are
	// serialised.
	Progress func(Progress)
	// MountFrom names repositories the image is known to be in already
	// (its repo digests). A blob the target repository lacks is mounted
	// from the first of them on the same registry instead of uploaded.
	MountFrom []reference.Named
}

// PushResult describes a pushed manifest.
type PushResult struct {
	Name   reference.Named
	Digest digest.Digest // the manifest's digest: what docker push prints
	Size   int64         // the manifest's size
}

// Push uploads the image whose manifest is target, with every blob read
// from store, to ref. Blobs the registry has are skipped, blobs another
// repository of the same registry has are mounted, then the manifest is
// put unchanged, so its digest at the registry is target.Digest.
func (c *Client) Push(ctx context.Context, ref reference.Named, target ocispec.Descriptor, store content.Opener, opts PushOptions) (PushResult, error) {
	res, err := c.push(ctx, ref, target, store, opts)
	if err != nil {
		return PushResult{}, fmt.Errorf("push %s: %w", reference.FamiliarString(ref), err)
	}
	return res, nil
}

func (c *Client) push(ctx context.Context, ref reference.Named, target ocispec.Descriptor, store content.Opener, opts PushOptions) (PushResult, error) {
	if _, ok := ref.(reference.Digested); ok {
		return PushResult{}, fmt.Errorf("push to a digest reference: push by tag: %w", errdefs.ErrInvalidArgument)
	}
	gref, err := c.gname(ref)
	if err != nil {
		return PushResult{}, err
	}
	if !image.IsManifest(target.MediaType) {
		return PushResult{}, fmt.Errorf("manifest %s: media type %q: only image manifests are pushed: %w", target.Digest, target.MediaType, errdefs.ErrNotImplemented)
	}
	raw, err := content.ReadAll(ctx, store, target.Digest, image.MaxManifestSize)
	if err != nil {
		return PushResult{}, fmt.Errorf("manifest %s: %w", target.Digest, err)
	}
	m, err := image.ParseManifest(target.MediaType, raw)
	if err != nil {
		return PushResult{}, fmt.Errorf("manifest %s: %w", target.Digest, err)
	}

	// The mount source: the first known repository on the same registry
	// that is not the target itself.
	var mountFrom reference.Named
	for _, n := range opts.MountFrom {
		if reference.Domain(n) == reference.Domain(ref) && n.Name() != ref.Name() {
			mountFrom = reference.TrimNamed(n)
			break
		}
	}

	rep := &reporter{fn: opts.Progress}
	obs := &observer{inner: c.base, mounted: map[string]bool{}}
	pusher, err := remote.NewPusher(c.remoteOptions(ctx, opts.Auth, obs)...)
	if err != nil {
		return PushResult{}, err
	}
	repo := gref.Context()

	blobs := append([]ocispec.Descriptor{m.Config}, m.Layers...)
	for i, b := range blobs {
		if i > 0 {
			rep.send(Progress{Digest: b.Digest, Status: StatusPreparing, Total: b.Size})
		}
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		sem      = make(chan struct{}, c.cfg.Jobs)
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i, b := range blobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			err := c.pushBlob(ctx, pusher, repo, store, b, i == 0, mountFrom, obs, rep)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("push blob %s: %w", b.Digest, classify(err))
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return PushResult{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return PushResult{}, err
	}
	if err := pusher.Put(ctx, gref, rawManifest{raw: raw, mt: target.MediaType}); err != nil {
		return PushResult{}, fmt.Errorf("put manifest %s: %w", target.Digest, classify(err))
	}
	return PushResult{Name: ref, Digest: digest.FromBytes(raw), Size: int64(len(raw))}, nil
}

func (c *Client) pushBlob(ctx context.Context, pusher *remote.Pusher, repo name.Repository, store content.Opener, desc ocispec.Descriptor, isConfig bool, mountFrom reference.Named, obs *observer, rep *reporter) error {
	sl := &storeLayer{ctx: ctx, store: store, desc: desc, rep: rep, isConfig: isConfig}
	l, err := partial.CompressedToLayer(sl)
	if err != nil {
		return err
	}
	var src string
	if mountFrom != nil {
		gsrc, err := c.gname(mountFrom)
		if err != nil {
			return err
		}
		src = reference.Path(mountFrom)
		l = &remote.MountableLayer{Layer: l, Reference: gsrc.Context().Digest(desc.Digest.String())}
	}
	if err := pusher.Upload(ctx, repo, l); err != nil {
		return err
	}
	p := Progress{Digest: desc.Digest, Config: isConfig, Current: desc.Size, Total: desc.Size}
	switch {
	case sl.opened():
		p.Status = StatusPushed
	case obs.wasMounted(desc.Digest):
		p.Status, p.Detail = StatusMounted, src
	default:
		p.Status = StatusLayerExists
	}
	rep.send(p)
	return nil
}

// storeLayer is a blob of the content store as go-containerregistry's
// compressed layer; it reports upload progress as it is read.
type storeLayer struct {
	ctx      context.Context // the push's; remote's interface has no ctx
	store    content.Opener
	desc     ocispec.Descriptor
	rep      *reporter
	isConfig bool

	mu   sync.Mutex
	open bool
}

func (l *storeLayer) Digest() (v1.Hash, error) { return v1.NewHash(l.desc.Digest.String()) }
func (l *storeLayer) Size() (int64, error)     { return l.desc.Size, nil }
func (l *storeLayer) MediaType() (types.MediaType, error) {
	return types.MediaType(l.desc.MediaType), nil
}

func (l *storeLayer) Compressed() (io.ReadCloser, error) {
	b, err := l.store.Open(l.ctx, l.desc.Digest)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.open = true
	l.mu.Unlock()
	cnt := &counter{r: content.NewReader(b), rep: l.rep,
		base: Progress{Digest: l.desc.Digest, Config: l.isConfig, Status: StatusPushing, Total: l.desc.Size}}
	return struct {
		io.Reader
		io.Closer
	}{cnt, b}, nil
}

func (l *storeLayer) opened() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// rawManifest puts stored manifest bytes unchanged, with their media type.
type rawManifest struct {
	raw []byte
	mt  string
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.MediaType(m.mt), nil }

// observer watches one push's requests for what go-containerregistry does
// not report per blob: whether a blob was mounted from another repository
// (POST …/blobs/uploads/?mount=D answered 201 Created).
type observer struct {
	inner http.RoundTripper

	mu      sync.Mutex
	mounted map[string]bool
}

func (o *observer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := o.inner.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/blobs/uploads/") && resp.StatusCode == http.StatusCreated {
		if d := r.URL.Query().Get("mount"); d != "" {
			o.mu.Lock()
			o.mounted[d] = true
			o.mu.Unlock()
		}
	}
	return resp, err
}

func (o *observer) wasMounted(d digest.Digest) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.mounted[d.String()]
}
