package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Driver is the only driver: docker's local one.
const Driver = "local"

// validName is docker's rule for volume names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Volume is one volume.
type Volume struct {
	Name       string            `json:"name"`
	Mountpoint string            `json:"-"`
	CreatedAt  time.Time         `json:"createdAt"`
	Labels     map[string]string `json:"labels,omitempty"`
	Options    map[string]string `json:"options,omitempty"`
	Anonymous  bool              `json:"anonymous,omitempty"`
}

// Store holds the volumes under one directory. It is safe for concurrent
// use; mu serialises creation and removal.
type Store struct {
	dir string
	mu  sync.Mutex
}

// Open makes the store at dir (<root>/volumes).
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o701); err != nil {
		return nil, fmt.Errorf("open volume store: %w", err)
	}
	return &Store{dir: dir}, nil
}

// CreateOptions describe a new volume; an empty Name makes an anonymous one.
type CreateOptions struct {
	Name    string
	Labels  map[string]string
	Options map[string]string
}

// Create makes the volume, or returns the existing one of that name
// (docker's create is idempotent for the local driver).
func (s *Store) Create(ctx context.Context, o CreateOptions) (Volume, bool, error) {
	anon := o.Name == ""
	if anon {
		var b [32]byte
		rand.Read(b[:])
		o.Name = hex.EncodeToString(b[:])
	}
	if !validName.MatchString(o.Name) {
		return Volume{}, false, fmt.Errorf("create volume %q: includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed: %w", o.Name, errdefs.ErrInvalidArgument)
	}
	for k := range o.Options {
		// The local driver's mount options (type, device, o) would mount a
		// filesystem into the volume; not supported yet, and silently
		// ignoring them would give the user a plain directory instead.
		return Volume{}, false, fmt.Errorf("create volume %s: driver option %q: %w", o.Name, k, errdefs.ErrNotImplemented)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, err := s.get(o.Name); err == nil {
		return v, false, nil
	}
	v := Volume{Name: o.Name, CreatedAt: time.Now().UTC().Truncate(time.Second), Labels: o.Labels, Anonymous: anon}
	dir := filepath.Join(s.dir, o.Name)
	if err := os.MkdirAll(filepath.Join(dir, "_data"), 0o755); err != nil {
		return Volume{}, false, fmt.Errorf("create volume %s: %w", o.Name, err)
	}
	b, _ := json.Marshal(v)
	if err := writeAtomic(filepath.Join(dir, "meta.json"), b); err != nil {
		os.RemoveAll(dir)
		return Volume{}, false, fmt.Errorf("create volume %s: %w", o.Name, err)
	}
	v.Mountpoint = filepath.Join(dir, "_data")
	return v, true, nil
}

// Get finds a volume by name.
func (s *Store) Get(name string) (Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.get(name)
}

func (s *Store) get(name string) (Volume, error) {
	if !validName.MatchString(name) {
		return Volume{}, fmt.Errorf("get volume %s: no such volume: %w", name, errdefs.ErrNotFound)
	}
	b, err := os.ReadFile(filepath.Join(s.dir, name, "meta.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return Volume{}, fmt.Errorf("get volume %s: no such volume: %w", name, errdefs.ErrNotFound)
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.get(name); err != nil {
		return err
	}
	// Rename first so a crash half-way leaves no half-deleted volume
	// under its name.
	dir := filepath.Join(s.dir, name)
	gone := filepath.Join(s.dir, ".removing-"+name)
	if err := os.Rename(dir, gone); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

// Size is the disk space the volume's data uses.
func (s *Store) Size(name string) (int64, error) {
	var n int64
	err := filepath.WalkDir(filepath.Join(s.dir, name, "_data"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, err := d.Info(); err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
		return nil
	})
	return n, err
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
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
