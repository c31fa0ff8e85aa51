package archive

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
)

// BenchmarkApply reports extraction throughput (MB/s of uncompressed tar)
// for each compression, on a layer of 2000 small files and one of 32 MiB.
func BenchmarkApply(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: chown while extracting")
	}
	var es []ent
	for i := range 2000 {
		if i%100 == 0 {
			es = append(es, ent{name: fmt.Sprintf("d%d/", i/100)})
		}
		es = append(es, ent{name: fmt.Sprintf("d%d/f%d", i/100, i), body: string(bytes.Repeat([]byte{byte(i)}, 2048))})
	}
	big := make([]byte, 32<<20)
	for i := range big {
		big[i] = byte(i * 7 / 3)
	}
	es = append(es, ent{name: "big", body: string(big)})
	plain := tarOf(b, es)
	for _, c := range []struct {
		name string
		data []byte
	}{{"plain", plain}, {"gzip", gzipOf(b, plain)}, {"zstd", zstdOf(b, plain)}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(plain)))
			for range b.N {
				b.StopTimer()
				dir, err := os.MkdirTemp(b.TempDir(), "apply-")
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := Apply(context.Background(), dir, bytes.NewReader(c.data), ApplyOptions{Whiteouts: WhiteoutsOverlay}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := os.RemoveAll(dir); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
