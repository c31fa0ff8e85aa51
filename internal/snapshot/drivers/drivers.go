// Package drivers opens the snapshotter a berth root should use: overlay
// when the kernel and the root's filesystem support it, the copy driver
// otherwise, or the one named by the user. It lives apart from package
// snapshot because it imports both implementations, which import snapshot.
//
// It owns <root>/snapshots/ and picks <root>/snapshots/<driver>/ within.
package drivers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/snapshot/copy"
	"github.com/berth-dev/berth/internal/snapshot/overlay"
)

// Driver names.
const (
	Overlay = "overlay"
	Copy    = "copy" // also accepted as "vfs", docker's name for it
)

// Options selects the snapshotter.
type Options struct {
	// Root is berth's state directory (/var/lib/berth).
	Root string
	// Driver is Overlay, Copy ("vfs"), or "" to choose: a driver that
	// already holds snapshots under Root keeps being used, otherwise
	// overlay if a probe mount succeeds, otherwise copy.
	Driver string
}

// Open opens the snapshotter chosen by opts and returns it with its name.
func Open(ctx context.Context, opts Options) (snapshot.Snapshotter, string, error) {
	name, err := choose(ctx, opts)
	if err != nil {
		return nil, "", fmt.Errorf("open snapshotter: %w", err)
	}
	dir := filepath.Join(opts.Root, "snapshots", name)
	var sn snapshot.Snapshotter
	switch name {
	case Overlay:
		sn, err = overlay.New(ctx, dir)
	default:
		sn, err = copy.New(ctx, dir)
	}
	if err != nil {
		return nil, "", fmt.Errorf("open snapshotter %s: %w", name, err)
	}
	log.From(ctx).Debug("snapshotter", "driver", name, log.KeyPath, dir)
	return sn, name, nil
}

func choose(ctx context.Context, opts Options) (string, error) {
	base := filepath.Join(opts.Root, "snapshots")
	switch opts.Driver {
	case Overlay:
		if err := overlay.Supported(ctx, filepath.Join(base, Overlay)); err != nil {
			return "", err
		}
		return Overlay, nil
	case Copy, "vfs":
		return Copy, nil
	case "":
	default:
		return "", fmt.Errorf("unknown snapshot driver %q (want %s or %s): %w", opts.Driver, Overlay, Copy, errdefs.ErrInvalidArgument)
	}
	for _, d := range []string{Overlay, Copy} {
		if hasSnapshots(filepath.Join(base, d)) {
			return d, nil
		}
	}
	err := overlay.Supported(ctx, filepath.Join(base, Overlay))
	if err == nil {
		return Overlay, nil
	}
	log.From(ctx).Info("overlay unavailable, using the copy snapshotter", log.KeyErr, err)
	return Copy, nil
}

func hasSnapshots(dir string) bool {
	entries, err := os.ReadDir(filepath.Join(dir, "meta"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false
	}
	return len(entries) > 0
}
