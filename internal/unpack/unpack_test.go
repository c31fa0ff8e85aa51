package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/snapshot/copy"
	"github.com/berth-dev/berth/internal/snapshot/overlay"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

type driver struct {
	name string
	open func(ctx context.Context, dir string) (snapshot.Snapshotter, error)
}

var drivers = []driver{
	{"overlay", func(ctx context.Context, dir string) (snapshot.Snapshotter, error) { return overlay.New(ctx, dir) }},
	{"copy", func(ctx context.Context, dir string) (snapshot.Snapshotter, error) { return copy.New(ctx, dir) }},
}

// forEachDriver runs fn as a root subtest per snapshot driver, with a
// fresh snapshotter.
func forEachDriver(t *testing.T, fn func(t *testing.T, ctx context.Context, sn snapshot.Snapshotter)) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			testutil.RequireRoot(t)
			ctx := context.Background()
			sn, err := d.open(ctx, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sn.Close() })
			fn(t, ctx, sn)
		})
	}
}

// ociLayers reads the test image's OCI layout the plain way: index.json →
// manifest → config's diffIDs and the layer blobs.
func ociLayers(t *testing.T, layout string) []Layer {
	t.Helper()
	readJSON := func(p string, v any) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	blob := func(d digest.Digest) string {
		return filepath.Join(layout, "blobs", d.Algorithm().String(), d.Encoded())
	}
	var idx ocispec.Index
	readJSON(filepath.Join(layout, "index.json"), &idx)
	var man ocispec.Manifest
	readJSON(blob(idx.Manifests[0].Digest), &man)
	var cfg ocispec.Image
	readJSON(blob(man.Config.Digest), &cfg)
	if len(cfg.RootFS.DiffIDs) != len(man.Layers) {
		t.Fatalf("%d diffIDs for %d layers", len(cfg.RootFS.DiffIDs), len(man.Layers))
	}
	var out []Layer
	for i, l := range man.Layers {
		p := blob(l.Digest)
		out = append(out, Layer{DiffID: cfg.RootFS.DiffIDs[i], Open: func(context.Context) (io.ReadCloser, error) { return os.Open(p) }})
	}
	return out
}

// listing describes a tree for comparison: path, type, permission bits,
// owner, and content or link target.
func listing(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		line := fmt.Sprintf("%s %o %d:%d", rel, st.Mode&0o7777, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			line += " dir"
		case unix.S_IFLNK:
			l, _ := os.Readlink(p)
			line += " -> " + l
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += " " + digest.FromBytes(b).Encoded()[:12]
		default:
			line += fmt.Sprintf(" type %o", st.Mode&unix.S_IFMT)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func diffLines(want, got []string) string {
	var b strings.Builder
	for _, l := range want {
		if !slices.Contains(got, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// compareMounted mounts ms and compares the tree with want (the root
// directory's own line is left out: the test image's rootfs dir is made by
// the generator, not by a layer).
func compareMounted(t *testing.T, ms []mount.Mount, want []string) {
	t.Helper()
	err := mount.WithTempMount(context.Background(), ms, func(root string) error {
		if d := diffLines(want[1:], listing(t, root)[1:]); d != "" {
			return fmt.Errorf("mounted tree differs from the expected rootfs:\n%s", d)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestUnpackTestImageMatchesRootfs(t *testing.T) {
	forEachDriver(t, func(t *testing.T, ctx context.Context, sn snapshot.Snapshotter) {
		images := testutil.Images(t)
		want := listing(t, images.Rootfs)
		layers := ociLayers(t, images.OCILayout)
		top, err := New(sn).Unpack(ctx, layers)
		if err != nil {
			t.Fatal(err)
		}
		chain := ChainIDs([]digest.Digest{layers[0].DiffID, layers[1].DiffID})
		if top != chain[1] {
			t.Fatalf("top chain ID %s, want %s", top, chain[1])
		}
		for i, c := range chain {
			info, err := sn.Stat(ctx, c.String())
			if err != nil || info.Kind != snapshot.KindCommitted {
				t.Fatalf("layer %d snapshot %s: %+v %v", i, c, info, err)
			}
			if i > 0 && info.Parent != chain[i-1].String() {
				t.Fatalf("layer %d parent %s, want %s", i, info.Parent, chain[i-1])
			}
		}
		ms, err := sn.Prepare(ctx, "container", top.String())
		if err != nil {
			t.Fatal(err)
		}
		compareMounted(t, ms, want)
		v, err := sn.View(ctx, "view", top.String())
		if err != nil {
			t.Fatal(err)
		}
		compareMounted(t, v, want)
	})
}

func TestChainIDs(t *testing.T) {
	a := digest.FromString("a")
	b := digest.FromString("b")
	got := ChainIDs([]digest.Digest{a, b})
	want := digest.FromString(a.String() + " " + b.String())
	if got[0] != a || got[1] != want {
		t.Fatalf("got %v", got)
	}
}

// layerTar builds a small layer; files maps names to bodies ("" for a dir
// when the name ends in "/").
func layerTar(t testing.TB, names ...string) ([]byte, digest.Digest) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		h := &tar.Header{Name: n, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(n)), ModTime: time.Unix(1e9, 0)}
		if strings.HasSuffix(n, "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if strings.Contains(n, ".wh.") {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), digest.FromBytes(buf.Bytes())
}

// counted is a layer whose Open calls are counted.
func counted(b []byte, d digest.Digest, n *atomic.Int32) Layer {
	return Layer{DiffID: d, Open: func(context.Context) (io.ReadCloser, error) {
		n.Add(1)
		return io.NopCloser(bytes.NewReader(b)), nil
	}}
}

func TestSharedLayersUnpackOnce(t *testing.T) {
	forEachDriver(t, func(t *testing.T, ctx context.Context, sn snapshot.Snapshotter) {
		base, baseID := layerTar(t, "etc/", "etc/base")
		a, aID := layerTar(t, "a")
		b, bID := layerTar(t, "b", "etc/.wh.base")
		var opens atomic.Int32
		u := New(sn)
		topA, err := u.Unpack(ctx, []Layer{counted(base, baseID, &opens), counted(a, aID, &opens)})
		if err != nil {
			t.Fatal(err)
		}
		if opens.Load() != 2 {
			t.Fatalf("%d opens for image A, want 2", opens.Load())
		}
		// Image B shares the base layer: only its own layer is read.
		topB, err := u.Unpack(ctx, []Layer{counted(base, baseID, &opens), counted(b, bID, &opens)})
		if err != nil {
			t.Fatal(err)
		}
		if opens.Load() != 3 {
			t.Fatalf("%d opens after image B, want 3 (base shared)", opens.Load())
		}
		// Image A again: nothing to do.
		j, err := u.Begin(ctx, []digest.Digest{baseID, aID})
		if err != nil {
			t.Fatal(err)
		}
		if m := j.Missing(); len(m) != 0 {
			t.Fatalf("missing %v for an unpacked image", m)
		}
		if got, err := j.Wait(); err != nil || got != topA {
			t.Fatalf("wait: %s %v", got, err)
		}
		n := 0
		_ = sn.Walk(ctx, func(snapshot.Info) error { n++; return nil })
		if n != 3 {
			t.Fatalf("%d snapshots, want 3 (base, a, b)", n)
		}
		v, err := sn.View(ctx, "vb", topB.String())
		if err != nil {
			t.Fatal(err)
		}
		err = mount.WithTempMount(ctx, v, func(root string) error {
			if _, err := os.Stat(filepath.Join(root, "etc/base")); !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("whiteout in image B's layer not applied: %v", err)
			}
			if _, err := os.Stat(filepath.Join(root, "b")); err != nil {
				return err
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestDiffIDMismatchRemovesSnapshot(t *testing.T) {
	forEachDriver(t, func(t *testing.T, ctx context.Context, sn snapshot.Snapshotter) {
		base, baseID := layerTar(t, "base")
		bad, _ := layerTar(t, "bad")
		claimed := digest.FromString("not this layer")
		var opens atomic.Int32
		_, err := New(sn).Unpack(ctx, []Layer{counted(base, baseID, &opens), counted(bad, claimed, &opens)})
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "diffID mismatch") {
			t.Fatalf("want a diffID mismatch, got %v", err)
		}
		t.Log(err)
		// The good base layer may or may not have been committed before
		// the failure cancelled the job; nothing else may be left.
		var names []string
		_ = sn.Walk(ctx, func(i snapshot.Info) error { names = append(names, i.Name); return nil })
		if len(names) > 1 || len(names) == 1 && names[0] != baseID.String() {
			t.Fatalf("snapshots after a failed unpack: %q, want at most the good base layer", names)
		}
	})
}

func TestStreamingOutOfOrder(t *testing.T) {
	forEachDriver(t, func(t *testing.T, ctx context.Context, sn snapshot.Snapshotter) {
		var layers []Layer
		var ids []digest.Digest
		var opens atomic.Int32
		for i := range 5 {
			b, d := layerTar(t, fmt.Sprintf("f%d", i), "shared")
			layers = append(layers, counted(b, d, &opens))
			ids = append(ids, d)
		}
		j, err := New(sn, WithParallelism(3)).Begin(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		missing := j.Missing()
		slices.Reverse(missing) // the last blob arrives first
		for _, i := range missing {
			if err := j.Add(i, layers[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := j.Add(0, layers[0]); err == nil {
			t.Fatal("adding a layer twice succeeded")
		}
		top, err := j.Wait()
		if err != nil {
			t.Fatal(err)
		}
		ms, err := sn.Prepare(ctx, "c", top.String())
		if err != nil {
			t.Fatal(err)
		}
		err = mount.WithTempMount(ctx, ms, func(root string) error {
			for i := range 5 {
				if _, err := os.Stat(filepath.Join(root, fmt.Sprintf("f%d", i))); err != nil {
					return err
				}
			}
			b, err := os.ReadFile(filepath.Join(root, "shared"))
			if err != nil || string(b) != "shared" {
				return fmt.Errorf("shared: %q %v", b, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestFailAbortsAndCleansUp(t *testing.T) {
	forEachDriver(t, func(t *testing.T, ctx context.Context, sn snapshot.Snapshotter) {
		var ids []digest.Digest
		var layers []Layer
		var opens atomic.Int32
		for i := range 3 {
			b, d := layerTar(t, fmt.Sprintf("f%d", i))
			layers = append(layers, counted(b, d, &opens))
			ids = append(ids, d)
		}
		u := New(sn)
		j, err := u.Begin(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Add(2, layers[2]); err != nil {
			t.Fatal(err)
		}
		if err := j.Add(0, layers[0]); err != nil {
			t.Fatal(err)
		}
		download := errors.New("registry closed the connection")
		j.Fail(1, download)
		if _, err := j.Wait(); !errors.Is(err, download) {
			t.Fatalf("wait: %v", err)
		}
		_ = sn.Walk(ctx, func(i snapshot.Info) error {
			if i.Kind != snapshot.KindCommitted {
				t.Errorf("working snapshot %s left behind", i.Name)
			}
			return nil
		})
		if err := u.Prune(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestBadInput(t *testing.T) {
	forEachDriver(t, func(t *testing.T, ctx context.Context, sn snapshot.Snapshotter) {
		u := New(sn)
		if _, err := u.Begin(ctx, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("no layers: %v", err)
		}
		if _, err := u.Begin(ctx, []digest.Digest{"sha256:nothex"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("bad diffID: %v", err)
		}
		truncated, d := layerTar(t, "a-file-with-a-body")
		_, err := u.Unpack(ctx, []Layer{{DiffID: d, Open: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(truncated[:520])), nil
		}}})
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("truncated layer: %v", err)
		}
		n := 0
		_ = sn.Walk(ctx, func(snapshot.Info) error { n++; return nil })
		if n != 0 {
			t.Errorf("%d snapshots left after bad input", n)
		}
	})
}

// The way back: what a container changed, as a layer, applied on the
// parent, gives the container's tree.
func TestDiffRoundTrip(t *testing.T) {
	forEachDriver(t, func(t *testing.T, ctx context.Context, sn snapshot.Snapshotter) {
		images := testutil.Images(t)
		layers := ociLayers(t, images.OCILayout)
		top, err := New(sn).Unpack(ctx, layers)
		if err != nil {
			t.Fatal(err)
		}
		ms, err := sn.Prepare(ctx, "container", top.String())
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		err = mount.WithTempMount(ctx, ms, func(root string) error {
			if err := os.WriteFile(filepath.Join(root, "etc/motd"), []byte("changed"), 0o600); err != nil {
				return err
			}
			if err := os.Remove(filepath.Join(root, "bin/ls")); err != nil {
				return err
			}
			if err := os.RemoveAll(filepath.Join(root, "opt/replaced")); err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Join(root, "opt/replaced/again"), 0o750); err != nil {
				return err
			}
			if err := os.Symlink("/etc/motd", filepath.Join(root, "motd")); err != nil {
				return err
			}
			if err := os.Link(filepath.Join(root, "etc/motd"), filepath.Join(root, "etc/motd.hard")); err != nil {
				return err
			}
			want = listing(t, root)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		d, err := Diff(ctx, sn, "container", &buf)
		if err != nil {
			t.Fatal(err)
		}
		if d != digest.FromBytes(buf.Bytes()) {
			t.Fatalf("Diff returned %s for a tar whose digest is %s", d, digest.FromBytes(buf.Bytes()))
		}
		// Apply the diff as a new layer on the image and compare.
		var opens atomic.Int32
		top2, err := New(sn).Unpack(ctx, append(layers, counted(buf.Bytes(), d, &opens)))
		if err != nil {
			t.Fatal(err)
		}
		v, err := sn.View(ctx, "v", top2.String())
		if err != nil {
			t.Fatal(err)
		}
		compareMounted(t, v, want)
	})
}

func TestDiffOfParentlessSnapshot(t *testing.T) {
	forEachDriver(t, func(t *testing.T, ctx context.Context, sn snapshot.Snapshotter) {
		ms, err := sn.Prepare(ctx, "scratch", "")
		if err != nil {
			t.Fatal(err)
		}
		err = mount.WithTempMount(ctx, ms, func(root string) error {
			return os.WriteFile(filepath.Join(root, "only"), []byte("x"), 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := Diff(ctx, sn, "scratch", &buf); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if _, err := archive.Apply(ctx, dir, &buf, archive.ApplyOptions{Whiteouts: archive.WhiteoutsDelete}); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "only")); err != nil || string(b) != "x" {
			t.Fatalf("%q %v", b, err)
		}
	})
}

// Two pulls of images sharing layers, at the same time: each layer ends up
// committed once and both succeed.
func TestConcurrentUnpacksOfSharedLayers(t *testing.T) {
	forEachDriver(t, func(t *testing.T, ctx context.Context, sn snapshot.Snapshotter) {
		var ids []digest.Digest
		var tars [][]byte
		for i := range 4 {
			b, d := layerTar(t, fmt.Sprintf("f%d", i))
			tars, ids = append(tars, b), append(ids, d)
		}
		u := New(sn)
		var opens atomic.Int32
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				var ls []Layer
				for i := range tars {
					ls = append(ls, counted(tars[i], ids[i], &opens))
				}
				_, err := u.Unpack(ctx, ls)
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		var names []string
		_ = sn.Walk(ctx, func(i snapshot.Info) error { names = append(names, i.Name); return nil })
		if len(names) != 4 {
			t.Fatalf("snapshots %q, want the 4 layers once each", names)
		}
	})
}

// An image of 128 layers: each unpacks into its own snapshot and the
// container's overlay over all of them (more than a page of mount options)
// mounts.
func TestDeepImage(t *testing.T) {
	forEachDriver(t, func(t *testing.T, ctx context.Context, sn snapshot.Snapshotter) {
		// The page limit is overlay's; the copy driver copies every parent
		// for each layer, so a shorter chain keeps its run short.
		n := 128
		if _, ok := sn.(snapshot.Stacker); !ok {
			n = 16
		}
		var layers []Layer
		var opens atomic.Int32
		for i := range n {
			b, d := layerTar(t, fmt.Sprintf("f%03d", i), "top")
			layers = append(layers, counted(b, d, &opens))
		}
		top, err := New(sn).Unpack(ctx, layers)
		if err != nil {
			t.Fatal(err)
		}
		ms, err := sn.Prepare(ctx, "container", top.String())
		if err != nil {
			t.Fatal(err)
		}
		err = mount.WithTempMount(ctx, ms, func(root string) error {
			entries, err := os.ReadDir(root)
			if err != nil {
				return err
			}
			if len(entries) != n+1 {
				return fmt.Errorf("%d entries, want %d files and top", len(entries), n)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// Layers of one image may each be plain, gzip or zstd.
func TestMixedCompression(t *testing.T) {
	forEachDriver(t, func(t *testing.T, ctx context.Context, sn snapshot.Snapshotter) {
		plain, d0 := layerTar(t, "plain")
		g, d1 := layerTar(t, "gzip")
		z, d2 := layerTar(t, "zstd")
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		_, _ = zw.Write(g)
		_ = zw.Close()
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		zs := enc.EncodeAll(z, nil)
		_ = enc.Close()
		var opens atomic.Int32
		top, err := New(sn).Unpack(ctx, []Layer{counted(plain, d0, &opens), counted(gz.Bytes(), d1, &opens), counted(zs, d2, &opens)})
		if err != nil {
			t.Fatal(err)
		}
		v, err := sn.View(ctx, "v", top.String())
		if err != nil {
			t.Fatal(err)
		}
		err = mount.WithTempMount(ctx, v, func(root string) error {
			for _, n := range []string{"plain", "gzip", "zstd"} {
				if _, err := os.Stat(filepath.Join(root, n)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// While an image unpacks, the layers it builds on are pinned: a garbage
// collection that runs meanwhile (an rmi of another image sharing the
// base) cannot remove them from under it.
func TestCollectionDuringUnpackKeepsBase(t *testing.T) {
	forEachDriver(t, func(t *testing.T, ctx context.Context, sn snapshot.Snapshotter) {
		base, baseID := layerTar(t, "base")
		top, topID := layerTar(t, "top")
		var opens atomic.Int32
		u := New(sn)
		if _, err := u.Unpack(ctx, []Layer{counted(base, baseID, &opens)}); err != nil {
			t.Fatal(err)
		}
		j, err := u.Begin(ctx, []digest.Digest{baseID, topID})
		if err != nil {
			t.Fatal(err)
		}
		// Nothing references the base image any more.
		removed, err := snapshot.RemoveUnreferenced(ctx, sn, func(string) bool { return false })
		if err != nil {
			t.Fatal(err)
		}
		if len(removed) != 0 {
			t.Fatalf("collection removed %q while an unpack builds on it", removed)
		}
		if err := j.Add(1, counted(top, topID, &opens)); err != nil {
			t.Fatal(err)
		}
		if _, err := j.Wait(); err != nil {
			t.Fatal(err)
		}
		var left []string
		_ = sn.Walk(ctx, func(i snapshot.Info) error { left = append(left, i.Name+":"+i.Kind.String()); return nil })
		if len(left) != 2 {
			t.Fatalf("after the unpack: %q, want the two layers and no pin", left)
		}
	})
}
