package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/mount"
)

// unpack makes sure every layer of rec has its committed snapshot, named
// by its chain ID, and returns rec with the layer sizes it learnt.
//
// Interim: this applies layers one after the other through the
// snapshotter's own mounts (whiteouts as deletions, which both drivers
// turn into their own form). internal/unpack, the layers engineer's
// package, replaces it with parallel unpacking once it lands.
func (e *Engine) unpack(ctx context.Context, rec image.Record) (image.Record, error) {
	parent := ""
	var total int64
	for i, l := range rec.Layers {
		name := l.ChainID.String()
		if _, err := e.snaps.Stat(ctx, name); err == nil {
			parent = name
			total += l.Size
			continue
		}
		size, err := e.unpackLayer(ctx, rec, i, parent)
		if err != nil {
			return rec, fmt.Errorf("unpack layer %d of %s: %w", i, rec.ID, err)
		}
		rec.Layers[i].Size = size
		total += size
		parent = name
	}
	if total > 0 {
		rec.Size = total
	}
	return rec, nil
}

func (e *Engine) unpackLayer(ctx context.Context, rec image.Record, i int, parent string) (size int64, err error) {
	l := rec.Layers[i]
	var rnd [8]byte
	rand.Read(rnd[:])
	key := "unpack-" + hex.EncodeToString(rnd[:])
	ms, err := e.snaps.Prepare(ctx, key, parent)
	if err != nil {
		return 0, err
	}
	committed := false
	defer func() {
		if committed {
			return
		}
		if rerr := e.snaps.Remove(context.WithoutCancel(ctx), key); rerr != nil {
			log.From(ctx).Warn("unpack: remove half-made snapshot; it stays until the next prune", log.KeySnapshot, key, log.KeyErr, rerr)
		}
	}()
	blob, err := e.content.Open(ctx, l.Blob.Digest)
	if err != nil {
		return 0, err
	}
	defer blob.Close()
	err = mount.WithTempMount(ctx, ms, func(root string) error {
		res, err := archive.Apply(ctx, root, content.NewReader(blob), archive.ApplyOptions{Whiteouts: archive.WhiteoutsDelete, DiffID: l.DiffID})
		size = res.Size
		return err
	})
	if err != nil {
		return 0, err
	}
	if err := e.snaps.Commit(ctx, l.ChainID.String(), key); err != nil {
		if errors.Is(err, errdefs.ErrAlreadyExists) {
			return size, nil // unpacked concurrently by another load
		}
		return 0, err
	}
	committed = true
	return size, nil
}
