package image

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/snapshot"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := OpenStore(context.Background(), filepath.Join(t.TempDir(), "images.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustTag(t *testing.T, s string) string {
	t.Helper()
	n, err := ParseTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return n.String()
}

func TestStoreTagsMoveAndLookup(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	a := Record{ID: digest.FromString("config a"), RepoTags: []string{mustTag(t, "busybox")}}
	b := Record{ID: digest.FromString("config b"), RepoTags: []string{mustTag(t, "busybox"), mustTag(t, "localhost:5000/bb:1")}}
	if _, err := s.Put(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	// busybox:latest moved from a to b; a is dangling now.
	ga, _ := s.Get(ctx, a.ID)
	if !ga.Dangling() {
		t.Errorf("a still tagged: %v", ga.RepoTags)
	}
	for _, ref := range []string{"busybox", "busybox:latest", "docker.io/library/busybox:latest", "localhost:5000/bb:1", b.ID.String(), b.ID.Encoded()[:12], "sha256:" + b.ID.Encoded()[:5]} {
		t.Run(ref, func(t *testing.T) {
			r, err := s.Lookup(ctx, ref)
			if err != nil || r.ID != b.ID {
				t.Fatalf("got %v, %v", r.ID, err)
			}
		})
	}
	if _, err := s.Lookup(ctx, "nosuch"); !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "No such image: nosuch: not found" {
		t.Fatalf("unknown: %v", err)
	}
	// Tag a again, then untag.
	tg, _ := ParseTag("mine:v1")
	if _, err := s.Tag(ctx, a.ID, tg); err != nil {
		t.Fatal(err)
	}
	r, err := s.Untag(ctx, tg.String())
	if err != nil || !r.Dangling() {
		t.Fatalf("untag: %+v, %v", r, err)
	}
	if _, err := s.Lookup(ctx, "mine:v1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("untagged name still found: %v", err)
	}
	if err := s.Delete(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, "localhost:5000/bb:1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("deleted image's name still found: %v", err)
	}
	list, _ := s.List(ctx)
	if len(list) != 1 || list[0].ID != a.ID {
		t.Fatalf("list: %+v", list)
	}
}

func TestLookupAmbiguousPrefix(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	// Find two IDs sharing a first hex digit.
	var ids []digest.Digest
	for i := 0; len(ids) < 2; i++ {
		d := digest.FromString(fmt.Sprint(i))
		if d.Encoded()[0] == 'a' {
			ids = append(ids, d)
		}
	}
	for _, id := range ids {
		if _, err := s.Put(ctx, Record{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Lookup(ctx, "a"); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("got %v, want conflict", err)
	}
}

// fakeSnapshots models the parent/child rule of a snapshotter without
// mounting: there is no tree of real files to check for these tests, and
// the real drivers run their own conformance suite.
type fakeSnapshots map[string]snapshot.Info

func (f fakeSnapshots) Walk(ctx context.Context, fn func(snapshot.Info) error) error {
	for _, i := range f {
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

func (f fakeSnapshots) Remove(ctx context.Context, key string) error {
	for _, i := range f {
		if i.Parent == key {
			return fmt.Errorf("snapshot %s has children: %w", key, errdefs.ErrConflict)
		}
	}
	if _, ok := f[key]; !ok {
		return errdefs.ErrNotFound
	}
	delete(f, key)
	return nil
}

// record makes an image record for a manifest stored by makeImage, with
// its snapshots committed in snaps.
func record(t *testing.T, cs *content.Store, snaps fakeSnapshots, m ocispec.Descriptor, tag string) Record {
	t.Helper()
	r, err := Resolve(context.Background(), cs, m, ocispec.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	rec := Record{ID: r.ID(), Target: r.Target}
	if tag != "" {
		rec.RepoTags = []string{mustTag(t, tag)}
	}
	chains := identity.ChainIDs(slices.Clone(r.Config.RootFS.DiffIDs))
	for i, l := range r.Manifest.Layers {
		rec.Layers = append(rec.Layers, Layer{Blob: l, DiffID: r.Config.RootFS.DiffIDs[i], ChainID: chains[i]})
		parent := ""
		if i > 0 {
			parent = chains[i-1].String()
		}
		snaps[chains[i].String()] = snapshot.Info{Name: chains[i].String(), Parent: parent, Kind: snapshot.KindCommitted}
	}
	return rec
}

func TestCollectFreesOnlyUnshared(t *testing.T) {
	ctx := context.Background()
	cs := newContent(t)
	s := newStore(t)
	snaps := fakeSnapshots{}
	// a and b share their first layer; c's only layer is a's first too,
	// and a container sits on b's top layer.
	a := record(t, cs, snaps, makeImage(t, cs, ocispec.MediaTypeImageManifest, "amd64", "base", "a-top"), "a")
	b := record(t, cs, snaps, makeImage(t, cs, MediaTypeDockerManifest, "amd64", "base", "b-top"), "b")
	for _, r := range []Record{a, b} {
		if _, err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	snaps["container-1"] = snapshot.Info{Name: "container-1", Parent: b.Layers[1].ChainID.String(), Kind: snapshot.KindActive}
	snaps["unpack-in-progress"] = snapshot.Info{Name: "unpack-in-progress", Kind: snapshot.KindActive}

	if err := s.Delete(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	got, err := s.Collect(ctx, cs, snaps)
	if err != nil {
		t.Fatal(err)
	}
	wantBlobs := []digest.Digest{a.Target.Digest, a.ID, a.Layers[1].Blob.Digest}
	slices.Sort(wantBlobs)
	slices.Sort(got.Blobs)
	if !slices.Equal(got.Blobs, wantBlobs) {
		t.Errorf("freed blobs %v, want %v", got.Blobs, wantBlobs)
	}
	if !slices.Equal(got.Snapshots, []string{a.Layers[1].ChainID.String()}) {
		t.Errorf("freed snapshots %v", got.Snapshots)
	}
	for _, d := range b.Blobs() {
		if _, err := cs.Info(ctx, d); err != nil {
			t.Errorf("b's blob %s gone: %v", d, err)
		}
	}

	// b goes too: everything except the container's parent chain stays.
	if err := s.Delete(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Collect(ctx, cs, snaps); err != nil {
		t.Fatal(err)
	}
	var left []digest.Digest
	cs.Walk(ctx, func(i content.Info) error { left = append(left, i.Digest); return nil })
	if len(left) != 0 {
		t.Errorf("blobs left: %v", left)
	}
	for _, name := range []string{b.Layers[0].ChainID.String(), b.Layers[1].ChainID.String(), "container-1", "unpack-in-progress"} {
		if _, ok := snaps[name]; !ok {
			t.Errorf("snapshot %s removed while in use", name)
		}
	}
	delete(snaps, "container-1")
	got, _ = s.Collect(ctx, cs, snaps)
	if len(got.Snapshots) != 2 || len(snaps) != 1 {
		t.Errorf("after the container went: freed %v, left %v", got.Snapshots, snaps)
	}
}
