// Package overlay is the default snapshotter: each snapshot is an overlayfs
// upper directory holding only its own layer's changes, and a snapshot's
// mount stacks its ancestors' directories as lower layers. A layer can
// therefore be written without its parents present (snapshot.Stacker),
// which lets an image's layers unpack in parallel.
//
// On disk (<root>/snapshots/overlay/, see package meta): s/<id>/fs is the
// layer (the upper directory while active), s/<id>/work overlay's work
// directory, removed on Commit. It knows nothing about images or tar.
package overlay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/cleanup"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/snapshot/meta"
)

// Snapshotter keeps snapshots as overlay layers. Safe for concurrent use.
type Snapshotter struct {
	meta.Shared
}

var (
	_ snapshot.Snapshotter = (*Snapshotter)(nil)
	_ snapshot.Sizer       = (*Snapshotter)(nil)
	_ snapshot.Stacker     = (*Snapshotter)(nil)
)

// New opens the overlay snapshotter whose state lives in dir
// (conventionally <root>/snapshots/overlay). It does not check that overlay
// works there; Supported does.
func New(ctx context.Context, dir string) (*Snapshotter, error) {
	// Layer paths go into lowerdir=a:b:c and the comma-separated mount
	// data, which have no escaping berth uses.
	if strings.ContainsAny(dir, ":,") {
		return nil, fmt.Errorf("overlay snapshotter in %q: the path may not contain ':' or ',': %w", dir, errdefs.ErrInvalidArgument)
	}
	st, err := meta.Open(ctx, dir)
	if err != nil {
		return nil, err
	}
	return &Snapshotter{meta.Shared{St: st}}, nil
}

func (s *Snapshotter) work(id uint64) string { return filepath.Join(s.St.Dir(id), "work") }

// Prepare implements snapshot.Snapshotter.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string) ([]mount.Mount, error) {
	return s.create(ctx, key, parent, snapshot.KindActive)
}

// View implements snapshot.Snapshotter.
func (s *Snapshotter) View(ctx context.Context, key, parent string) ([]mount.Mount, error) {
	return s.create(ctx, key, parent, snapshot.KindView)
}

func (s *Snapshotter) create(ctx context.Context, key, parent string, kind snapshot.Kind) (_ []mount.Mount, err error) {
	r, err := s.St.Reserve(key, parent, kind)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", verb(kind), key, err)
	}
	var undo cleanup.Stack
	defer undo.Unwind()
	undo.Push(func() { s.St.Abort(r) })
	dir := s.St.Dir(r.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%s %s: %w", verb(kind), key, err)
	}
	undo.Push(func() { _ = os.RemoveAll(dir) })
	// The layer's root is the container's "/": world-readable, as
	// every image expects; a layer's "./" entry may change it.
	if err := os.Mkdir(s.FS(r.ID), 0o755); err != nil {
		return nil, fmt.Errorf("%s %s: %w", verb(kind), key, err)
	}
	if kind == snapshot.KindActive {
		if err := os.Mkdir(s.work(r.ID), 0o700); err != nil {
			return nil, fmt.Errorf("%s %s: %w", verb(kind), key, err)
		}
	}
	if err := s.St.Save(r); err != nil {
		return nil, fmt.Errorf("%s %s: %w", verb(kind), key, err)
	}
	undo.Disarm()
	return s.mounts(r)
}

func verb(k snapshot.Kind) string {
	if k == snapshot.KindView {
		return "view"
	}
	return "prepare"
}

// Mounts implements snapshot.Snapshotter.
func (s *Snapshotter) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	r, err := s.St.Get(key)
	if err != nil {
		return nil, fmt.Errorf("mounts of %s: %w", key, err)
	}
	if meta.KindOf(r.Kind) == snapshot.KindCommitted {
		return nil, fmt.Errorf("mounts of %s: committed snapshots are not mounted, make a View of one: %w", key, errdefs.ErrInvalidArgument)
	}
	return s.mounts(r)
}

func (s *Snapshotter) mounts(r meta.Record) ([]mount.Mount, error) {
	chain, err := s.St.Chain(r.Parent)
	if err != nil {
		return nil, fmt.Errorf("mounts of %s: %w", r.Name, err)
	}
	lowers := make([]string, len(chain))
	for i, c := range chain {
		lowers[i] = s.FS(c.ID)
	}
	kind := meta.KindOf(r.Kind)
	switch {
	case kind == snapshot.KindActive && len(lowers) == 0:
		return []mount.Mount{{Type: "bind", Source: s.FS(r.ID), Options: []string{"rbind", "rw"}}}, nil
	case kind == snapshot.KindActive:
		return []mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{
			"lowerdir=" + strings.Join(lowers, ":"), "upperdir=" + s.FS(r.ID), "workdir=" + s.work(r.ID),
		}}}, nil
	case len(lowers) == 0: // an empty view
		return []mount.Mount{{Type: "bind", Source: s.FS(r.ID), Options: []string{"rbind", "ro"}}}, nil
	default:
		// Without an upper layer overlay wants two lower ones. A view of
		// one layer gets its own empty directory below it rather than a
		// bind mount, so that whiteouts in that layer stay hidden as
		// they are in every other mount of it.
		if len(lowers) == 1 {
			lowers = append(lowers, s.FS(r.ID))
		}
		return []mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{
			"ro", "lowerdir=" + strings.Join(lowers, ":"),
		}}}, nil
	}
}

// Commit implements snapshot.Snapshotter.
func (s *Snapshotter) Commit(ctx context.Context, name, key string) error {
	return s.commit(ctx, name, key, false, "")
}

// CommitOnto implements snapshot.Stacker: key, prepared without a parent,
// becomes name on top of parent.
func (s *Snapshotter) CommitOnto(ctx context.Context, name, key, parent string) error {
	return s.commit(ctx, name, key, true, parent)
}

func (s *Snapshotter) commit(ctx context.Context, name, key string, setParent bool, parent string) error {
	r, err := s.St.Commit(name, key, setParent, parent)
	if err != nil {
		return fmt.Errorf("commit %s as %s: %w", key, name, err)
	}
	// The work directory is scratch space for an active overlay mount;
	// a committed layer is never mounted as an upper layer again.
	if err := os.RemoveAll(s.work(r.ID)); err != nil {
		log.From(ctx).Warn("remove work directory of committed snapshot", log.KeySnapshot, name, log.KeyErr, err)
	}
	return nil
}
