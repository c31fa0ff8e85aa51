package distribution

import (
	"io"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// Status is what happens to one blob, in docker's words so a terminal
// shows what users know from docker pull and docker push.
type Status string

const (
	StatusResolved    Status = "Pulling fs layer"
	StatusWaiting     Status = "Waiting"
	StatusDownloading Status = "Downloading"
	StatusRetrying    Status = "Retrying"
	StatusVerifying   Status = "Verifying Checksum"
	StatusDownloaded  Status = "Download complete"
	StatusExists      Status = "Already exists"
	StatusPreparing   Status = "Preparing"
	StatusPushing     Status = "Pushing"
	StatusPushed      Status = "Pushed"
	StatusLayerExists Status = "Layer already exists"
	StatusMounted     Status = "Mounted from"
	// Set by the unpacker, shown through the same display.
	StatusExtracting   Status = "Extracting"
	StatusPullComplete Status = "Pull complete"
)

// Progress is one update about one blob. Updates for a blob arrive in
// order; updates for different blobs interleave.
type Progress struct {
	// ID is the short form docker shows: the first 12 hex digits.
	ID     string
	Digest digest.Digest
	// Config is true for the image config (docker does not show it).
	Config bool
	Status Status
	// Detail is extra text: the source repository of a mount, the error
	// that caused a retry.
	Detail         string
	Current, Total int64
	Time           time.Time
}

// ShortID is the 12-hex-digit form of d, as docker prints layer IDs.
func ShortID(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}

// reporter sends updates to fn, serialised, and rate-limits byte counts.
type reporter struct {
	mu sync.Mutex
	fn func(Progress)
}

func (r *reporter) send(p Progress) {
	if r == nil || r.fn == nil {
		return
	}
	p.ID = ShortID(p.Digest)
	p.Time = time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fn(p)
}

// counter counts bytes through a reader and reports them at most every
// 100ms.
type counter struct {
	r      io.Reader
	rep    *reporter
	base   Progress
	offset int64 // bytes already had before this reader (a resumed transfer)
	n      int64
	last   time.Time
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if now := time.Now(); now.Sub(c.last) >= 100*time.Millisecond {
		c.last = now
		u := c.base
		u.Current = c.offset + c.n
		c.rep.send(u)
	}
	return n, err
}
