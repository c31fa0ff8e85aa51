package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
)

// configFile is the record's file in the container's directory.
const configFile = "config.v2.json"

// Store holds the containers of one engine, indexed by ID and name. It is
// safe for concurrent use: mu guards byID and byName.
type Store struct {
	dir    string
	mu     sync.RWMutex
	byID   map[string]*Container
	byName map[string]string // name → ID
}

// Open reads every container record under dir (creating dir if needed).
// A directory without a readable record (a create cut short by a crash)
// is reported in the log and skipped, and returned in Orphans for the
// caller to clean up.
func Open(ctx context.Context, dir string) (*Store, []string, error) {
	if err := os.MkdirAll(dir, 0o710); err != nil {
		return nil, nil, fmt.Errorf("open container store: %w", err)
	}
	s := &Store{dir: dir, byID: map[string]*Container{}, byName: map[string]string{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("open container store: %w", err)
	}
	var orphans []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), configFile))
		var r Record
		if err == nil {
			err = json.Unmarshal(b, &r)
		}
		if err == nil && r.ID != e.Name() {
			err = fmt.Errorf("record names container %q", r.ID)
		}
		if err != nil {
			log.From(ctx).Warn("container store: unreadable record", log.KeyContainer, e.Name(), log.KeyErr, err)
			orphans = append(orphans, e.Name())
			continue
		}
		if other, taken := s.byName[r.Name]; taken {
			log.From(ctx).Warn("container store: two containers with one name; renaming the later", log.KeyContainer, r.ID, "other", other, "name", r.Name)
			r.Name = r.Name + "_" + r.ID[:6]
		}
		s.byID[r.ID] = newContainer(s, r)
		s.byName[r.Name] = r.ID
	}
	return s, orphans, nil
}

// Dir is the container's own directory.
func (s *Store) Dir(id string) string { return filepath.Join(s.dir, id) }

// Add registers a new record under its name and saves it. The name must
// be free: ErrConflict with docker's words otherwise.
func (s *Store) Add(r Record) (*Container, error) {
	if err := CheckName(r.Name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if id, taken := s.byName[r.Name]; taken {
		s.mu.Unlock()
		return nil, errNameInUse(r.Name, id)
	}
	if _, taken := s.byID[r.ID]; taken {
		s.mu.Unlock()
		return nil, fmt.Errorf("container %s: %w", r.ID, errdefs.ErrAlreadyExists)
	}
	c := newContainer(s, r)
	s.byID[r.ID] = c
	s.byName[r.Name] = r.ID
	s.mu.Unlock()
	if err := os.MkdirAll(s.Dir(r.ID), 0o710); err != nil {
		s.forget(c)
		return nil, fmt.Errorf("add container %s: %w", r.ID, err)
	}
	c.Lock()
	err := c.Save()
	c.Unlock()
	if err != nil {
		s.forget(c)
		return nil, err
	}
	return c, nil
}

// FreeName says whether name is free now (a later Add may still lose a
// race for it).
func (s *Store) FreeName(name string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, taken := s.byName[name]
	return !taken
}

func errNameInUse(name, id string) error {
	return fmt.Errorf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name: %w", name, id, errdefs.ErrConflict) //nolint:staticcheck // docker's words
}

func (s *Store) forget(c *Container) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID[c.rec.ID] == c {
		delete(s.byID, c.rec.ID)
	}
	if s.byName[c.rec.Name] == c.rec.ID {
		delete(s.byName, c.rec.Name)
	}
}

// ErrNoSuchContainer is docker's not-found message for ref.
func ErrNoSuchContainer(ref string) error {
	return fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound) //nolint:staticcheck // docker's words
}

// Get finds a container by full ID, name (with or without the leading
// slash) or unique ID prefix, in docker's order.
func (s *Store) Get(ref string) (*Container, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if ref == "" {
		return nil, ErrNoSuchContainer(ref)
	}
	if c, ok := s.byID[ref]; ok {
		return c, nil
	}
	if id, ok := s.byName[strings.TrimPrefix(ref, "/")]; ok {
		return s.byID[id], nil
	}
	var found *Container
	for id, c := range s.byID {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, fmt.Errorf("multiple IDs found with provided prefix: %s: %w", ref, errdefs.ErrInvalidArgument)
			}
			found = c
		}
	}
	if found == nil {
		return nil, ErrNoSuchContainer(ref)
	}
	return found, nil
}

// List is every container, newest first. It takes no container's lock,
// so a caller may hold one.
func (s *Store) List() []*Container {
	s.mu.RLock()
	out := make([]*Container, 0, len(s.byID))
	for _, c := range s.byID {
		out = append(out, c)
	}
	s.mu.RUnlock()
	// No container lock is taken: List may be called while holding one.
	sort.Slice(out, func(i, j int) bool {
		if out[i].created != out[j].created {
			return out[i].created > out[j].created
		}
		return out[i].rec.ID < out[j].rec.ID
	})
	return out
}

// Rename gives c a new name. The caller holds c's lock and saves.
func (s *Store) Rename(c *Container, name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := c.rec.Name
	if name == old {
		return fmt.Errorf("Renaming a container with the same name as its current name: %w", errdefs.ErrInvalidArgument) //nolint:staticcheck // docker's words
	}
	if id, taken := s.byName[name]; taken {
		return errNameInUse(name, id)
	}
	delete(s.byName, old)
	s.byName[name] = c.rec.ID
	c.rec.Name = name
	return nil
}

// Delete forgets c and removes its directory (everything in it). Waiters
// for its removal are woken. The caller holds c's lock.
func (s *Store) Delete(c *Container) error {
	if err := os.RemoveAll(s.Dir(c.rec.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove container %s: %w", c.rec.ID, err)
	}
	s.forget(c)
	c.removed = true
	c.notify()
	return nil
}

// save writes r atomically: a temp file, fsync, rename. The directory is
// not fsynced: after a power cut the older record (or none, for a create
// that had just happened) is a state the engine handles, and the record
// is written at every state change, on the path of `run`.
func (s *Store) save(r *Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("save container %s: %w", r.ID, err)
	}
	dir := s.Dir(r.ID)
	tmp, err := os.CreateTemp(dir, "."+configFile+".*")
	if err != nil {
		return fmt.Errorf("save container %s: %w", r.ID, err)
	}
	_, werr := tmp.Write(b)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save container %s: %w", r.ID, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, configFile)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save container %s: %w", r.ID, err)
	}
	return nil
}
