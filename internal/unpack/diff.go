package unpack

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/snapshot"
)

// Diff writes the changes of the active snapshot key against its parent
// to w as an uncompressed layer tar, and returns its diffID (for commit
// and export). With overlay the changes are the upper directory itself;
// otherwise the snapshot is compared with a read-only view of its parent.
func Diff(ctx context.Context, sn snapshot.Snapshotter, key string, w io.Writer) (digest.Digest, error) {
	d, err := diff(ctx, sn, key, w)
	if err != nil {
		return "", fmt.Errorf("diff %s: %w", key, err)
	}
	return d, nil
}

func diff(ctx context.Context, sn snapshot.Snapshotter, key string, w io.Writer) (digest.Digest, error) {
	info, err := sn.Stat(ctx, key)
	if err != nil {
		return "", err
	}
	if info.Kind != snapshot.KindActive {
		return "", fmt.Errorf("snapshot is %s; only an active snapshot has a diff here: %w", info.Kind, errdefs.ErrNotImplemented)
	}
	ms, err := sn.Mounts(ctx, key)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	tw := io.MultiWriter(w, h)
	if len(ms) != 1 {
		return "", fmt.Errorf("%d mounts: %w", len(ms), errdefs.ErrNotImplemented)
	}
	m := ms[0]
	if upper, ok := m.Option("upperdir"); ok && m.Type == "overlay" {
		if err := archive.WriteOverlayDiff(ctx, tw, upper); err != nil {
			return "", err
		}
		return digest.NewDigest(digest.SHA256, h), nil
	}
	if m.Type != "bind" {
		return "", fmt.Errorf("mount type %s: %w", m.Type, errdefs.ErrNotImplemented)
	}
	if info.Parent == "" {
		if err := archive.WriteDiff(ctx, tw, "", m.Source); err != nil {
			return "", err
		}
		return digest.NewDigest(digest.SHA256, h), nil
	}
	vkey := "diff-" + key
	vms, err := sn.View(ctx, vkey, info.Parent)
	if err != nil {
		return "", err
	}
	defer func() { _ = sn.Remove(context.WithoutCancel(ctx), vkey) }()
	if len(vms) == 1 && vms[0].Type == "bind" {
		err = archive.WriteDiff(ctx, tw, vms[0].Source, m.Source)
	} else {
		err = mount.WithTempMount(ctx, vms, func(lower string) error {
			return archive.WriteDiff(ctx, tw, lower, m.Source)
		})
	}
	if err != nil {
		return "", err
	}
	return digest.NewDigest(digest.SHA256, h), nil
}
