// Package copy is the fallback snapshotter ("vfs"): every active snapshot
// is a full copy of its parent, and its mount a plain bind mount. It works
// on any filesystem, overlay itself included, at the price of disk space
// and of copying each layer's parents before applying it; layers must be
// applied in order with whiteouts as deletions.
//
// On disk (<root>/snapshots/copy/, see package meta): s/<id>/fs is the
// snapshot's whole tree. A view does not copy: it is a read-only bind
// mount of its (immutable, committed) parent. It knows nothing about
// images or tar.
package copy

import (
	"context"
	"fmt"
	"os"

	"github.com/berth-dev/berth/internal/cleanup"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/snapshot/meta"
)

// Snapshotter keeps snapshots as full copies. Safe for concurrent use.
type Snapshotter struct {
	meta.Shared
}

var (
	_ snapshot.Snapshotter = (*Snapshotter)(nil)
	_ snapshot.Sizer       = (*Snapshotter)(nil)
)

// New opens the copy snapshotter whose state lives in dir
// (conventionally <root>/snapshots/copy).
func New(ctx context.Context, dir string) (*Snapshotter, error) {
	st, err := meta.Open(ctx, dir)
	if err != nil {
		return nil, err
	}
	return &Snapshotter{meta.Shared{St: st}}, nil
}

// Prepare implements snapshot.Snapshotter: it copies parent's tree.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string) ([]mount.Mount, error) {
	return s.create(ctx, key, parent, snapshot.KindActive)
}

// View implements snapshot.Snapshotter.
func (s *Snapshotter) View(ctx context.Context, key, parent string) ([]mount.Mount, error) {
	return s.create(ctx, key, parent, snapshot.KindView)
}

func (s *Snapshotter) create(ctx context.Context, key, parent string, kind snapshot.Kind) ([]mount.Mount, error) {
	op := "prepare"
	if kind == snapshot.KindView {
		op = "view"
	}
	r, err := s.St.Reserve(key, parent, kind)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, key, err)
	}
	var undo cleanup.Stack
	defer undo.Unwind()
	undo.Push(func() { s.St.Abort(r) })
	dir := s.St.Dir(r.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, key, err)
	}
	undo.Push(func() { _ = os.RemoveAll(dir) })
	if kind == snapshot.KindActive && parent != "" {
		p, err := s.St.Get(parent)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", op, key, err)
		}
		if err := copyTree(ctx, s.FS(p.ID), s.FS(r.ID)); err != nil {
			return nil, fmt.Errorf("%s %s: copy parent %s: %w", op, key, parent, err)
		}
	} else if err := os.Mkdir(s.FS(r.ID), 0o755); err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, key, err)
	}
	if err := s.St.Save(r); err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, key, err)
	}
	undo.Disarm()
	return s.mounts(r)
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
	if meta.KindOf(r.Kind) != snapshot.KindView {
		return []mount.Mount{{Type: "bind", Source: s.FS(r.ID), Options: []string{"rbind", "rw"}}}, nil
	}
	src := s.FS(r.ID)
	if r.Parent != "" {
		p, err := s.St.Get(r.Parent)
		if err != nil {
			return nil, fmt.Errorf("mounts of %s: %w", r.Name, err)
		}
		src = s.FS(p.ID)
	}
	return []mount.Mount{{Type: "bind", Source: src, Options: []string{"rbind", "ro"}}}, nil
}

// Commit implements snapshot.Snapshotter.
func (s *Snapshotter) Commit(ctx context.Context, name, key string) error {
	if _, err := s.St.Commit(name, key, false, ""); err != nil {
		return fmt.Errorf("commit %s as %s: %w", key, name, err)
	}
	return nil
}
