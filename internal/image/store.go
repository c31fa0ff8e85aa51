package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/errdefs"
)

var (
	bucketImages = []byte("images")
	bucketNames  = []byte("names")
)

// Record is what the store keeps of one image.
type Record struct {
	// ID is the config digest, docker's image ID.
	ID digest.Digest `json:"id"`
	// Target is the manifest the image was made from (never an index).
	Target ocispec.Descriptor `json:"target"`
	// Index is the index or manifest list the image was resolved through,
	// when it came from one (kept so its blob is not collected and a push
	// or save can give it back); nil otherwise.
	Index *ocispec.Descriptor `json:"index,omitempty"`
	// RepoTags are normalised name:tag references (docker.io/library/x:1).
	RepoTags []string `json:"repoTags,omitempty"`
	// RepoDigests are name@sha256:… of the manifest as a registry serves it.
	RepoDigests []string `json:"repoDigests,omitempty"`
	// Created is when the store first recorded the image.
	Created time.Time `json:"created"`
	// LastTagTime is when a tag was last added.
	LastTagTime time.Time `json:"lastTagTime,omitzero"`
	// Size is the unpacked size of all layers in bytes (docker's Size).
	Size int64 `json:"size"`
	// Layers are the layer blobs and diff IDs, in order, so GC and
	// removal need not parse manifests.
	Layers []Layer `json:"layers,omitempty"`
}

// Layer is one layer of an image: its blob and what it unpacks to.
type Layer struct {
	Blob    ocispec.Descriptor `json:"blob"`
	DiffID  digest.Digest      `json:"diffID"`
	ChainID digest.Digest      `json:"chainID"`
	// Size is the unpacked (tar) size in bytes; 0 when not known.
	Size int64 `json:"size,omitempty"`
}

// ChainIDs are the snapshot keys of the image's layers, bottom first.
func (r Record) ChainIDs() []digest.Digest {
	out := make([]digest.Digest, len(r.Layers))
	for i, l := range r.Layers {
		out[i] = l.ChainID
	}
	return out
}

// Blobs are every blob the image references: index, manifest, config, layers.
func (r Record) Blobs() []digest.Digest {
	out := []digest.Digest{r.Target.Digest, r.ID}
	if r.Index != nil {
		out = append(out, r.Index.Digest)
	}
	for _, l := range r.Layers {
		out = append(out, l.Blob.Digest)
	}
	return out
}

// Dangling reports whether the image has no tag (docker's <none>:<none>).
func (r Record) Dangling() bool { return len(r.RepoTags) == 0 }

// Store is the image metadata database. It is safe for concurrent use
// within a process; bbolt's file lock keeps a second process waiting
// until the first closes it.
type Store struct {
	db *bolt.DB
	// gcMu: Collect holds it exclusively; writers of soon-referenced blobs
	// hold it shared (Hold).
	gcMu sync.RWMutex
}

// OpenStore opens (creating if needed) the database at path.
func OpenStore(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open image store %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 30 * time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open image store %s: another berth process has held it for 30s: %w", path, errdefs.ErrUnavailable)
	}
	if err != nil {
		return nil, fmt.Errorf("open image store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketImages, bucketNames} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open image store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func getRecord(tx *bolt.Tx, id digest.Digest) (Record, error) {
	v := tx.Bucket(bucketImages).Get([]byte(id))
	if v == nil {
		return Record{}, fmt.Errorf("image %s: %w", id, errdefs.ErrNotFound)
	}
	var r Record
	if err := json.Unmarshal(v, &r); err != nil {
		return Record{}, fmt.Errorf("image %s: corrupt record: %v", id, err)
	}
	return r, nil
}

func putRecord(tx *bolt.Tx, r Record) error {
	sort.Strings(r.RepoTags)
	sort.Strings(r.RepoDigests)
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketImages).Put([]byte(r.ID), v)
}

// moveName points name at id, taking it from the image that had it.
func moveName(tx *bolt.Tx, name string, id digest.Digest) error {
	names := tx.Bucket(bucketNames)
	if old := names.Get([]byte(name)); old != nil && digest.Digest(old) != id {
		prev, err := getRecord(tx, digest.Digest(old))
		if err == nil {
			prev.RepoTags = slices.DeleteFunc(prev.RepoTags, func(s string) bool { return s == name })
			prev.RepoDigests = slices.DeleteFunc(prev.RepoDigests, func(s string) bool { return s == name })
			if err := putRecord(tx, prev); err != nil {
				return err
			}
		}
	}
	return names.Put([]byte(name), []byte(id))
}

// Put records r, or merges its names into the image already stored under
// r.ID (keeping the first Created). A tag held by another image moves to
// this one, leaving that image dangling if it was its last, as docker does.
func (s *Store) Put(ctx context.Context, r Record) (Record, error) {
	if err := r.ID.Validate(); err != nil {
		return Record{}, fmt.Errorf("put image %q: %v: %w", r.ID, err, errdefs.ErrInvalidArgument)
	}
	var out Record
	err := s.db.Update(func(tx *bolt.Tx) error {
		cur, err := getRecord(tx, r.ID)
		switch {
		case errors.Is(err, errdefs.ErrNotFound):
			cur = r
			cur.RepoTags, cur.RepoDigests = nil, nil
			if cur.Created.IsZero() {
				cur.Created = time.Now().UTC()
			}
		case err != nil:
			return err
		default:
			// A newer target (e.g. pulled by a repo digest) replaces the old.
			cur.Target, cur.Index, cur.Layers = r.Target, r.Index, r.Layers
			if r.Size != 0 {
				cur.Size = r.Size
			}
		}
		for _, t := range r.RepoTags {
			if !slices.Contains(cur.RepoTags, t) {
				cur.RepoTags = append(cur.RepoTags, t)
				cur.LastTagTime = time.Now().UTC()
			}
			if err := moveName(tx, t, r.ID); err != nil {
				return err
			}
		}
		for _, d := range r.RepoDigests {
			if !slices.Contains(cur.RepoDigests, d) {
				cur.RepoDigests = append(cur.RepoDigests, d)
			}
			if err := moveName(tx, d, r.ID); err != nil {
				return err
			}
		}
		out = cur
		return putRecord(tx, cur)
	})
	if err != nil {
		return Record{}, fmt.Errorf("put image %s: %w", r.ID, err)
	}
	return out, nil
}

// Get returns the image with ID id.
func (s *Store) Get(ctx context.Context, id digest.Digest) (Record, error) {
	var r Record
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		r, err = getRecord(tx, id)
		return err
	})
	return r, err
}

// List returns every image, newest first.
func (s *Store) List(ctx context.Context) ([]Record, error) {
	var out []Record
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("image %s: corrupt record: %v", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Lookup finds the image s names, as docker does: a full or short image ID
// (with or without "sha256:"), a name[:tag], or a name@digest (a repo
// digest it was pulled by, or any name of the image with that manifest).
// A name wins over an ID prefix; a prefix that fits several images is
// errdefs.ErrConflict. Unknown is errdefs.ErrNotFound with docker's
// words: "No such image: x".
func (s *Store) Lookup(ctx context.Context, ref string) (Record, error) {
	var out Record
	err := s.db.View(func(tx *bolt.Tx) error {
		r, err := lookup(tx, ref)
		out = r
		return err
	})
	return out, err
}

func lookup(tx *bolt.Tx, ref string) (Record, error) {
	notFound := fmt.Errorf("No such image: %s: %w", ref, errdefs.ErrNotFound) //nolint:staticcheck // docker's words, shown to users
	if d, err := digest.Parse(ref); err == nil {
		return getRecordOr(tx, d, notFound)
	}
	if n, err := ParseReference(ref); err == nil {
		if id := tx.Bucket(bucketNames).Get([]byte(n.String())); id != nil {
			return getRecord(tx, digest.Digest(id))
		}
		// name@digest of a manifest we have under another name.
		if c, ok := n.(reference.Canonical); ok {
			var found Record
			err := tx.Bucket(bucketImages).ForEach(func(_, v []byte) error {
				var r Record
				if json.Unmarshal(v, &r) == nil && r.Target.Digest == c.Digest() {
					found = r
				}
				return nil
			})
			if err != nil {
				return Record{}, err
			}
			if found.ID != "" {
				return found, nil
			}
		}
	}
	prefix, ok := looksLikeID(ref)
	if !ok {
		return Record{}, notFound
	}
	var matches []digest.Digest
	c := tx.Bucket(bucketImages).Cursor()
	p := []byte("sha256:" + prefix)
	for k, _ := c.Seek(p); k != nil && strings.HasPrefix(string(k), string(p)); k, _ = c.Next() {
		matches = append(matches, digest.Digest(k))
	}
	switch len(matches) {
	case 0:
		return Record{}, notFound
	case 1:
		return getRecord(tx, matches[0])
	}
	return Record{}, fmt.Errorf("image ID prefix %s is ambiguous (%d images): %w", prefix, len(matches), errdefs.ErrConflict)
}

func getRecordOr(tx *bolt.Tx, id digest.Digest, notFound error) (Record, error) {
	r, err := getRecord(tx, id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return Record{}, notFound
	}
	return r, err
}

// Tag adds the tag ref (normalised) to the image id, moving it from any
// other image.
func (s *Store) Tag(ctx context.Context, id digest.Digest, ref reference.NamedTagged) (Record, error) {
	var out Record
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := getRecord(tx, id)
		if err != nil {
			return err
		}
		name := ref.String()
		if err := moveName(tx, name, id); err != nil {
			return err
		}
		if !slices.Contains(r.RepoTags, name) {
			r.RepoTags = append(r.RepoTags, name)
		}
		r.LastTagTime = time.Now().UTC()
		out = r
		return putRecord(tx, r)
	})
	if err != nil {
		return Record{}, fmt.Errorf("tag %s %s: %w", id, ref, err)
	}
	return out, nil
}

// Untag removes the name (a tag or repo digest, normalised) from its image
// and returns the image as it is now.
func (s *Store) Untag(ctx context.Context, name string) (Record, error) {
	var out Record
	err := s.db.Update(func(tx *bolt.Tx) error {
		names := tx.Bucket(bucketNames)
		id := names.Get([]byte(name))
		if id == nil {
			return fmt.Errorf("No such image: %s: %w", Familiar(name), errdefs.ErrNotFound) //nolint:staticcheck // docker's words
		}
		r, err := getRecord(tx, digest.Digest(id))
		if err != nil {
			return err
		}
		r.RepoTags = slices.DeleteFunc(r.RepoTags, func(s string) bool { return s == name })
		r.RepoDigests = slices.DeleteFunc(r.RepoDigests, func(s string) bool { return s == name })
		if err := names.Delete([]byte(name)); err != nil {
			return err
		}
		out = r
		return putRecord(tx, r)
	})
	if err != nil {
		return Record{}, fmt.Errorf("untag %s: %w", name, err)
	}
	return out, nil
}

// Delete removes the image record and all its names. Its blobs and
// snapshots stay until Collect.
func (s *Store) Delete(ctx context.Context, id digest.Digest) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := getRecord(tx, id)
		if err != nil {
			return err
		}
		names := tx.Bucket(bucketNames)
		for _, n := range append(slices.Clone(r.RepoTags), r.RepoDigests...) {
			if err := names.Delete([]byte(n)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketImages).Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("delete image %s: %w", id, err)
	}
	return nil
}
