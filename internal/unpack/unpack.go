// Package unpack turns an image's layers into committed snapshots, one per
// layer, named by the layer's chain ID (OCI image spec, config.md "Layer
// ChainID"), so a layer shared by many images is unpacked once and stored
// once. Chain IDs already present are skipped. Each layer's diffID is
// checked while it is extracted; a mismatch removes the half-made snapshot.
//
// With a snapshot.Stacker (overlay) every layer extracts into its own
// directory, without its parents, so all layers of an image extract at
// once as they arrive and are then committed in chain order. Other
// snapshotters (copy) apply each layer on a copy of its parent, in order.
//
// It knows about layers (diffIDs and tar streams) and snapshots, not about
// registries, manifests or containers. It owns no files of its own: it
// creates active snapshots named "unpack-…" while it works.
package unpack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/snapshot"
)

// Layer is one layer of an image.
type Layer struct {
	// DiffID is the sha256 of the uncompressed tar, from the image config.
	DiffID digest.Digest
	// Open returns the layer's bytes: plain tar, gzip or zstd (told apart
	// by magic number). It is called at most once, only when the layer
	// is not unpacked yet.
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// ChainIDs returns the chain ID of each layer: the first layer's is its
// diffID, each next one sha256(parent chain ID + " " + diffID).
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}

// keyPrefix names the active snapshots an Unpacker works in.
const keyPrefix = "unpack-"

// Unpacker unpacks layers into one snapshotter. Safe for concurrent use;
// concurrent unpacks of images sharing layers each end with the shared
// snapshots committed once.
type Unpacker struct {
	sn       snapshot.Snapshotter
	parallel int

	mu       sync.Mutex          // guards inflight
	inflight map[string]struct{} // working keys of running jobs
}

// Option configures an Unpacker.
type Option func(*Unpacker)

// WithParallelism caps how many layers extract at once with a Stacker
// (default: the number of CPUs, at least 2).
func WithParallelism(n int) Option {
	return func(u *Unpacker) {
		if n > 0 {
			u.parallel = n
		}
	}
}

// New returns an Unpacker writing into sn.
func New(sn snapshot.Snapshotter, opts ...Option) *Unpacker {
	u := &Unpacker{sn: sn, parallel: max(2, runtime.NumCPU()), inflight: map[string]struct{}{}}
	for _, o := range opts {
		o(u)
	}
	return u
}

// Unpack unpacks layers (bottom first) and returns the top layer's chain
// ID, the parent to Prepare a container's snapshot on.
func (u *Unpacker) Unpack(ctx context.Context, layers []Layer) (digest.Digest, error) {
	diffIDs := make([]digest.Digest, len(layers))
	for i, l := range layers {
		diffIDs[i] = l.DiffID
	}
	j, err := u.Begin(ctx, diffIDs)
	if err != nil {
		return "", err
	}
	for _, i := range j.Missing() {
		if err := j.Add(i, layers[i]); err != nil {
			j.Fail(i, err)
		}
	}
	return j.Wait()
}

// Prune removes working snapshots and pins left by a process that stopped
// in the middle of an unpack. Working snapshots of this Unpacker's running jobs
// are kept.
func (u *Unpacker) Prune(ctx context.Context) error {
	var stale []string
	err := u.sn.Walk(ctx, func(i snapshot.Info) error {
		if i.Kind != snapshot.KindCommitted && strings.HasPrefix(i.Name, keyPrefix) {
			stale = append(stale, i.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("prune unpack leftovers: %w", err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	var errs []error
	for _, k := range stale {
		if _, busy := u.inflight[k]; busy {
			continue
		}
		if err := u.sn.Remove(ctx, k); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("prune unpack leftovers: %w", err)
	}
	return nil
}

// Job is one image's unpack, fed layer by layer: Begin, then Add for each
// index of Missing as its blob becomes available (in any order, from any
// goroutine), then Wait. Fail aborts it, for instance when a download
// fails.
type Job struct {
	u       *Unpacker
	diffIDs []digest.Digest
	chain   []digest.Digest
	first   int // layers below first are already unpacked
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu     sync.Mutex // guards layers, added and err
	layers []Layer
	added  []chan struct{} // closed by Add
	err    error

	committed []chan struct{} // closed when layer i's snapshot exists

	// pin is a view on the highest layer committed so far (pinned), so
	// that a garbage collection running meanwhile sees a child on it and
	// keeps it and its parents: with overlay the working snapshots have no
	// parent yet. It only moves up.
	pinMu  sync.Mutex // guards pin and pinned
	pin    string
	pinned int
}

// Begin starts an unpack of the layers with these diffIDs (bottom first)
// and returns at once. Layers whose chain ID is already a snapshot are not
// needed; Missing lists the others.
func (u *Unpacker) Begin(ctx context.Context, diffIDs []digest.Digest) (*Job, error) {
	if len(diffIDs) == 0 {
		return nil, fmt.Errorf("unpack: no layers: %w", errdefs.ErrInvalidArgument)
	}
	for i, d := range diffIDs {
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("unpack: layer %d diffID %q: %w: %w", i, d, err, errdefs.ErrInvalidArgument)
		}
	}
	chain := ChainIDs(diffIDs)
	// The highest existing chain ID means every layer below it exists
	// too: a snapshot is only ever committed on top of its parent.
	first := 0
	for i := len(chain) - 1; i >= 0; i-- {
		info, err := u.sn.Stat(ctx, chain[i].String())
		if err == nil && info.Kind == snapshot.KindCommitted {
			first = i + 1
			break
		}
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return nil, fmt.Errorf("unpack: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	j := &Job{
		u: u, diffIDs: diffIDs, chain: chain, first: first, cancel: cancel,
		layers: make([]Layer, len(diffIDs)), added: make([]chan struct{}, len(diffIDs)),
		committed: make([]chan struct{}, len(diffIDs)),
	}
	for i := range diffIDs {
		j.added[i] = make(chan struct{})
		j.committed[i] = make(chan struct{})
		if i < first {
			close(j.committed[i])
		}
	}
	log.From(ctx).Debug("unpack", "layers", len(diffIDs), "present", first, "chainID", chain[len(chain)-1])
	if first == len(diffIDs) {
		return j, nil
	}
	if first > 0 {
		j.repin(ctx, first-1)
	}
	if st, ok := u.sn.(snapshot.Stacker); ok {
		sem := make(chan struct{}, u.parallel)
		for i := first; i < len(diffIDs); i++ {
			j.wg.Go(func() { j.fail(i, j.stacked(ctx, st, sem, i)) })
		}
	} else {
		j.wg.Go(func() {
			for i := first; i < len(diffIDs); i++ {
				if err := j.inOrder(ctx, i); err != nil {
					j.fail(i, err)
					return
				}
			}
		})
	}
	return j, nil
}

// Missing lists the indexes of the layers that must be added.
func (j *Job) Missing() []int {
	var out []int
	for i := j.first; i < len(j.diffIDs); i++ {
		out = append(out, i)
	}
	return out
}

// Add hands over layer i. Layers not in Missing are ignored (their Open is
// never called).
func (j *Job) Add(i int, l Layer) error {
	if i < 0 || i >= len(j.diffIDs) {
		return fmt.Errorf("unpack: add layer %d of %d: %w", i, len(j.diffIDs), errdefs.ErrInvalidArgument)
	}
	if l.DiffID != "" && l.DiffID != j.diffIDs[i] {
		return fmt.Errorf("unpack: add layer %d: diffID %s, begun with %s: %w", i, l.DiffID, j.diffIDs[i], errdefs.ErrInvalidArgument)
	}
	if l.Open == nil {
		return fmt.Errorf("unpack: add layer %d: no Open: %w", i, errdefs.ErrInvalidArgument)
	}
	if i < j.first {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.layers[i].Open != nil {
		return fmt.Errorf("unpack: layer %d added twice: %w", i, errdefs.ErrInvalidArgument)
	}
	j.layers[i] = l
	close(j.added[i])
	return nil
}

// Fail aborts the job because layer i cannot be had; Wait returns err.
func (j *Job) Fail(i int, err error) { j.fail(i, err) }

func (j *Job) fail(i int, err error) {
	if err == nil {
		return
	}
	j.mu.Lock()
	if j.err == nil {
		j.err = fmt.Errorf("unpack layer %d (%s): %w", i, j.diffIDs[i], err)
	}
	j.mu.Unlock()
	j.cancel()
}

// Wait waits for the job and returns the top layer's chain ID. On error,
// the layers committed so far stay (they are complete and verified) and
// every working snapshot is removed.
func (j *Job) Wait() (digest.Digest, error) {
	j.wg.Wait()
	j.cancel()
	j.mu.Lock()
	defer j.mu.Unlock()
	j.pinMu.Lock()
	if j.pin != "" {
		if err := j.u.sn.Remove(context.Background(), j.pin); err != nil {
			log.From(context.Background()).Warn("remove unpack pin", log.KeySnapshot, j.pin, log.KeyErr, err)
		}
		j.doneKey(j.pin)
		j.pin = ""
	}
	j.pinMu.Unlock()
	if j.err != nil {
		return "", j.err
	}
	return j.chain[len(j.chain)-1], nil
}

// repin moves the pin to layer i, just committed. Best effort: without it
// only a concurrent garbage collection could hurt, by failing this job.
func (j *Job) repin(ctx context.Context, i int) {
	ctx = context.WithoutCancel(ctx)
	j.pinMu.Lock()
	defer j.pinMu.Unlock()
	if j.pin != "" && j.pinned >= i {
		return
	}
	key, err := j.workKey(i)
	if err == nil {
		_, err = j.u.sn.View(ctx, key, j.chain[i].String())
	}
	if err != nil {
		log.From(ctx).Warn("pin unpacked layer", log.KeySnapshot, j.chain[i], log.KeyErr, err)
		return
	}
	if old := j.pin; old != "" {
		if err := j.u.sn.Remove(ctx, old); err != nil {
			log.From(ctx).Warn("remove unpack pin", log.KeySnapshot, old, log.KeyErr, err)
		}
		j.doneKey(old)
	}
	j.pin, j.pinned = key, i
}

// waitAdded waits for layer i to be added and returns it.
func (j *Job) waitAdded(ctx context.Context, i int) (Layer, error) {
	select {
	case <-j.added[i]:
	case <-ctx.Done():
		return Layer{}, ctx.Err()
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.layers[i], nil
}

func (j *Job) parent(i int) string {
	if i == 0 {
		return ""
	}
	return j.chain[i-1].String()
}

func (j *Job) workKey(i int) (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	k := fmt.Sprintf("%s%s-%d-%s", keyPrefix, hex.EncodeToString(b), i, j.chain[i].Encoded()[:12])
	j.u.mu.Lock()
	j.u.inflight[k] = struct{}{}
	j.u.mu.Unlock()
	return k, nil
}

func (j *Job) doneKey(k string) {
	j.u.mu.Lock()
	delete(j.u.inflight, k)
	j.u.mu.Unlock()
}

// exists reports whether layer i's snapshot was committed meanwhile, by
// another job unpacking an image that shares it.
func (j *Job) exists(ctx context.Context, i int) bool {
	_, err := j.u.sn.Stat(ctx, j.chain[i].String())
	return err == nil
}

// stacked extracts layer i into a parentless working snapshot while other
// layers do the same, then commits it on its parent once that exists.
func (j *Job) stacked(ctx context.Context, st snapshot.Stacker, sem chan struct{}, i int) error {
	defer func() {
		if j.exists(context.WithoutCancel(ctx), i) {
			j.repin(ctx, i)
			close(j.committed[i])
		}
	}()
	l, err := j.waitAdded(ctx, i)
	if err != nil {
		return err
	}
	if j.exists(ctx, i) {
		return nil
	}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	key, err := j.workKey(i)
	if err != nil {
		<-sem
		return err
	}
	defer j.doneKey(key)
	ms, err := j.u.sn.Prepare(ctx, key, "")
	if err != nil {
		<-sem
		return err
	}
	committed := false
	defer func() {
		if !committed {
			// Work that must be undone even though ctx is cancelled.
			if err := j.u.sn.Remove(context.WithoutCancel(ctx), key); err != nil {
				log.From(ctx).Warn("remove working snapshot", log.KeySnapshot, key, log.KeyErr, err)
			}
		}
	}()
	// A base layer's whiteouts hide nothing: applied as deletions into
	// the empty directory they vanish. As devices they would linger in
	// readdir of directories no other layer has (overlay lists a
	// non-merged directory as it is on disk).
	wh := archive.WhiteoutsOverlay
	if i == 0 {
		wh = archive.WhiteoutsDelete
	}
	err = j.extract(ctx, ms, i, l, wh)
	<-sem
	if err != nil {
		return err
	}
	if i > j.first {
		select {
		case <-j.committed[i-1]:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err = st.CommitOnto(ctx, j.chain[i].String(), key, j.parent(i))
	if errors.Is(err, errdefs.ErrAlreadyExists) && j.exists(ctx, i) {
		return nil // another job committed the same layer first
	}
	if err != nil {
		return err
	}
	committed = true
	return nil
}

// inOrder applies layer i on a copy of its parent, which exists.
func (j *Job) inOrder(ctx context.Context, i int) error {
	l, err := j.waitAdded(ctx, i)
	if err != nil {
		return err
	}
	if j.exists(ctx, i) {
		j.repin(ctx, i)
		close(j.committed[i])
		return nil
	}
	key, err := j.workKey(i)
	if err != nil {
		return err
	}
	defer j.doneKey(key)
	ms, err := j.u.sn.Prepare(ctx, key, j.parent(i))
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			if err := j.u.sn.Remove(context.WithoutCancel(ctx), key); err != nil {
				log.From(ctx).Warn("remove working snapshot", log.KeySnapshot, key, log.KeyErr, err)
			}
		}
	}()
	if err := j.extract(ctx, ms, i, l, archive.WhiteoutsDelete); err != nil {
		return err
	}
	err = j.u.sn.Commit(ctx, j.chain[i].String(), key)
	if errors.Is(err, errdefs.ErrAlreadyExists) && j.exists(ctx, i) {
		j.repin(ctx, i)
		close(j.committed[i])
		return nil
	}
	if err != nil {
		return err
	}
	committed = true
	j.repin(ctx, i)
	close(j.committed[i])
	return nil
}

// extract writes layer i into the working snapshot's mounts. A single
// writable bind mount is written through its source directory; anything
// else is mounted on a temporary directory first.
func (j *Job) extract(ctx context.Context, ms []mount.Mount, i int, l Layer, wh archive.Whiteouts) error {
	rc, err := l.Open(ctx)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer rc.Close()
	opts := archive.ApplyOptions{Whiteouts: wh, DiffID: j.diffIDs[i]}
	if len(ms) == 1 && ms[0].Type == "bind" && !ms[0].ReadOnly() {
		_, err = archive.Apply(ctx, ms[0].Source, rc, opts)
		return err
	}
	return mount.WithTempMount(ctx, ms, func(root string) error {
		_, err := archive.Apply(ctx, root, rc, opts)
		return err
	})
}
