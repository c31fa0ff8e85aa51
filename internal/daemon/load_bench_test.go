package daemon_test

import (
	"archive/tar"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/daemon"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/internal/testutil/registry"
)

// loadBenchTar returns a docker-archive of the ~150 MB three-layer
// benchmark image (registry.BenchImage), as `docker save` would write it
// (uncompressed layers), made once and kept in _output/ for `make bench`
// to hand to `docker load` as well.
func loadBenchTar(b *testing.B) string {
	b.Helper()
	root, err := testutil.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(root, "_output", "bench-load-v1.tar")
	if _, err := os.Stat(out); err == nil {
		return out
	}
	layout, err := registry.BenchImage(filepath.Join(root, "_output"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	e, err := daemon.New(ctx, daemon.Config{Root: b.TempDir(), StorageDriver: "vfs"})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarDir(layout, pw)) }()
	res, err := e.ImageLoad(ctx, daemon.ImageLoadOptions{Input: pr})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.ImageTag(ctx, daemon.ImageTagOptions{Source: res.Images[0].ID.String(), Target: "bench/big:latest"}); err != nil {
		b.Fatal(err)
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(tmp)
	if err := e.ImageSave(ctx, daemon.ImageSaveOptions{Refs: []string{"bench/big:latest"}, Output: f}); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, out); err != nil {
		b.Fatal(err)
	}
	return out
}

func tarDir(dir string, w io.Writer) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o644, Size: fi.Size(), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// BenchmarkImageLoad is `berth load -i bench-load-v1.tar` into an empty
// root (minus process start): read and verify the archive into the
// content store, unpack every layer into its snapshot, record the image.
// MB/s is over the archive's size. The same file is what `make bench`
// gives `docker load`.
func BenchmarkImageLoad(b *testing.B) {
	testutil.RequireRoot(b)
	path := loadBenchTar(b)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	for _, driver := range []string{"overlay", "vfs"} {
		b.Run(driver, func(b *testing.B) {
			ctx := context.Background()
			b.SetBytes(fi.Size())
			for b.Loop() {
				b.StopTimer()
				root := b.TempDir()
				e, err := daemon.New(ctx, daemon.Config{Root: root, StorageDriver: driver})
				if err != nil {
					b.Fatal(err)
				}
				f, err := os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				// ext4 will not reuse an inode deleted in the last 300 s
				// while its inode table block is dirty, and scans past
				// each one on every create (recently_deleted() in
				// fs/ext4/ialloc.c): after other tests deleted thousands
				// of files, that makes loads ten times slower. Writing
				// the dirty blocks back first measures berth, not that.
				unix.Sync()
				b.StartTimer()
				if _, err := e.ImageLoad(ctx, daemon.ImageLoadOptions{Input: f}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				f.Close()
				e.Close()
				// Roots go only when the benchmark ends: deleting ~15,000
				// files between runs makes ext4's inode allocator scan
				// for recently deleted inodes (recently_deleted() in
				// fs/ext4/ialloc.c) and slows the next run tenfold.
				b.StartTimer()
			}
		})
	}
}

// BenchmarkGNUTarBaseline extracts the same archive and then its three
// layers with GNU tar, one after the other into one directory: the cost of
// the files themselves on this filesystem, without verification, content
// store or snapshots. Run beside BenchmarkImageLoad, it tells berth's
// overhead from the disk's mood (ext4 slows down after mass deletions).
func BenchmarkGNUTarBaseline(b *testing.B) {
	testutil.RequireRoot(b)
	path := loadBenchTar(b)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		archive, rootfs := filepath.Join(dir, "archive"), filepath.Join(dir, "rootfs")
		os.Mkdir(archive, 0o755)
		os.Mkdir(rootfs, 0o755)
		unix.Sync()
		b.StartTimer()
		if out, err := exec.Command("tar", "-C", archive, "-xf", path).CombinedOutput(); err != nil {
			b.Fatalf("tar: %v %s", err, out)
		}
		var m []struct{ Layers []string }
		mb, err := os.ReadFile(filepath.Join(archive, "manifest.json"))
		if err != nil || json.Unmarshal(mb, &m) != nil || len(m) != 1 {
			b.Fatalf("manifest.json: %v", err)
		}
		for _, l := range m[0].Layers {
			if out, err := exec.Command("tar", "-C", rootfs, "-xf", filepath.Join(archive, l)).CombinedOutput(); err != nil {
				b.Fatalf("tar: %v %s", err, out)
			}
		}
	}
}
