package content

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func desc(b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(b), Size: int64(len(b))}
}

func TestWriteOpenRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := []byte("hello, blob")
	got, err := Write(ctx, s, desc(data), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != digest.FromBytes(data) || got.Size != int64(len(data)) || got.MediaType != "application/octet-stream" {
		t.Fatalf("descriptor %+v", got)
	}
	b, err := ReadAll(ctx, s, got.Digest, 1<<20)
	if err != nil || !bytes.Equal(b, data) {
		t.Fatalf("read back %q, %v", b, err)
	}
	info, err := s.Info(ctx, got.Digest)
	if err != nil || info.Size != int64(len(data)) {
		t.Fatalf("info %+v, %v", info, err)
	}
	if _, err := s.Begin(ctx, desc(data)); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second Begin: %v, want already exists", err)
	}
	// Write treats an existing blob as done.
	if _, err := Write(ctx, s, desc(data), strings.NewReader("ignored")); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.Walk(ctx, func(Info) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("walk saw %d blobs, %v", n, err)
	}
	if err := s.Delete(ctx, got.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, got.Digest); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("open deleted: %v", err)
	}
	if err := s.Delete(ctx, got.Digest); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestCommitRejectsCorruptBlob(t *testing.T) {
	ctx := context.Background()
	good := []byte("the real bytes")
	tests := []struct {
		name  string
		want  ocispec.Descriptor
		write []byte
		msg   []string
	}{
		{"wrong digest", desc(good), []byte("the fake bytes"), []string{digest.FromBytes([]byte("the fake bytes")).String(), digest.FromBytes(good).String()}},
		{"short", desc(good), good[:5], []string{"size 5, expected 14"}},
		{"long", desc(good), append(append([]byte{}, good...), 'x'), []string{"size 15, expected 14"}},
		{"size without digest", ocispec.Descriptor{Size: 3}, good, []string{"expected 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			_, err := Write(ctx, s, tt.want, bytes.NewReader(tt.write))
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("got %v, want invalid argument", err)
			}
			for _, m := range tt.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			assertEmpty(t, s)
		})
	}
}

func assertEmpty(t *testing.T, s *Store) {
	t.Helper()
	for _, sub := range []string{"blobs/sha256", "ingest"} {
		ents, err := os.ReadDir(filepath.Join(s.Dir(), sub))
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 0 {
			t.Errorf("%s not empty: %v", sub, ents)
		}
	}
}

func TestUnknownDigestStoredUnderComputed(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := []byte("digest not known in advance")
	d, err := Write(ctx, s, ocispec.Descriptor{}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if d.Digest != digest.FromBytes(data) || d.Size != int64(len(data)) {
		t.Fatalf("got %+v", d)
	}
}

func TestAbortKeepsNothing(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := []byte("abandoned")
	w, err := s.Begin(ctx, desc(data))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Abort()
	w.Abort() // idempotent
	if _, err := w.Commit(ctx); err == nil {
		t.Fatal("commit after abort succeeded")
	}
	assertEmpty(t, s)
}

func TestHostileDigestRejected(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, d := range []digest.Digest{"sha256:../../etc/passwd", "sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e", "sha256:" + digest.Digest(strings.Repeat("G", 64))} {
		t.Run(string(d), func(t *testing.T) {
			if _, err := s.Open(ctx, d); err == nil || errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("open %s: %v", d, err)
			}
			if _, err := s.Begin(ctx, ocispec.Descriptor{Digest: d, Size: 1}); err == nil {
				t.Errorf("begin %s accepted", d)
			}
		})
	}
}

func TestConcurrentIngestsOfSameDigest(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := bytes.Repeat([]byte("concurrent "), 100000)
	want := desc(data)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	ings := make([]Ingest, 0, 16)
	// Begin all before any commits, so every one really writes.
	for range 16 {
		w, err := s.Begin(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		ings = append(ings, w)
	}
	for _, w := range ings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Abort()
			for off := 0; off < len(data); off += 4096 {
				if _, err := w.Write(data[off:min(off+4096, len(data))]); err != nil {
					errs <- err
					return
				}
			}
			_, err := w.Commit(ctx)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	got, err := ReadAll(ctx, s, want.Digest, 1<<30)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(s.Dir(), "ingest"))
	if len(ents) != 0 {
		t.Errorf("ingest leftovers: %v", ents)
	}
}

func TestOpenCleansCrashLeftovers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	// An ingest in progress when the process died.
	w, err := s.Begin(ctx, desc([]byte("half")))
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("ha"))
	s.Close()
	leftover := filepath.Join(dir, "ingest", "blob-crashed")
	if err := os.WriteFile(leftover, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The first store to open alone cleans up.
	other, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); err == nil {
		t.Fatal("leftover not cleaned")
	}
	// A store opened beside it must not clean its live ingest.
	live := []byte("live ingest")
	w2, err := other.Begin(ctx, desc(live))
	if err != nil {
		t.Fatal(err)
	}
	w2.Write(live[:4])
	third, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	third.Close()
	w2.Write(live[4:])
	if _, err := w2.Commit(ctx); err != nil {
		t.Fatalf("live ingest broken by a second Open: %v", err)
	}
	other.Close()

	s2, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Open(ctx, digest.FromBytes([]byte("half"))); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("half-written blob visible: %v", err)
	}
}
