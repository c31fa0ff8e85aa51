package meta

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/snapshot"
)

// Shared implements the Snapshotter methods that are the same for every
// driver built on a Store, where snapshot id's files live under Dir(id)
// and its tree in Dir(id)/fs. Drivers embed it.
type Shared struct{ St *Store }

// FS is the directory of snapshot id's own tree.
func (s Shared) FS(id uint64) string { return filepath.Join(s.St.Dir(id), "fs") }

// Remove implements snapshot.Snapshotter.
func (s Shared) Remove(ctx context.Context, key string) error {
	r, err := s.St.Remove(key)
	if err != nil {
		return fmt.Errorf("remove %s: %w", key, err)
	}
	if err := os.RemoveAll(s.St.Dir(r.ID)); err != nil {
		// The record is gone; the next Open removes the directory.
		return fmt.Errorf("remove %s: files: %w", key, err)
	}
	return nil
}

// Stat implements snapshot.Snapshotter.
func (s Shared) Stat(ctx context.Context, key string) (snapshot.Info, error) {
	r, err := s.St.Get(key)
	if err != nil {
		return snapshot.Info{}, fmt.Errorf("stat: %w", err)
	}
	return r.Info(), nil
}

// Walk implements snapshot.Snapshotter.
func (s Shared) Walk(ctx context.Context, fn func(snapshot.Info) error) error {
	for _, r := range s.St.All() {
		if err := fn(r.Info()); err != nil {
			return err
		}
	}
	return nil
}

// Size implements snapshot.Sizer: the disk used by the snapshot's own tree
// (a full copy for the copy driver, one layer for overlay).
func (s Shared) Size(ctx context.Context, key string) (int64, error) {
	r, err := s.St.Get(key)
	if err != nil {
		return 0, fmt.Errorf("size: %w", err)
	}
	return DiskUsage(ctx, s.FS(r.ID))
}

// Close implements snapshot.Snapshotter.
func (s Shared) Close() error { return s.St.Close() }
