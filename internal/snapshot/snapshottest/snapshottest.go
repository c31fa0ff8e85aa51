// Package snapshottest is the conformance suite every snapshotter passes:
// Run(t, factory) exercises prepare/commit chains, read-only views,
// refused removals, whiteouts seen through the mounted result, Walk, sizes,
// persistence across reopen and recovery from a crash mid-Prepare. It
// mounts for real, so it needs root, and unmounts everything it mounts.
package snapshottest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/snapshot/meta"
	"github.com/berth-dev/berth/internal/testutil"
)

// Factory opens a snapshotter keeping its state in dir. Called again with
// the same dir it must reopen the same snapshots.
type Factory func(ctx context.Context, dir string) (snapshot.Snapshotter, error)

// Run runs the suite against the snapshotters factory makes.
func Run(t *testing.T, factory Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, ctx context.Context, sn snapshot.Snapshotter, dir string)
	}{
		{"PrepareCommitChain", testChain},
		{"ViewIsReadOnly", testView},
		{"RemoveRefusedWithChildren", testRemoveChildren},
		{"WhiteoutsAcrossLayers", testWhiteouts},
		{"LayersFromTar", testLayersFromTar},
		{"Walk", testWalk},
		{"Sizes", testSizes},
		{"RemoveFreesDisk", testRemoveFrees},
		{"Errors", testErrors},
		{"MountsOfExisting", testMounts},
		{"RemoveUnreferenced", testRemoveUnreferenced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.RequireRoot(t)
			ctx := context.Background()
			dir := t.TempDir()
			sn, err := factory(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sn.Close() })
			tt.fn(t, ctx, sn, dir)
		})
	}
	t.Run("ReopenKeepsSnapshots", func(t *testing.T) {
		testutil.RequireRoot(t)
		testReopen(t, factory)
	})
	t.Run("CrashMidPrepareLeavesStoreThatOpens", func(t *testing.T) {
		testutil.RequireRoot(t)
		testCrash(t, factory)
	})
}

// with mounts ms on a temporary directory for fn, and unmounts.
func with(t *testing.T, ms []mount.Mount, fn func(root string)) {
	t.Helper()
	err := mount.WithTempMount(context.Background(), ms, func(root string) error {
		fn(root)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, root, rel, body string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tree lists the files under root as "path=content" and dirs as "path/".
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case rel == ".":
		case fi.IsDir():
			out = append(out, rel+"/")
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out = append(out, rel+"="+string(b))
		default:
			out = append(out, rel+" "+fi.Mode().Type().String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func wantTree(t *testing.T, ms []mount.Mount, want ...string) {
	t.Helper()
	with(t, ms, func(root string) {
		if got := tree(t, root); !slices.Equal(got, want) {
			t.Fatalf("tree:\n got  %q\n want %q", got, want)
		}
	})
}

// layer prepares key on parent, lets fn change the mounted tree, and
// commits it as name.
func layer(t *testing.T, ctx context.Context, sn snapshot.Snapshotter, name, parent string, fn func(root string)) {
	t.Helper()
	key := name + "-active"
	ms, err := sn.Prepare(ctx, key, parent)
	if err != nil {
		t.Fatal(err)
	}
	with(t, ms, fn)
	if err := sn.Commit(ctx, name, key); err != nil {
		t.Fatal(err)
	}
}

func testChain(t *testing.T, ctx context.Context, sn snapshot.Snapshotter, _ string) {
	layer(t, ctx, sn, "a", "", func(root string) { write(t, root, "etc/a", "1"); write(t, root, "shared", "a") })
	layer(t, ctx, sn, "b", "a", func(root string) { write(t, root, "etc/b", "2"); write(t, root, "shared", "b") })
	layer(t, ctx, sn, "c", "b", func(root string) { write(t, root, "c", "3") })
	ms, err := sn.Prepare(ctx, "container", "c")
	if err != nil {
		t.Fatal(err)
	}
	wantTree(t, ms, "c=3", "etc/", "etc/a=1", "etc/b=2", "shared=b")
	with(t, ms, func(root string) { write(t, root, "etc/a", "changed") })
	// The change stays in the container's snapshot; its parent is untouched.
	v, err := sn.View(ctx, "view-a", "a")
	if err != nil {
		t.Fatal(err)
	}
	wantTree(t, v, "etc/", "etc/a=1", "shared=a")
	info, err := sn.Stat(ctx, "c")
	if err != nil || info.Kind != snapshot.KindCommitted || info.Parent != "b" || info.Name != "c" {
		t.Fatalf("stat c: %+v %v", info, err)
	}
	if _, err := sn.Stat(ctx, "c-active"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("committed key still exists: %v", err)
	}
	info, err = sn.Stat(ctx, "container")
	if err != nil || info.Kind != snapshot.KindActive || info.Parent != "c" {
		t.Fatalf("stat container: %+v %v", info, err)
	}
	for _, k := range []string{"view-a", "container", "c", "b", "a"} {
		if err := sn.Remove(ctx, k); err != nil {
			t.Fatalf("remove %s: %v", k, err)
		}
	}
}

func testView(t *testing.T, ctx context.Context, sn snapshot.Snapshotter, _ string) {
	layer(t, ctx, sn, "a", "", func(root string) { write(t, root, "f", "a") })
	layer(t, ctx, sn, "b", "a", func(root string) { write(t, root, "g", "b") })
	for _, parent := range []string{"", "a", "b"} {
		ms, err := sn.View(ctx, "view-"+parent, parent)
		if err != nil {
			t.Fatal(err)
		}
		with(t, ms, func(root string) {
			if err := os.WriteFile(filepath.Join(root, "new"), nil, 0o644); err == nil {
				t.Errorf("view of %q is writable", parent)
			}
		})
		info, err := sn.Stat(ctx, "view-"+parent)
		if err != nil || info.Kind != snapshot.KindView {
			t.Fatalf("stat view: %+v %v", info, err)
		}
		if err := sn.Commit(ctx, "x", "view-"+parent); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("commit of a view: want ErrInvalidArgument, got %v", err)
		}
	}
	v, _ := sn.Mounts(ctx, "view-b")
	wantTree(t, v, "f=a", "g=b")
}

func testRemoveChildren(t *testing.T, ctx context.Context, sn snapshot.Snapshotter, _ string) {
	layer(t, ctx, sn, "a", "", func(root string) { write(t, root, "f", "a") })
	if _, err := sn.Prepare(ctx, "child", "a"); err != nil {
		t.Fatal(err)
	}
	if err := sn.Remove(ctx, "a"); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("remove parent with a child: want ErrConflict, got %v", err)
	}
	if err := sn.Remove(ctx, "child"); err != nil {
		t.Fatal(err)
	}
	if err := sn.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := sn.Remove(ctx, "a"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("remove twice: want ErrNotFound, got %v", err)
	}
}

func testWhiteouts(t *testing.T, ctx context.Context, sn snapshot.Snapshotter, _ string) {
	layer(t, ctx, sn, "a", "", func(root string) {
		write(t, root, "etc/old", "old")
		write(t, root, "etc/keep", "keep")
		write(t, root, "opt/d/old", "old")
		write(t, root, "opt/d/sub/deep", "deep")
	})
	layer(t, ctx, sn, "b", "a", func(root string) {
		if err := os.Remove(filepath.Join(root, "etc/old")); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(root, "opt/d")); err != nil {
			t.Fatal(err)
		}
		write(t, root, "opt/d/new", "new")
	})
	layer(t, ctx, sn, "c", "b", func(root string) { write(t, root, "etc/old", "back") })
	v, err := sn.View(ctx, "vb", "b")
	if err != nil {
		t.Fatal(err)
	}
	wantTree(t, v, "etc/", "etc/keep=keep", "opt/", "opt/d/", "opt/d/new=new")
	v, err = sn.View(ctx, "vc", "c")
	if err != nil {
		t.Fatal(err)
	}
	wantTree(t, v, "etc/", "etc/keep=keep", "etc/old=back", "opt/", "opt/d/", "opt/d/new=new")
}

// ApplyLayer applies a layer tar as snapshot name on parent, the way
// package unpack does: a Stacker gets the layer in its own directory with
// overlay whiteouts; others get it applied on a mounted copy of the parent
// with whiteouts as deletions.
func ApplyLayer(ctx context.Context, sn snapshot.Snapshotter, name, parent string, layer []byte) error {
	key := "apply-" + name
	if st, ok := sn.(snapshot.Stacker); ok {
		ms, err := sn.Prepare(ctx, key, "")
		if err != nil {
			return err
		}
		wh := archive.WhiteoutsOverlay
		if parent == "" {
			wh = archive.WhiteoutsDelete // a base layer's whiteouts hide nothing
		}
		if _, err := archive.Apply(ctx, ms[0].Source, bytes.NewReader(layer), archive.ApplyOptions{Whiteouts: wh}); err != nil {
			return errors.Join(err, sn.Remove(ctx, key))
		}
		return st.CommitOnto(ctx, name, key, parent)
	}
	ms, err := sn.Prepare(ctx, key, parent)
	if err != nil {
		return err
	}
	err = mount.WithTempMount(ctx, ms, func(root string) error {
		_, err := archive.Apply(ctx, root, bytes.NewReader(layer), archive.ApplyOptions{Whiteouts: archive.WhiteoutsDelete})
		return err
	})
	if err != nil {
		return errors.Join(err, sn.Remove(ctx, key))
	}
	return sn.Commit(ctx, name, key)
}

func testLayersFromTar(t *testing.T, ctx context.Context, sn snapshot.Snapshotter, _ string) {
	lower := tarOf(t, []ent{
		{"etc/", ""}, {"etc/old", "old"}, {"etc/keep", "keep"}, {"opt/", ""}, {"opt/d/", ""}, {"opt/d/old", "old"},
		{"opt/d/sub/", ""}, {"opt/d/sub/deep", "deep"},
	})
	upper := tarOf(t, []ent{
		{"etc/", ""}, {"etc/.wh.old", ""}, {"opt/", ""}, {"opt/d/", ""}, {"opt/d/.wh..wh..opq", ""}, {"opt/d/new", "new"},
	})
	if err := ApplyLayer(ctx, sn, "lower", "", lower); err != nil {
		t.Fatal(err)
	}
	if err := ApplyLayer(ctx, sn, "upper", "lower", upper); err != nil {
		t.Fatal(err)
	}
	ms, err := sn.Prepare(ctx, "container", "upper")
	if err != nil {
		t.Fatal(err)
	}
	wantTree(t, ms, "etc/", "etc/keep=keep", "opt/", "opt/d/", "opt/d/new=new")

	// A whiteout in a base layer hides nothing, and is no file either,
	// also in a view of that one layer.
	odd := tarOf(t, []ent{{"etc/", ""}, {"etc/.wh.ghost", ""}, {"etc/real", "r"}})
	if err := ApplyLayer(ctx, sn, "odd", "", odd); err != nil {
		t.Fatal(err)
	}
	v, err := sn.View(ctx, "view-odd", "odd")
	if err != nil {
		t.Fatal(err)
	}
	wantTree(t, v, "etc/", "etc/real=r")
}

func testWalk(t *testing.T, ctx context.Context, sn snapshot.Snapshotter, _ string) {
	layer(t, ctx, sn, "a", "", func(string) {})
	if _, err := sn.Prepare(ctx, "act", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.View(ctx, "vw", "a"); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := sn.Walk(ctx, func(i snapshot.Info) error {
		got = append(got, fmt.Sprintf("%s:%s:%s", i.Name, i.Parent, i.Kind))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	want := []string{"a::committed", "act:a:active", "vw:a:view"}
	if !slices.Equal(got, want) {
		t.Fatalf("walk: got %q, want %q", got, want)
	}
	stop := errors.New("stop")
	n := 0
	if err := sn.Walk(ctx, func(snapshot.Info) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("walk did not stop at the first error: %v after %d", err, n)
	}
}

func testSizes(t *testing.T, ctx context.Context, sn snapshot.Snapshotter, _ string) {
	sz, ok := sn.(snapshot.Sizer)
	if !ok {
		t.Skip("not a Sizer")
	}
	layer(t, ctx, sn, "big", "", func(root string) { write(t, root, "blob", strings.Repeat("x", 1<<20)) })
	layer(t, ctx, sn, "small", "big", func(root string) { write(t, root, "tiny", "x") })
	big, err := sz.Size(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if big < 1<<20 {
		t.Fatalf("size of a layer with a 1 MiB file: %d", big)
	}
	if _, err := sz.Size(ctx, "nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("size of unknown: %v", err)
	}
}

func testRemoveFrees(t *testing.T, ctx context.Context, sn snapshot.Snapshotter, dir string) {
	before, err := meta.DiskUsage(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	layer(t, ctx, sn, "big", "", func(root string) { write(t, root, "blob", strings.Repeat("x", 4<<20)) })
	ms, err := sn.Prepare(ctx, "on-big", "big")
	if err != nil {
		t.Fatal(err)
	}
	with(t, ms, func(root string) { write(t, root, "more", strings.Repeat("y", 1<<20)) })
	for _, k := range []string{"on-big", "big"} {
		if err := sn.Remove(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	after, err := meta.DiskUsage(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if after > before+64<<10 {
		t.Fatalf("disk use %d before, %d after removing everything", before, after)
	}
}

func testErrors(t *testing.T, ctx context.Context, sn snapshot.Snapshotter, _ string) {
	layer(t, ctx, sn, "a", "", func(string) {})
	if _, err := sn.Prepare(ctx, "act", "a"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"prepare existing key", func() error { _, err := sn.Prepare(ctx, "act", "a"); return err }(), errdefs.ErrAlreadyExists},
		{"prepare on committed name", func() error { _, err := sn.Prepare(ctx, "a", ""); return err }(), errdefs.ErrAlreadyExists},
		{"prepare unknown parent", func() error { _, err := sn.Prepare(ctx, "x", "nope"); return err }(), errdefs.ErrNotFound},
		{"prepare on active parent", func() error { _, err := sn.Prepare(ctx, "y", "act"); return err }(), errdefs.ErrInvalidArgument},
		{"view unknown parent", func() error { _, err := sn.View(ctx, "z", "nope"); return err }(), errdefs.ErrNotFound},
		{"commit committed", sn.Commit(ctx, "b", "a"), errdefs.ErrInvalidArgument},
		{"commit onto taken name", sn.Commit(ctx, "a", "act"), errdefs.ErrAlreadyExists},
		{"commit unknown", sn.Commit(ctx, "q", "nope"), errdefs.ErrNotFound},
		{"stat unknown", func() error { _, err := sn.Stat(ctx, "nope"); return err }(), errdefs.ErrNotFound},
		{"mounts unknown", func() error { _, err := sn.Mounts(ctx, "nope"); return err }(), errdefs.ErrNotFound},
		{"mounts of committed", func() error { _, err := sn.Mounts(ctx, "a"); return err }(), errdefs.ErrInvalidArgument},
		{"empty key", func() error { _, err := sn.Prepare(ctx, "", ""); return err }(), errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.want) {
				t.Fatalf("want %v, got %v", tt.want, tt.err)
			}
		})
	}
	// Failed calls left nothing behind.
	n := 0
	_ = sn.Walk(ctx, func(snapshot.Info) error { n++; return nil })
	if n != 2 {
		t.Fatalf("%d snapshots after failed calls, want 2", n)
	}
}

func testMounts(t *testing.T, ctx context.Context, sn snapshot.Snapshotter, _ string) {
	layer(t, ctx, sn, "a", "", func(root string) { write(t, root, "f", "a") })
	ms, err := sn.Prepare(ctx, "act", "a")
	if err != nil {
		t.Fatal(err)
	}
	again, err := sn.Mounts(ctx, "act")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ms) != fmt.Sprint(again) {
		t.Fatalf("Mounts %v differs from Prepare's %v", again, ms)
	}
}

func testReopen(t *testing.T, factory Factory) {
	ctx := context.Background()
	dir := t.TempDir()
	sn, err := factory(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	layer(t, ctx, sn, "a", "", func(root string) { write(t, root, "f", "a") })
	if _, err := sn.Prepare(ctx, "act", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := factory(ctx, dir); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("a second open of the same store: want ErrUnavailable, got %v", err)
	}
	if err := sn.Close(); err != nil {
		t.Fatal(err)
	}
	sn, err = factory(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	ms, err := sn.Mounts(ctx, "act")
	if err != nil {
		t.Fatal(err)
	}
	wantTree(t, ms, "f=a")
	// New ids do not collide with the old ones.
	layer(t, ctx, sn, "b", "a", func(root string) { write(t, root, "g", "b") })
	v, err := sn.View(ctx, "v", "b")
	if err != nil {
		t.Fatal(err)
	}
	wantTree(t, v, "f=a", "g=b")
}

// testCrash leaves behind what a process killed inside Prepare, Commit or
// Remove would (a snapshot directory with no record, a temporary record
// never renamed) and checks the store opens, cleans them and works.
func testCrash(t *testing.T, factory Factory) {
	ctx := context.Background()
	dir := t.TempDir()
	sn, err := factory(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	layer(t, ctx, sn, "a", "", func(root string) { write(t, root, "f", "a") })
	if err := sn.Close(); err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(dir, "s", "4242")
	write(t, orphan, "fs/half-written", "x")
	write(t, dir, "meta/.tmp-123456", `{"id":4242,"na`)
	sn, err = factory(ctx, dir)
	if err != nil {
		t.Fatalf("store does not open after a crash: %v", err)
	}
	defer sn.Close()
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("orphan snapshot directory left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "meta/.tmp-123456")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary record left: %v", err)
	}
	ms, err := sn.Prepare(ctx, "after", "a")
	if err != nil {
		t.Fatal(err)
	}
	wantTree(t, ms, "f=a")
}

func testRemoveUnreferenced(t *testing.T, ctx context.Context, sn snapshot.Snapshotter, _ string) {
	// Two images sharing a base: img1 = base+a, img2 = base+b+c; a
	// container runs on d, whose image is gone.
	layer(t, ctx, sn, "base", "", func(string) {})
	layer(t, ctx, sn, "a", "base", func(string) {})
	layer(t, ctx, sn, "b", "base", func(string) {})
	layer(t, ctx, sn, "c", "b", func(string) {})
	layer(t, ctx, sn, "d", "", func(string) {})
	if _, err := sn.Prepare(ctx, "container", "d"); err != nil {
		t.Fatal(err)
	}
	// img2 is removed: c and b go; base stays for a; d stays for the container.
	keep := map[string]bool{"a": true}
	removed, err := snapshot.RemoveUnreferenced(ctx, sn, func(n string) bool { return keep[n] })
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(removed)
	if !slices.Equal(removed, []string{"b", "c"}) {
		t.Fatalf("removed %q, want b and c", removed)
	}
	var left []string
	_ = sn.Walk(ctx, func(i snapshot.Info) error { left = append(left, i.Name); return nil })
	sort.Strings(left)
	if !slices.Equal(left, []string{"a", "base", "container", "d"}) {
		t.Fatalf("left %q", left)
	}
}
