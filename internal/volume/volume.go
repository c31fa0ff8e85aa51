package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cleanup"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
)

// Driver is the only driver: docker's local one.
const Driver = "local"

// AnonymousLabel marks a volume made without a name, as docker (23 and
// later) marks it: volume prune removes only these unless told all.
const AnonymousLabel = "com.docker.volume.anonymous"

// validName is docker's rule for volume names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Volume is one volume.
type Volume struct {
	Name       string            `json:"name"`
	Mountpoint string            `json:"-"`
	CreatedAt  time.Time         `json:"createdAt"`
	Labels     map[string]string `json:"labels,omitempty"`
	// Options are the local driver's (type, device, o), as given.
	Options   map[string]string `json:"options,omitempty"`
	Anonymous bool              `json:"anonymous,omitempty"`
}

// IsAnonymous says whether v was made without a name: by berth (the
// flag) or carrying docker's label.
func (v Volume) IsAnonymous() bool {
	_, labelled := v.Labels[AnonymousLabel]
	return v.Anonymous || labelled
}

// Store holds the volumes under one directory. It is safe for concurrent
// use; mu serialises creation, removal and pinning.
type Store struct {
	dir string
	mu  sync.Mutex
}

// Open makes the store at dir (<root>/volumes). Volumes with mount
// options and pinned subpaths whose mounts a reboot took away are
// mounted again; one that cannot be is logged and tried again on its
// next use.
func Open(dir string) (*Store, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open volume store: %w", err)
	}
	if err := os.MkdirAll(dir, 0o701); err != nil {
		return nil, fmt.Errorf("open volume store: %w", err)
	}
	s := &Store{dir: dir}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open volume store: %w", err)
	}
	for _, e := range ents {
		v, err := s.get(e.Name())
		if err != nil {
			continue
		}
		if err := s.remount(v); err != nil {
			log.From(context.Background()).Warn("volume: mount again after a restart", "volume", v.Name, log.KeyErr, err)
		}
	}
	return s, nil
}

// CreateOptions describe a new volume; an empty Name makes an anonymous one.
type CreateOptions struct {
	Name   string
	Labels map[string]string
	// Options are the local driver's: type, device, o (see doc.go).
	Options map[string]string
}

// Create makes the volume, or returns the existing one of that name
// (docker's create is idempotent for the local driver, whatever labels
// and options the second call gives). created says which. Errors:
// ErrInvalidArgument for a bad name or options, ErrNotImplemented for a
// filesystem type berth does not mount.
func (s *Store) Create(ctx context.Context, o CreateOptions) (v Volume, created bool, err error) {
	anon := o.Name == ""
	if anon {
		var b [32]byte
		_, _ = rand.Read(b[:])
		o.Name = hex.EncodeToString(b[:])
	}
	if !validName.MatchString(o.Name) {
		return Volume{}, false, fmt.Errorf("create volume %q: includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed: %w", o.Name, errdefs.ErrInvalidArgument)
	}
	spec, err := parseOptions(o.Options)
	if err != nil {
		return Volume{}, false, fmt.Errorf("create volume %s: %w", o.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch v, err := s.get(o.Name); {
	case err == nil:
		// A use of an existing volume mounts it if a restart could not.
		if err := s.remount(v); err != nil {
			return Volume{}, false, err
		}
		return v, false, nil
	case !errors.Is(err, errdefs.ErrNotFound):
		return Volume{}, false, err // unreadable metadata: never overwrite
	}
	labels := maps.Clone(o.Labels)
	if anon {
		if labels == nil {
			labels = map[string]string{}
		}
		labels[AnonymousLabel] = ""
	}
	v = Volume{Name: o.Name, CreatedAt: time.Now().UTC().Truncate(time.Second), Labels: labels, Options: maps.Clone(o.Options), Anonymous: anon}
	dir := filepath.Join(s.dir, o.Name)
	data := filepath.Join(dir, "_data")
	if err := clearLeftover(dir); err != nil {
		return Volume{}, false, fmt.Errorf("create volume %s: %w", o.Name, err)
	}
	var undo cleanup.Stack
	defer undo.Unwind()
	if err := os.Mkdir(dir, 0o701); err != nil {
		return Volume{}, false, fmt.Errorf("create volume %s: %w", o.Name, err)
	}
	undo.Push(func() { _ = os.RemoveAll(dir) })
	if err := os.Mkdir(data, 0o755); err != nil {
		return Volume{}, false, fmt.Errorf("create volume %s: %w", o.Name, err)
	}
	if spec != nil {
		if err := spec.mount(data); err != nil {
			return Volume{}, false, fmt.Errorf("create volume %s: %w", o.Name, err)
		}
		// Unmount before the directory goes: RemoveAll must never walk
		// into a bound host directory.
		undo.Push(func() { _ = unmountAll(data) })
	}
	b, err := json.Marshal(v)
	if err != nil {
		return Volume{}, false, fmt.Errorf("create volume %s: %w", o.Name, err)
	}
	if err := writeAtomic(filepath.Join(dir, "meta.json"), b); err != nil {
		return Volume{}, false, fmt.Errorf("create volume %s: %w", o.Name, err)
	}
	undo.Disarm()
	v.Mountpoint = data
	return v, true, nil
}

// Get finds a volume by name (ErrNotFound: "no such volume").
func (s *Store) Get(name string) (Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.get(name)
}

func (s *Store) get(name string) (Volume, error) {
	if !validName.MatchString(name) {
		return Volume{}, fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
	}
	b, err := os.ReadFile(filepath.Join(s.dir, name, "meta.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return Volume{}, fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
	}
	if err != nil {
		return Volume{}, fmt.Errorf("get volume %s: %w", name, err)
	}
	var v Volume
	if err := json.Unmarshal(b, &v); err != nil {
		return Volume{}, fmt.Errorf("get volume %s: %w", name, err)
	}
	v.Name = name
	v.Mountpoint = filepath.Join(s.dir, name, "_data")
	return v, nil
}

// List is every volume, by name.
func (s *Store) List() ([]Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []Volume
	for _, e := range ents {
		if v, err := s.get(e.Name()); err == nil {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Remove deletes the volume and its data. The caller checks it is unused.
func (s *Store) Remove(name string) error {
	return s.RemoveIf(name, nil)
}

// RemoveIf deletes the volume and its data if check (when not nil),
// called with the store locked so no Create of the same name runs
// meanwhile, returns nil. Mounts on the volume (its options' filesystem,
// pinned subpaths) are unmounted first; if one stays, nothing is deleted:
// a bound host directory must never be emptied by a removal.
func (s *Store) RemoveIf(name string, check func(Volume) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.get(name)
	if err != nil {
		return err
	}
	if check != nil {
		if err := check(v); err != nil {
			return err
		}
	}
	dir := filepath.Join(s.dir, name)
	if err := s.unpinAll(name); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := unmountAll(v.Mountpoint); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	// Rename first so a crash half-way leaves no half-deleted volume
	// under its name.
	gone := filepath.Join(s.dir, ".removing-"+name)
	if err := os.Rename(dir, gone); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}

// Size is the disk space the volume's data uses: the sizes of its regular
// files, a file with several links counted once.
func (s *Store) Size(name string) (int64, error) {
	var n int64
	seen := map[[2]uint64]bool{}
	root := filepath.Join(s.dir, name, "_data")
	err := filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil || !info.Mode().IsRegular() {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			k := [2]uint64{st.Dev, st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		n += info.Size()
		return nil
	})
	return n, err
}

// clearLeftover removes what a create cut short by a crash left at dir (a
// directory without meta.json), unmounting first so nothing mounted
// there is emptied.
func clearLeftover(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := unmountAll(filepath.Join(dir, "_data")); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
