package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/snapshot"
)

// benchLayer is a generated gzip layer and the size of its tar.
type benchLayer struct {
	gz      []byte
	diffID  digest.Digest
	tarSize int64
}

// genLayer writes nSmall files of smallSize bytes in directories of 100,
// and nLarge files of largeSize, with content that compresses about 2:1
// like binaries do.
func genLayer(b *testing.B, seed uint64, nSmall, smallSize, nLarge, largeSize int) benchLayer {
	b.Helper()
	rng := rand.New(rand.NewChaCha8([32]byte{byte(seed)}))
	body := func(n int) []byte {
		p := make([]byte, n)
		for i := 0; i < n; i += 2 {
			p[i] = byte(rng.Uint32())
		}
		return p
	}
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	mt := time.Unix(1.7e9, 0)
	add := func(h *tar.Header, data []byte) {
		h.ModTime = mt
		if err := tw.WriteHeader(h); err != nil {
			b.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < nSmall; i++ {
		if i%100 == 0 {
			add(&tar.Header{Name: fmt.Sprintf("l%d/d%d/", seed, i/100), Typeflag: tar.TypeDir, Mode: 0o755}, nil)
		}
		d := body(smallSize)
		add(&tar.Header{Name: fmt.Sprintf("l%d/d%d/f%d", seed, i/100, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(d))}, d)
	}
	for i := 0; i < nLarge; i++ {
		d := body(largeSize)
		add(&tar.Header{Name: fmt.Sprintf("l%d-large%d", seed, i), Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(d))}, d)
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	return benchLayer{gz: gz.Bytes(), diffID: digest.FromBytes(raw.Bytes()), tarSize: int64(raw.Len())}
}

// BenchmarkUnpack reports unpack throughput (MB/s of uncompressed tar,
// gzip decompression, diffID check and commit included) per driver for a
// layer of many small files, one of a few large ones, and a three-layer
// image of both kinds, which overlay extracts in parallel.
func BenchmarkUnpack(b *testing.B) {
	if testingRootless() {
		b.Skip("needs root: chown and device nodes while extracting")
	}
	small := genLayer(b, 1, 10000, 1024, 0, 0)
	large := genLayer(b, 2, 0, 0, 4, 16<<20)
	mixed := genLayer(b, 3, 3000, 4096, 2, 8<<20)
	cases := []struct {
		name   string
		layers []benchLayer
	}{
		{"small-files", []benchLayer{small}},
		{"large-files", []benchLayer{large}},
		{"three-layers", []benchLayer{small, large, mixed}},
	}
	for _, d := range drivers {
		for _, c := range cases {
			b.Run(d.name+"/"+c.name, func(b *testing.B) {
				ctx := context.Background()
				var total int64
				var ls []Layer
				for _, l := range c.layers {
					total += l.tarSize
					ls = append(ls, Layer{DiffID: l.diffID, Open: func(context.Context) (io.ReadCloser, error) {
						return io.NopCloser(bytes.NewReader(l.gz)), nil
					}})
				}
				b.SetBytes(total)
				sn, err := d.open(ctx, b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				defer sn.Close()
				u := New(sn)
				b.ResetTimer()
				for range b.N {
					top, err := u.Unpack(ctx, ls)
					if err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					removeChain(b, ctx, sn, top.String())
					b.StartTimer()
				}
			})
		}
	}
}

func removeChain(b *testing.B, ctx context.Context, sn snapshot.Snapshotter, name string) {
	for name != "" {
		info, err := sn.Stat(ctx, name)
		if err != nil {
			b.Fatal(err)
		}
		if err := sn.Remove(ctx, name); err != nil {
			b.Fatal(err)
		}
		name = info.Parent
	}
}

func testingRootless() bool { return os.Geteuid() != 0 }
