package tarball

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// FuzzLoad feeds Load mangled archives: it must never panic, and when it
// fails it must leave no blob behind. `go test -fuzz FuzzLoad` explores;
// plain `go test` runs the seeds.
func FuzzLoad(f *testing.F) {
	imgs := testutil.Images(f)
	docker, err := os.ReadFile(imgs.DockerArchive)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(docker)
	f.Add(docker[:1024])
	f.Add([]byte{0x1f, 0x8b, 0x08, 0x00})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		cs := newContent(t)
		_, err := Load(context.Background(), cs, bytes.NewReader(in), LoadOptions{})
		if err != nil {
			if b := blobs(t, cs); len(b) != 0 {
				t.Fatalf("failed load (%v) left blobs %v", err, b)
			}
		}
	})
}
