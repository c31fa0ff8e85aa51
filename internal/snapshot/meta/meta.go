// Package meta is the bookkeeping the snapshot drivers share: which
// snapshots exist, their kind, parent and the number naming their
// directory, persisted as one small JSON file per snapshot.
//
// A driver's directory (<root>/snapshots/<driver>/) holds:
//
//	lock            flock(2)ed while a Store is open: one owner at a time
//	meta/<id>.json  one Record per snapshot
//	s/<id>/         the snapshot's files, laid out by the driver
//
// Why JSON files rather than a database such as bbolt: each operation
// changes exactly one snapshot, so one file written to a temporary name,
// fsynced and renamed over the old one is already an atomic transaction (a
// Commit rewrites its file in place under the same id). A store holds
// hundreds of snapshots, not millions, so reading them all at open is cheap,
// and the files can be read by a person debugging a machine. No dependency.
//
// Directories are named by a short decimal id rather than by key or chain
// ID so that overlay's mount data, which lists every lower layer, stays
// small.
//
// Crash safety: a snapshot's directory is made before its record is
// written, and its record is deleted before its directory. Open therefore
// removes directories that have no record (a Prepare or Remove cut short)
// and leftover temporary files; a record always has its directory.
//
// It knows nothing about mounts, overlay or images.
package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/snapshot"
)

// Record is one snapshot as stored.
type Record struct {
	ID      uint64    `json:"id"`
	Name    string    `json:"name"`
	Parent  string    `json:"parent,omitempty"`
	Kind    string    `json:"kind"` // snapshot.Kind.String()
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Info converts r to the snapshot package's description.
func (r Record) Info() snapshot.Info {
	return snapshot.Info{Name: r.Name, Parent: r.Parent, Kind: KindOf(r.Kind), Created: r.Created, Updated: r.Updated}
}

// KindOf parses a stored kind.
func KindOf(s string) snapshot.Kind {
	for _, k := range []snapshot.Kind{snapshot.KindActive, snapshot.KindView, snapshot.KindCommitted} {
		if k.String() == s {
			return k
		}
	}
	return 0
}

// Store is the record of one driver's snapshots. It is safe for concurrent
// use: mu guards every field below it.
type Store struct {
	dir  string
	lock *os.File

	mu      sync.Mutex
	byName  map[string]*Record
	pending map[string]string // names reserved by a Reserve not yet saved → their parent
	nextID  uint64
}

// Open opens (creating if needed) the store in dir, takes its lock and
// removes what a crash left half-made.
func Open(ctx context.Context, dir string) (*Store, error) {
	for _, d := range []string{dir, filepath.Join(dir, "meta"), filepath.Join(dir, "s")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open snapshot store %s: %w", dir, err)
		}
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open snapshot store %s: %w", dir, err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open snapshot store %s: in use by another process: %w", dir, errdefs.ErrUnavailable)
	}
	spreadSnapshots(ctx, filepath.Join(dir, "s"))
	s := &Store{dir: dir, lock: lock, byName: map[string]*Record{}, pending: map[string]string{}, nextID: 1}
	if err := s.load(ctx); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open snapshot store %s: %w", dir, err)
	}
	return s, nil
}

func (s *Store) load(ctx context.Context) error {
	metaDir := filepath.Join(s.dir, "meta")
	entries, err := os.ReadDir(metaDir)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, e := range entries {
		p := filepath.Join(metaDir, e.Name())
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(e.Name(), ".") {
			// A temporary file whose rename never happened.
			if err := os.Remove(p); err != nil {
				return err
			}
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil || strconv.FormatUint(r.ID, 10) != id || KindOf(r.Kind) == 0 {
			// Writes are atomic, so this is damage from outside; keep
			// the files for a person to look at, but go on.
			log.From(ctx).Warn("skip unreadable snapshot record", log.KeyPath, p, log.KeyErr, err)
			keep[id] = true
			continue
		}
		if _, dup := s.byName[r.Name]; dup {
			return fmt.Errorf("snapshot %q recorded twice (in %s)", r.Name, p)
		}
		s.byName[r.Name] = &r
		keep[id] = true
		s.nextID = max(s.nextID, r.ID+1)
	}
	dirs, err := os.ReadDir(filepath.Join(s.dir, "s"))
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if n, err := strconv.ParseUint(d.Name(), 10, 64); err == nil {
			s.nextID = max(s.nextID, n+1)
		}
		if keep[d.Name()] {
			continue
		}
		log.From(ctx).Info("remove snapshot directory without a record", log.KeyPath, d.Name())
		if err := os.RemoveAll(filepath.Join(s.dir, "s", d.Name())); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the store's lock.
func (s *Store) Close() error { return s.lock.Close() }

// Dir is where the snapshot with id keeps its files.
func (s *Store) Dir(id uint64) string {
	return filepath.Join(s.dir, "s", strconv.FormatUint(id, 10))
}

// Reserve checks that name is free and parent committed (or empty), and
// sets aside an id. The record is not stored until Save; Abort releases it.
func (s *Store) Reserve(name, parent string, kind snapshot.Kind) (Record, error) {
	if name == "" {
		return Record{}, fmt.Errorf("snapshot name is empty: %w", errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.free(name); err != nil {
		return Record{}, err
	}
	if parent != "" {
		p, ok := s.byName[parent]
		if !ok {
			return Record{}, fmt.Errorf("parent snapshot %s: %w", parent, errdefs.ErrNotFound)
		}
		if KindOf(p.Kind) != snapshot.KindCommitted {
			return Record{}, fmt.Errorf("parent snapshot %s is %s, not committed: %w", parent, p.Kind, errdefs.ErrInvalidArgument)
		}
	}
	now := time.Now().UTC()
	r := Record{ID: s.nextID, Name: name, Parent: parent, Kind: kind.String(), Created: now, Updated: now}
	s.nextID++
	s.pending[name] = parent
	return r, nil
}

func (s *Store) free(name string) error {
	if _, ok := s.byName[name]; ok {
		return fmt.Errorf("snapshot %s: %w", name, errdefs.ErrAlreadyExists)
	}
	if _, ok := s.pending[name]; ok {
		return fmt.Errorf("snapshot %s: being prepared: %w", name, errdefs.ErrAlreadyExists)
	}
	return nil
}

// Save stores a record set aside by Reserve, once its directory exists.
func (s *Store) Save(r Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.write(r); err != nil {
		return err
	}
	delete(s.pending, r.Name)
	s.byName[r.Name] = &r
	return nil
}

// Abort releases a reservation that will not be saved.
func (s *Store) Abort(r Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, r.Name)
}

// Get returns the record of name.
func (s *Store) Get(name string) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byName[name]
	if !ok {
		return Record{}, fmt.Errorf("snapshot %s: %w", name, errdefs.ErrNotFound)
	}
	return *r, nil
}

// Chain returns name's record followed by its ancestors', nearest first;
// nothing for "".
func (s *Store) Chain(name string) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for name != "" {
		r, ok := s.byName[name]
		if !ok {
			return nil, fmt.Errorf("snapshot %s: %w", name, errdefs.ErrNotFound)
		}
		out = append(out, *r)
		name = r.Parent
		if len(out) > len(s.byName) {
			return nil, fmt.Errorf("snapshot %s: parent cycle", name)
		}
	}
	return out, nil
}

// Commit renames the active snapshot key to name and makes it committed.
// With setParent, its parent becomes parent, which must be committed.
func (s *Store) Commit(name, key string, setParent bool, parent string) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byName[key]
	if !ok {
		return Record{}, fmt.Errorf("snapshot %s: %w", key, errdefs.ErrNotFound)
	}
	if KindOf(r.Kind) != snapshot.KindActive {
		return Record{}, fmt.Errorf("snapshot %s is %s, only an active one can be committed: %w", key, r.Kind, errdefs.ErrInvalidArgument)
	}
	if name != key {
		if err := s.free(name); err != nil {
			return Record{}, err
		}
	}
	nr := *r
	if setParent {
		if r.Parent != "" {
			return Record{}, fmt.Errorf("snapshot %s already has parent %s: %w", key, r.Parent, errdefs.ErrInvalidArgument)
		}
		if parent != "" {
			p, ok := s.byName[parent]
			if !ok {
				return Record{}, fmt.Errorf("parent snapshot %s: %w", parent, errdefs.ErrNotFound)
			}
			if KindOf(p.Kind) != snapshot.KindCommitted {
				return Record{}, fmt.Errorf("parent snapshot %s is %s, not committed: %w", parent, p.Kind, errdefs.ErrInvalidArgument)
			}
		}
		nr.Parent = parent
	}
	if s.hasChildren(key) {
		return Record{}, fmt.Errorf("snapshot %s has children: %w", key, errdefs.ErrConflict)
	}
	nr.Name, nr.Kind, nr.Updated = name, snapshot.KindCommitted.String(), time.Now().UTC()
	if err := s.write(nr); err != nil {
		return Record{}, err
	}
	delete(s.byName, key)
	s.byName[name] = &nr
	return nr, nil
}

func (s *Store) hasChildren(name string) bool {
	for _, r := range s.byName {
		if r.Parent == name {
			return true
		}
	}
	for _, p := range s.pending {
		if p == name {
			return true
		}
	}
	return false
}

// Remove deletes name's record and returns it; the caller then removes its
// directory. It refuses while other snapshots have name as parent.
func (s *Store) Remove(name string) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byName[name]
	if !ok {
		return Record{}, fmt.Errorf("snapshot %s: %w", name, errdefs.ErrNotFound)
	}
	if s.hasChildren(name) {
		return Record{}, fmt.Errorf("snapshot %s has children: %w", name, errdefs.ErrConflict)
	}
	p := filepath.Join(s.dir, "meta", strconv.FormatUint(r.ID, 10)+".json")
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Record{}, fmt.Errorf("remove snapshot record %s: %w", name, err)
	}
	if err := syncDir(filepath.Join(s.dir, "meta")); err != nil {
		return Record{}, err
	}
	delete(s.byName, name)
	return *r, nil
}

// All returns every record, in no particular order.
func (s *Store) All() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, 0, len(s.byName))
	for _, r := range s.byName {
		out = append(out, *r)
	}
	return out
}

// write stores r atomically: temporary file, fsync, rename, fsync of the
// directory. Callers hold mu.
func (s *Store) write(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	metaDir := filepath.Join(s.dir, "meta")
	final := filepath.Join(metaDir, strconv.FormatUint(r.ID, 10)+".json")
	f, err := os.CreateTemp(metaDir, ".tmp-")
	if err != nil {
		return fmt.Errorf("write snapshot record %s: %w", r.Name, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write snapshot record %s: %w", r.Name, err)
	}
	return syncDir(metaDir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// DiskUsage returns the bytes of disk that the tree at dir takes, counting
// each inode once.
func DiskUsage(ctx context.Context, dir string) (int64, error) {
	seen := map[uint64]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if seen[st.Ino] {
			return nil
		}
		seen[st.Ino] = true
		total += st.Blocks * 512
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("disk usage of %s: %w", dir, err)
	}
	return total, nil
}
