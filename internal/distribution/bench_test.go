package distribution_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/distribution/reference"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/internal/testutil/registry"
)

// benchRegistry starts an anonymous registry holding the ~150 MB
// three-layer benchmark image as bench/big:latest.
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

// BenchmarkPull is a cold pull of the benchmark image from a local
// registry into an empty content store: resolve, fetch three layers and the
// config in parallel, verify and commit. MB/s counts compressed bytes.
// (Unpacking is measured by the daemon's BenchmarkPullUnpack.)
func BenchmarkPull(b *testing.B) {
	reg := benchRegistry(b)
	c := distribution.New(distribution.Config{})
	ref := mustRefB(b, reg.Ref("bench/big:latest"))
	ctx := context.Background()
	var size int64
	for b.Loop() {
		store, err := content.Open(ctx, b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		res, err := c.Pull(ctx, ref, store, distribution.PullOptions{})
		if err != nil {
			b.Fatal(err)
		}
		size = res.Fetched
		store.Close()
	}
	b.SetBytes(size)
}

// BenchmarkPush uploads the benchmark image to a new repository each time,
// so every blob is sent (no skips, no mounts).
func BenchmarkPush(b *testing.B) {
	reg := benchRegistry(b)
	c := distribution.New(distribution.Config{})
	ctx := context.Background()
	store, err := content.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	res, err := c.Pull(ctx, mustRefB(b, reg.Ref("bench/big:latest")), store, distribution.PullOptions{})
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		dst := mustRefB(b, reg.Ref(fmt.Sprintf("bench/push%d:latest", i)))
		if _, err := c.Push(ctx, dst, res.Manifest, store, distribution.PushOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(res.Fetched)
}

func mustRefB(b *testing.B, s string) reference.Named {
	b.Helper()
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		b.Fatal(err)
	}
	return reference.TagNameOnly(n)
}
