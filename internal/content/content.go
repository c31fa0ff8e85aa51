package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
)

// Blob is an open committed blob. The caller owns it and must Close it.
// It is safe for concurrent ReadAt calls.
type Blob interface {
	io.ReaderAt
	Size() int64
	Close() error
}

// Opener opens committed blobs. A missing blob is errdefs.ErrNotFound.
type Opener interface {
	Open(ctx context.Context, d digest.Digest) (Blob, error)
}

// Ingester starts writing a blob.
//
// want.Digest, when set, is the digest the bytes must have; want.Size, when
// want.Digest is set or want.Size > 0, is the size they must have. Begin
// returns errdefs.ErrAlreadyExists when want.Digest is already stored (the
// caller can skip the write; see Write for a helper that does). With no
// want.Digest, the blob is stored under the digest of what was written.
type Ingester interface {
	Begin(ctx context.Context, want ocispec.Descriptor) (Ingest, error)
}

// Ingest is one blob being written: Write the bytes, then either Commit or
// Abort. Until Commit returns nil nothing is visible under the digest. An
// Ingest is not safe for concurrent use; Abort after Commit is a no-op, so
// `defer ing.Abort()` is the usual pattern.
type Ingest interface {
	io.Writer
	// Commit checks size and digest, fsyncs and renames the blob into
	// place, and returns its descriptor (MediaType and Annotations copied
	// from want). A mismatch is errdefs.ErrInvalidArgument naming both
	// digests (or sizes), and nothing is kept.
	Commit(ctx context.Context) (ocispec.Descriptor, error)
	// Abort discards what was written.
	Abort()
}

// Info describes a committed blob.
type Info struct {
	Digest    digest.Digest
	Size      int64
	CreatedAt time.Time
}

// Store is the blob store on disk. It is safe for concurrent use, also by
// several processes sharing the directory.
type Store struct {
	dir  string
	lock *os.File // flock LOCK_SH held while open
}

var (
	_ Opener   = (*Store)(nil)
	_ Ingester = (*Store)(nil)
)

// Open opens (creating if needed) the store in dir and removes what a crash
// left in ingest/ when no other Store has dir open.
func Open(ctx context.Context, dir string) (*Store, error) {
	for _, d := range []string{filepath.Join(dir, "blobs", "sha256"), filepath.Join(dir, "ingest")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open content store %s: %w", dir, err)
		}
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open content store %s: %w", dir, err)
	}
	s := &Store{dir: dir, lock: lock}
	// Only a Store that holds the directory alone may clean ingest/:
	// another process's ingest in progress is not a leftover.
	if unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
		s.cleanIngests(ctx)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_SH); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open content store %s: lock: %w", dir, err)
	}
	return s, nil
}

func (s *Store) cleanIngests(ctx context.Context) {
	dir := filepath.Join(s.dir, "ingest")
	ents, err := os.ReadDir(dir)
	if err != nil {
		log.From(ctx).Warn("content: list ingest leftovers", log.KeyPath, dir, log.KeyErr, err)
		return
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if err := os.RemoveAll(p); err != nil {
			log.From(ctx).Warn("content: remove ingest leftover; it may stay on disk", log.KeyPath, p, log.KeyErr, err)
			continue
		}
		log.From(ctx).Debug("content: removed ingest leftover", log.KeyPath, p)
	}
}

// Close releases the store's lock. Blobs already opened stay readable.
func (s *Store) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// Dir is the directory the store lives in.
func (s *Store) Dir() string { return s.dir }

// path returns where d lives, after checking d is a well-formed sha256
// digest: a digest comes from untrusted manifests and must never become a
// path outside blobs/.
func (s *Store) path(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("digest %q: %v: %w", d, err, errdefs.ErrInvalidArgument)
	}
	if d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("digest %s: only sha256 is supported: %w", d, errdefs.ErrNotImplemented)
	}
	return filepath.Join(s.dir, "blobs", "sha256", d.Encoded()), nil
}

type blob struct {
	*os.File
	size int64
}

func (b blob) Size() int64 { return b.size }

// Open opens the committed blob d.
func (s *Store) Open(ctx context.Context, d digest.Digest) (Blob, error) {
	p, err := s.path(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("open blob %s: %w", d, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open blob %s: %w", d, err)
	}
	return blob{File: f, size: st.Size()}, nil
}

// Info returns what is known of the committed blob d.
func (s *Store) Info(ctx context.Context, d digest.Digest) (Info, error) {
	p, err := s.path(d)
	if err != nil {
		return Info{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Info{}, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
		}
		return Info{}, fmt.Errorf("stat blob %s: %w", d, err)
	}
	return Info{Digest: d, Size: st.Size(), CreatedAt: st.ModTime()}, nil
}

// Delete removes the committed blob d. A missing blob is errdefs.ErrNotFound.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	p, err := s.path(d)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
		}
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	return nil
}

// Walk calls fn for every committed blob, in no particular order. An error
// from fn stops the walk and is returned as is.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	dir := filepath.Join(s.dir, "blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("walk blobs: %w", err)
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() != nil {
			continue // not ours
		}
		fi, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted meanwhile
			}
			return fmt.Errorf("walk blobs: %w", err)
		}
		if err := fn(Info{Digest: d, Size: fi.Size(), CreatedAt: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// Begin starts an ingest of want (see Ingester).
func (s *Store) Begin(ctx context.Context, want ocispec.Descriptor) (Ingest, error) {
	if want.Digest != "" {
		p, err := s.path(want.Digest)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(p); err == nil {
			return nil, fmt.Errorf("blob %s: %w", want.Digest, errdefs.ErrAlreadyExists)
		}
	}
	if want.Size < 0 {
		return nil, fmt.Errorf("blob %s: negative size %d: %w", want.Digest, want.Size, errdefs.ErrInvalidArgument)
	}
	f, err := os.CreateTemp(filepath.Join(s.dir, "ingest"), "blob-")
	if err != nil {
		return nil, fmt.Errorf("begin blob %s: %w", want.Digest, err)
	}
	return &ingest{s: s, want: want, f: f, h: sha256.New()}, nil
}

type ingest struct {
	s    *Store
	want ocispec.Descriptor
	f    *os.File
	h    hash.Hash
	n    int64
	done bool
}

func (w *ingest) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write blob %s: ingest already finished: %w", w.want.Digest, errdefs.ErrInvalidArgument)
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("write blob %s: %w", w.want.Digest, err)
	}
	return n, nil
}

func (w *ingest) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	os.Remove(w.f.Name())
}

func (w *ingest) Commit(ctx context.Context) (ocispec.Descriptor, error) {
	if w.done {
		return ocispec.Descriptor{}, fmt.Errorf("commit blob %s: ingest already finished: %w", w.want.Digest, errdefs.ErrInvalidArgument)
	}
	defer w.Abort() // on every failure path nothing is kept
	got := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(w.h.Sum(nil)))
	checkSize := w.want.Digest != "" || w.want.Size > 0
	if checkSize && w.n != w.want.Size {
		return ocispec.Descriptor{}, fmt.Errorf("commit blob %s: size %d, expected %d: %w", w.want.Digest, w.n, w.want.Size, errdefs.ErrInvalidArgument)
	}
	if w.want.Digest != "" && got != w.want.Digest {
		return ocispec.Descriptor{}, fmt.Errorf("commit blob: digest %s, expected %s: %w", got, w.want.Digest, errdefs.ErrInvalidArgument)
	}
	if err := w.f.Chmod(0o444); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("commit blob %s: %w", got, err)
	}
	if err := w.f.Sync(); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("commit blob %s: fsync: %w", got, err)
	}
	if err := w.f.Close(); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("commit blob %s: %w", got, err)
	}
	target, _ := w.s.path(got)
	// rename(2) is atomic: a reader sees either no blob or all of it, and a
	// concurrent ingest of the same digest replaces identical bytes.
	if err := os.Rename(w.f.Name(), target); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("commit blob %s: %w", got, err)
	}
	w.done = true
	if err := syncDir(filepath.Dir(target)); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("commit blob %s: fsync dir: %w", got, err)
	}
	d := w.want
	d.Digest, d.Size = got, w.n
	return d, nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Write stores r's bytes as want through ing, reading r to its end. A blob
// already stored is not written again and counts as success; its stored
// descriptor is returned.
func Write(ctx context.Context, ing Ingester, want ocispec.Descriptor, r io.Reader) (ocispec.Descriptor, error) {
	w, err := ing.Begin(ctx, want)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		return want, nil
	}
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer w.Abort()
	if _, err := io.Copy(w, readerCtx{ctx, r}); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("write blob %s: %w", want.Digest, err)
	}
	return w.Commit(ctx)
}

// ReadAll reads a whole blob, refusing one larger than limit bytes (a
// manifest or config is small; a hostile one must not exhaust memory).
func ReadAll(ctx context.Context, o Opener, d digest.Digest, limit int64) ([]byte, error) {
	b, err := o.Open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if b.Size() > limit {
		return nil, fmt.Errorf("blob %s: %d bytes, more than the limit of %d: %w", d, b.Size(), limit, errdefs.ErrInvalidArgument)
	}
	buf := make([]byte, b.Size())
	if _, err := b.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	return buf, nil
}

// NewReader reads b from its start.
func NewReader(b Blob) io.Reader { return io.NewSectionReader(b, 0, b.Size()) }

type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
