package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/distribution/reference"
	evtypes "github.com/moby/moby/api/types/events"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/log"
)

// PushOptions tune Push.
type PushOptions struct {
	// Auth is the credential for the reference's registry; nil pushes
	// anonymously.
	Auth     *distribution.AuthConfig
	Progress func(distribution.Progress)
}

// PushResult is what docker push prints last: "TAG: digest: D size: N".
type PushResult struct {
	Name   string // normalised name:tag pushed
	Tag    string
	Digest digest.Digest
	Size   int64
}

// Push uploads the image tagged ref to its registry. Blobs the registry
// has are skipped and blobs of a repository the image was pulled from (same
// registry) are mounted. The pushed name@digest becomes one of the image's
// repo digests.
func (e *Engine) Push(ctx context.Context, ref string, opts PushOptions) (PushResult, error) {
	named, err := image.ParseTag(ref)
	if err != nil {
		return PushResult{}, fmt.Errorf("push: %w", err)
	}
	ctx = log.With(ctx, log.KeyImage, named.String())
	rec, err := e.images.Lookup(ctx, named.String())
	if errors.Is(err, errdefs.ErrNotFound) {
		// docker's words.
		return PushResult{}, fmt.Errorf("An image does not exist locally with the tag: %s: %w", reference.FamiliarName(named), errdefs.ErrNotFound) //nolint:staticcheck // shown to users
	}
	if err != nil {
		return PushResult{}, fmt.Errorf("push %s: %w", reference.FamiliarString(named), err)
	}
	var mountFrom []reference.Named
	for _, rd := range rec.RepoDigests {
		if n, err := reference.ParseNormalizedNamed(rd); err == nil {
			mountFrom = append(mountFrom, n)
		}
	}
	// The blobs must stay while they are read.
	release := e.images.Hold()
	defer release()
	res, err := e.Registry().Push(ctx, named, rec.Target, e.content, distribution.PushOptions{
		Auth:      opts.Auth,
		Progress:  opts.Progress,
		MountFrom: mountFrom,
	})
	if err != nil {
		return PushResult{}, err
	}
	rd, err := image.RepoDigest(named, res.Digest)
	if err == nil {
		upd := rec
		upd.RepoTags, upd.RepoDigests = nil, []string{rd}
		if _, err := e.images.Put(ctx, upd); err != nil {
			// The push itself worked; only the local note of it did not.
			log.From(ctx).Warn("push: record repo digest", log.KeyErr, err)
		}
	}
	log.From(ctx).Info("push done", log.KeyDigest, res.Digest.String())
	e.emitImage(ctx, evtypes.ActionPush, reference.FamiliarString(named), reference.FamiliarName(named))
	return PushResult{Name: named.String(), Tag: named.Tag(), Digest: res.Digest, Size: res.Size}, nil
}
