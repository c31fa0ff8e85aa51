package image

import (
	"context"
	"errors"
	"fmt"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/snapshot"
)

// Blobs is what garbage collection needs of the content store.
type Blobs interface {
	Walk(ctx context.Context, fn func(content.Info) error) error
	Delete(ctx context.Context, d digest.Digest) error
}

// Snapshots is what garbage collection needs of the snapshotter. Layer
// snapshots are the committed ones named by their chain ID; anything else
// (a container's writable layer, an unpack in progress) is never touched.
type Snapshots interface {
	Walk(ctx context.Context, fn func(snapshot.Info) error) error
	Remove(ctx context.Context, key string) error
}

// Hold keeps Collect from running until release is called. Whoever writes
// blobs or snapshots that an image record will reference soon (load, pull,
// import, commit) holds it from the first write until Put, so a concurrent
// collection does not take what is about to be referenced.
func (s *Store) Hold() (release func()) {
	s.gcMu.RLock()
	return s.gcMu.RUnlock
}

// Collected is what Collect freed.
type Collected struct {
	Blobs     []digest.Digest
	Snapshots []string
	Bytes     int64 // blob bytes freed
}

// Collect removes every blob and layer snapshot no image references. A
// snapshot that still has children (a container on top of it) stays, and so
// do its parents. Errors on single items are logged and skipped: what is
// left is found again by the next collection.
func (s *Store) Collect(ctx context.Context, blobs Blobs, snaps Snapshots) (Collected, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	recs, err := s.List(ctx)
	if err != nil {
		return Collected{}, fmt.Errorf("collect: %w", err)
	}
	keepBlobs := map[digest.Digest]bool{}
	keepChains := map[string]bool{}
	for _, r := range recs {
		for _, d := range r.Blobs() {
			keepBlobs[d] = true
		}
		for _, c := range r.ChainIDs() {
			keepChains[c.String()] = true
		}
	}
	var out Collected
	if blobs != nil {
		var gone []content.Info
		err := blobs.Walk(ctx, func(i content.Info) error {
			if !keepBlobs[i.Digest] {
				gone = append(gone, i)
			}
			return nil
		})
		if err != nil {
			return out, fmt.Errorf("collect blobs: %w", err)
		}
		for _, i := range gone {
			if err := blobs.Delete(ctx, i.Digest); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				log.From(ctx).Warn("collect: delete blob; it stays on disk", log.KeyDigest, i.Digest, log.KeyErr, err)
				continue
			}
			out.Blobs = append(out.Blobs, i.Digest)
			out.Bytes += i.Size
		}
	}
	if snaps != nil {
		removed, err := collectSnapshots(ctx, snaps, keepChains)
		out.Snapshots = removed
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func collectSnapshots(ctx context.Context, snaps Snapshots, keep map[string]bool) ([]string, error) {
	all := map[string]snapshot.Info{}
	children := map[string]int{}
	err := snaps.Walk(ctx, func(i snapshot.Info) error {
		all[i.Name] = i
		if i.Parent != "" {
			children[i.Parent]++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("collect snapshots: %w", err)
	}
	isLayer := func(i snapshot.Info) bool {
		_, err := digest.Parse(i.Name)
		return i.Kind == snapshot.KindCommitted && err == nil
	}
	var removed []string
	// Leaves first: a snapshot can only go once nothing sits on it.
	for progress := true; progress; {
		progress = false
		for name, i := range all {
			if !isLayer(i) || keep[name] || children[name] > 0 {
				continue
			}
			delete(all, name)
			if err := snaps.Remove(ctx, name); err != nil {
				if !errors.Is(err, errdefs.ErrNotFound) {
					log.From(ctx).Warn("collect: remove snapshot; it stays on disk", log.KeySnapshot, name, log.KeyErr, err)
				}
				continue
			}
			removed = append(removed, name)
			if i.Parent != "" {
				children[i.Parent]--
			}
			progress = true
		}
	}
	return removed, nil
}
