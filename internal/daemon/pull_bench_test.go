package daemon_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/daemon"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/internal/testutil/registry"
)

// benchRegistry serves the ~150 MB three-layer benchmark image as
// bench/big:latest from a local registry.
func benchRegistry(b *testing.B) *registry.Registry {
	b.Helper()
	root, err := testutil.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	layout, err := registry.BenchImage(filepath.Join(root, "_output"))
	if err != nil {
		b.Fatal(err)
	}
	reg := registry.Start(b, registry.Options{})
	reg.Seed(b, layout, "bench/big:latest")
	return reg
}

// BenchmarkPullUnpack is berth's `docker pull` of the benchmark image into
// an empty engine root: download, verify, unpack into snapshots, record.
// MB/s is over the image's unpacked size (what the disk receives).
func BenchmarkPullUnpack(b *testing.B) {
	testutil.RequireRoot(b)
	reg := benchRegistry(b)
	ctx := context.Background()
	var size int64
	for b.Loop() {
		b.StopTimer()
		e, err := daemon.New(ctx, daemon.Config{Root: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		// As in BenchmarkImageLoad: write back ext4's dirty inode tables
		// first, or the inodes other tests deleted in the last minutes
		// are scanned past on every create (recently_deleted() in
		// fs/ext4/ialloc.c, a filesystem without a journal) and the
		// run measures that. The roots stay until the end for the same
		// reason.
		unix.Sync()
		b.StartTimer()
		res, err := e.Pull(ctx, reg.Ref("bench/big:latest"), daemon.PullOptions{})
		if err != nil {
			b.Fatal(err)
		}
		size = res.Image.Size
		b.StopTimer()
		e.Close()
		b.StartTimer()
	}
	b.SetBytes(size)
}

// BenchmarkPushEngine is berth's `docker push` of the benchmark image to a
// new repository of a second registry each time, so every blob is uploaded
// (within the first registry, blobs would be mounted from where they were
// pulled). MB/s is over the compressed blobs sent.
func BenchmarkPushEngine(b *testing.B) {
	testutil.RequireRoot(b)
	reg := benchRegistry(b)
	dstReg := registry.Start(b, registry.Options{})
	ctx := context.Background()
	e, err := daemon.New(ctx, daemon.Config{Root: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	res, err := e.Pull(ctx, reg.Ref("bench/big:latest"), daemon.PullOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var blobs int64
	for _, l := range res.Image.Layers {
		blobs += l.Blob.Size
	}
	i := 0
	for b.Loop() {
		i++
		dst := dstReg.Ref(fmt.Sprintf("bench/push%d:latest", i))
		b.StopTimer()
		if err := tagForTest(ctx, e, res.Image.ID.String(), dst); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := e.Push(ctx, dst, daemon.PushOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(blobs)
}
