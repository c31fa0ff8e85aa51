package build

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	digest "github.com/opencontainers/go-digest"
)

// cache is the layer cache: a step's key (its parent image, its
// instruction after expansion and, for COPY/ADD, the hash of its sources)
// → the image it made. Entries whose image is gone are ignored (and
// dropped when next written): the image store is the truth, the index
// only finds the child. It survives a daemon restart.
//
// mu guards entries and the file.
type cache struct {
	path    string
	mu      sync.Mutex
	entries map[string]cacheEntry
}

// cacheEntry is the image a step made and the image it was made on.
type cacheEntry struct {
	ID     digest.Digest `json:"id"`
	Parent digest.Digest `json:"parent,omitempty"`
}

func openCache(path string) (*cache, error) {
	c := &cache{path: path, entries: map[string]cacheEntry{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open build cache: %w", err)
	}
	if err := json.Unmarshal(b, &c.entries); err != nil {
		// A damaged index only costs rebuilds: start empty.
		c.entries = map[string]cacheEntry{}
	}
	return c, nil
}

// stepKey is the cache key of a step on parent. createdBy is the history
// line the step writes (the instruction after expansion, with the build
// arguments RUN sees); extra is what else decides the result (the hash of
// COPY's sources, RUN's network).
func stepKey(parent digest.Digest, createdBy, extra string) string {
	h := sha256.New()
	for _, s := range []string{string(parent), createdBy, extra} {
		fmt.Fprintf(h, "%d:%s\n", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (c *cache) get(key string) (digest.Digest, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	return e.ID, ok
}

// put records key → id. keep says to leave an entry already there: a
// --no-cache build makes a second child for the same step, and later
// builds keep finding the chain they found before (docker finds one of
// the children too).
func (c *cache) put(key string, id, parent digest.Digest, keep bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok && keep {
		return nil
	}
	c.entries[key] = cacheEntry{ID: id, Parent: parent}
	return c.save()
}

func (c *cache) forget(key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
	return c.save()
}

// drain empties the index and returns the images it named.
func (c *cache) drain() ([]digest.Digest, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[digest.Digest]bool{}
	var ids []digest.Digest
	for _, e := range c.entries {
		if !seen[e.ID] {
			seen[e.ID] = true
			ids = append(ids, e.ID)
		}
	}
	c.entries = map[string]cacheEntry{}
	return ids, c.save()
}

// parents are the images some cached step was made on.
func (c *cache) parents() map[digest.Digest]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[digest.Digest]bool{}
	for _, e := range c.entries {
		if e.Parent != "" {
			out[e.Parent] = true
		}
	}
	return out
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// save writes the index atomically: temp file, fsync, rename.
func (c *cache) save() error {
	b, err := json.Marshal(c.entries)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".cache-*")
	if err != nil {
		return fmt.Errorf("save build cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save build cache: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save build cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save build cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), c.path); err != nil {
		return fmt.Errorf("save build cache: %w", err)
	}
	return nil
}
