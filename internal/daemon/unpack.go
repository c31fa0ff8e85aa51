package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/unpack"
)

// unpack makes sure every layer of rec has its committed snapshot, named
// by its chain ID (internal/unpack does the work, in parallel on overlay),
// and returns rec with the uncompressed layer sizes it learnt on the way:
// docker's image Size is their sum.
func (e *Engine) unpack(ctx context.Context, rec image.Record) (image.Record, error) {
	sizes := make([]atomic.Int64, len(rec.Layers))
	layers := make([]unpack.Layer, len(rec.Layers))
	for i, l := range rec.Layers {
		layers[i] = unpack.Layer{
			DiffID: l.DiffID,
			Open: func(ctx context.Context) (io.ReadCloser, error) {
				b, err := e.content.Open(ctx, l.Blob.Digest)
				if err != nil {
					return nil, err
				}
				if l.Size > 0 {
					return blobReader{content.NewReader(b), b}, nil
				}
				return newCountingReader(content.NewReader(b), b, &sizes[i])
			},
		}
	}
	if _, err := e.unpacker.Unpack(ctx, layers); err != nil {
		return rec, fmt.Errorf("unpack %s: %w", rec.ID, err)
	}
	var total int64
	for i := range rec.Layers {
		if n := sizes[i].Load(); n > 0 {
			rec.Layers[i].Size = n
		}
		total += rec.Layers[i].Size
	}
	rec.Size = total
	if err := e.syncLayers(ctx); err != nil {
		return rec, fmt.Errorf("unpack %s: %w", rec.ID, err)
	}
	return rec, nil
}

// syncLayers makes the unpacked layers durable before an image that uses
// them is recorded. Extraction writes its files without an fsync each (one
// per file would cost more than the extraction itself); one syncfs(2) of
// the filesystem holding the snapshots flushes them all at once. Should
// the machine crash before it, no image names the layers, and the next
// start collects their snapshots rather than reuse half-written ones.
func (e *Engine) syncLayers(ctx context.Context) error {
	start := time.Now()
	fd, err := unix.Open(e.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sync layers: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("sync layers: %w", err)
	}
	log.From(ctx).Debug("layers synced", "took", time.Since(start))
	return nil
}

type blobReader struct {
	io.Reader
	c io.Closer
}

func (r blobReader) Close() error { return r.c.Close() }

// countingReader hands unpack the layer decompressed (unpack takes plain
// tar as well) and counts the bytes, which is the layer's size.
type countingReader struct {
	r      io.Reader
	closer func() error
	n      *atomic.Int64
}

func newCountingReader(r io.Reader, c io.Closer, n *atomic.Int64) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(4)
	cr := &countingReader{r: br, closer: c.Close, n: n}
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("gzip: %w", err)
		}
		cr.r = zr
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		zr, err := zstd.NewReader(br)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("zstd: %w", err)
		}
		cr.r = zr
		cr.closer = func() error { zr.Close(); return c.Close() }
	}
	return cr, nil
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n.Add(int64(n))
	return n, err
}

func (r *countingReader) Close() error { return r.closer() }
