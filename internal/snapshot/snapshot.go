package snapshot

import (
	"context"
	"time"

	"github.com/berth-dev/berth/internal/mount"
)

// Kind is the state of a snapshot.
type Kind int

const (
	// KindActive is writable; Commit turns it into a committed snapshot.
	KindActive Kind = iota + 1
	// KindView is read-only and cannot be committed.
	KindView
	// KindCommitted is immutable and may be the parent of others.
	KindCommitted
)

func (k Kind) String() string {
	switch k {
	case KindActive:
		return "active"
	case KindView:
		return "view"
	case KindCommitted:
		return "committed"
	}
	return "unknown"
}

// Info describes one snapshot.
type Info struct {
	Name    string // the key of an active snapshot or view, the name of a committed one
	Parent  string // the parent's name; empty for a base layer
	Kind    Kind
	Created time.Time
	Updated time.Time
}

// Snapshotter keeps snapshots. Implementations are safe for concurrent use.
// They return mounts and never mount anything themselves; the returned
// mounts stay valid until the snapshot is removed, and the caller unmounts
// what it mounted before calling Remove.
//
// Errors are wrapped with errdefs classes: ErrNotFound for an unknown key or
// parent, ErrAlreadyExists for a key or name in use, ErrInvalidArgument for
// a parent that is not committed or a Commit of something not active, and
// ErrConflict for removing a snapshot that has children.
type Snapshotter interface {
	// Prepare makes a writable snapshot key on top of parent ("" for none).
	Prepare(ctx context.Context, key, parent string) ([]mount.Mount, error)
	// View makes a read-only snapshot key of parent.
	View(ctx context.Context, key, parent string) ([]mount.Mount, error)
	// Mounts returns the mounts of an existing active snapshot or view
	// (for example a container's, after a daemon restart).
	Mounts(ctx context.Context, key string) ([]mount.Mount, error)
	// Commit turns the active snapshot key into the committed snapshot
	// name, which can then be a parent. key no longer exists afterwards.
	Commit(ctx context.Context, name, key string) error
	// Remove deletes a snapshot and frees its disk space. It refuses
	// while other snapshots have it as parent.
	Remove(ctx context.Context, key string) error
	// Stat describes one snapshot.
	Stat(ctx context.Context, key string) (Info, error)
	// Walk calls fn for every snapshot, in no particular order, and stops
	// at fn's first error, returning it.
	Walk(ctx context.Context, fn func(Info) error) error
	// Close releases the store (its lock on the directory).
	Close() error
}

// Sizer is implemented by snapshotters that can tell the disk space a
// snapshot uses by itself (its own layer, not its parents'). Type-assert.
type Sizer interface {
	Size(ctx context.Context, key string) (int64, error)
}

// Stacker is implemented by snapshotters that keep each layer's own changes
// apart from its parents' (overlay). For them a layer can be filled before
// its parent exists: Prepare the key with no parent, write the layer into
// it with whiteouts in overlay's form (0/0 character devices and the
// trusted.overlay.opaque xattr), and CommitOnto the parent once the parent
// is committed. This is what lets layers unpack in parallel. (A base layer
// is better written with whiteouts as deletions: there is nothing below
// for them to hide.)
//
// A Stacker's Prepare with no parent returns one bind mount whose Source
// is the layer's directory, so the layer can be written without mounting.
//
// Snapshotters that are not Stackers (copy) need each layer applied on top
// of a full copy of its parent, with whiteouts applied as deletions.
type Stacker interface {
	CommitOnto(ctx context.Context, name, key, parent string) error
}
