package daemon

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	containertypes "github.com/moby/moby/api/types/container"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/build"
	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/unpack"
)

// buildSnapshotPrefix names the working snapshots of builds (COPY's
// writable roots, COPY --from's views); any left at start are a crash's.
const buildSnapshotPrefix = "build-"

// attachDrain bounds the wait for a step's output after its exit.
const attachDrain = 10 * time.Second

// buildStepLabel marks a RUN step's container, so one a crash left can
// be found and removed at the next start.
const buildStepLabel = "org.berth.build.step"

// Builder serves docker build (POST /build): internal/build over this
// Engine. RUN steps are containers of the Engine, created, started,
// committed and removed like any other; COPY and WORKDIR write into a
// snapshot of their own. Its cache lives in <root>/build.
type Builder struct {
	e *Engine
	b *build.Builder
}

// NewBuilder makes the Engine's builder. Call it once, at daemon start,
// after InitContainers: it removes build snapshots a crash left.
func NewBuilder(ctx context.Context, e *Engine) (*Builder, error) {
	var stale []string
	err := e.snaps.Walk(ctx, func(i snapshot.Info) error {
		if strings.HasPrefix(i.Name, buildSnapshotPrefix) {
			stale = append(stale, i.Name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("new builder: %w", err)
	}
	for _, k := range stale {
		if err := e.snaps.Remove(ctx, k); err != nil {
			log.From(ctx).Warn("builder: remove stale snapshot", log.KeySnapshot, k, log.KeyErr, err)
		}
	}
	// Step containers of a build a crash cut short: a build's
	// containers never outlive it.
	if c, err := e.ctrs(); err == nil && c != nil {
		left, err := e.ContainerList(ctx, ContainerListOptions{All: true, Filters: Filters{"label": {buildStepLabel}}})
		if err != nil {
			return nil, fmt.Errorf("new builder: %w", err)
		}
		for _, ct := range left {
			if err := e.ContainerRemove(ctx, ct.ID, ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				log.From(ctx).Warn("builder: remove a step container left by a crash", log.KeyContainer, ct.ID, log.KeyErr, err)
			}
		}
	}
	b, err := build.New(buildBackend{e}, filepath.Join(e.root, "build"))
	if err != nil {
		return nil, err
	}
	bd := &Builder{e: e, b: b}
	e.intermediates = bd.Intermediates
	return bd, nil
}

// Build builds an image (see build.Builder.Build).
// Its events are those of the steps, as docker's: the RUN containers'
// create, start, die and destroy, and the final tags.
func (b *Builder) Build(ctx context.Context, opts build.Options) (build.Result, error) {
	return b.b.Build(ctx, opts)
}

// Intermediates are the untagged images a build made as a step's base,
// which docker images hides unless -a (docker: images with children);
// ImageList and ImagePrune ask it.
func (b *Builder) Intermediates(ctx context.Context) map[digest.Digest]bool {
	out := map[digest.Digest]bool{}
	for id := range b.b.Parents() {
		if rec, err := b.e.images.Get(ctx, id); err == nil && rec.Dangling() {
			out[id] = true
		}
	}
	return out
}

// BuildPrune forgets the build cache and removes the images only it kept.
func (b *Builder) BuildPrune(ctx context.Context) (build.PruneResult, error) {
	return b.b.Prune(ctx)
}

// buildBackend is build.Backend over the Engine.
type buildBackend struct{ e *Engine }

func (bb buildBackend) Image(ctx context.Context, ref string) (build.Image, error) {
	rec, err := bb.e.images.Lookup(ctx, ref)
	if err != nil {
		return build.Image{}, err
	}
	cfg, err := bb.e.config(ctx, rec)
	if err != nil {
		return build.Image{}, err
	}
	return build.Image{ID: rec.ID, Config: cfg.DockerOCIImage}, nil
}

func (bb buildBackend) Pull(ctx context.Context, ref string, auth *build.RegistryAuth, out io.Writer) (build.Image, error) {
	var opts PullOptions
	if auth != nil {
		opts.Auth = &distribution.AuthConfig{Username: auth.Username, Password: auth.Password, IdentityToken: auth.IdentityToken, RegistryToken: auth.RegistryToken}
	}
	res, err := bb.e.Pull(ctx, ref, opts)
	if err != nil {
		return build.Image{}, err
	}
	fmt.Fprintf(out, "Status: %s\n", res.Status)
	return bb.Image(ctx, res.Image.ID.String())
}

// syncWriter serialises the container's stdout and stderr into one
// progress stream, and drops what comes after the step (an attach that
// outlived it must not write to a response that has ended).
type syncWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return len(p), nil
	}
	return s.w.Write(p)
}

func (s *syncWriter) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

func (bb buildBackend) Run(ctx context.Context, opts build.RunOptions) (_ digest.Digest, err error) {
	e := bb.e
	cfg := &containertypes.Config{
		Image: opts.Base.String(), Cmd: opts.Args, Env: opts.Env,
		User: opts.User, WorkingDir: opts.WorkingDir,
		// An empty, non-nil entrypoint: the image's does not wrap RUN.
		Entrypoint: []string{},
		// No health checks on a build step's container.
		Healthcheck:  &containertypes.HealthConfig{Test: []string{"NONE"}},
		AttachStdout: true, AttachStderr: true,
		Labels: map[string]string{buildStepLabel: "1"},
	}
	l := opts.Limits
	host := &containertypes.HostConfig{NetworkMode: containertypes.NetworkMode(opts.NetworkMode), ExtraHosts: l.ExtraHosts, ShmSize: l.ShmSize}
	host.Memory, host.MemorySwap = l.Memory, l.MemorySwap
	host.CPUShares, host.CPUPeriod, host.CPUQuota = l.CPUShares, l.CPUPeriod, l.CPUQuota
	host.CpusetCpus, host.CpusetMems = l.CPUSetCPUs, l.CPUSetMems
	cr, err := e.ContainerCreate(ctx, ContainerCreateOptions{Config: cfg, HostConfig: host})
	if err != nil {
		return "", fmt.Errorf("run: %w", err)
	}
	// The step's container goes whatever happens: docker ps -a never
	// shows a build's containers afterwards. WithoutCancel: a client
	// that hung up must not leave it behind.
	defer func() {
		if rerr := e.ContainerRemove(context.WithoutCancel(ctx), cr.ID, ContainerRemoveOptions{Force: true, RemoveVolumes: true}); rerr != nil {
			log.From(ctx).Warn("build: remove step container; it may stay", log.KeyContainer, cr.ID, log.KeyErr, rerr)
		}
	}()
	if opts.Started != nil {
		opts.Started(cr.ID)
	}
	out := opts.Output
	if out == nil {
		out = io.Discard
	}
	sw := &syncWriter{w: out}
	defer sw.close()
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan struct{})
	attached := make(chan error, 1)
	go func() {
		attached <- e.ContainerAttach(actx, cr.ID, ContainerAttachOptions{
			Stdout: true, Stderr: true, Stream: true,
			Streams: func(bool) (AttachStreams, error) {
				close(ready)
				return AttachStreams{Stdout: sw, Stderr: sw, Close: func() {}}, nil
			},
		})
	}()
	select {
	case <-ready:
	case err := <-attached:
		if err == nil {
			err = fmt.Errorf("ended before the container ran: %w", errdefs.ErrUnavailable)
		}
		return "", fmt.Errorf("run: attach: %w", err)
	case <-ctx.Done():
		return "", ctx.Err()
	}
	wait, err := e.ContainerWait(ctx, cr.ID, containertypes.WaitConditionNextExit)
	if err != nil {
		return "", fmt.Errorf("run: %w", err)
	}
	if err := e.ContainerStart(ctx, cr.ID); err != nil {
		return "", fmt.Errorf("run: %w", err)
	}
	var code int64
	select {
	case res, ok := <-wait:
		if !ok {
			return "", fmt.Errorf("run: wait for %s ended: %w", cr.ID, errdefs.ErrUnavailable)
		}
		if res.Error != nil && res.Error.Message != "" {
			return "", fmt.Errorf("run: %s", res.Error.Message)
		}
		code = res.StatusCode
	case <-ctx.Done():
		return "", ctx.Err()
	}
	// The output has all come once the attach ends with the process; an
	// attach that outlives it by far only costs the output's tail.
	select {
	case <-attached:
	case <-time.After(attachDrain):
		log.From(ctx).Warn("build: step output still attached after the process exited", log.KeyContainer, cr.ID)
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if code != 0 {
		return "", &build.ExitError{Code: int(code)}
	}
	ct, _, err := e.lookup(cr.ID)
	if err != nil {
		return "", err
	}
	key := ct.Snapshot().SnapshotKey
	return e.buildImage(ctx, opts.Base, opts.Config, func(w io.Writer) error {
		pr, pw := io.Pipe()
		go func() {
			_, err := unpack.Diff(ctx, e.snaps, key, pw)
			pw.CloseWithError(err)
		}()
		err := dropMountTargets(pr, w)
		pr.CloseWithError(errors.New("diff read ended"))
		return err
	})
}

// runMountTargets are what the runtime makes in a container's writable
// layer as mount points (and docker keeps in a separate init layer): a
// step's image must not gain them.
var runMountTargets = map[string]bool{"etc/hosts": true, "etc/hostname": true, "etc/resolv.conf": true, "dev": true, "proc": true, "sys": true}

// dropMountTargets copies the layer tar r to w without the empty mount
// points the run left.
func dropMountTargets(r io.Reader, w io.Writer) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(path.Clean(h.Name), "/")
		if runMountTargets[name] && (h.Typeflag == tar.TypeDir || h.Typeflag == tar.TypeReg && h.Size == 0) {
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	return tw.Close()
}

// topChain is the snapshot key of the image's top layer ("" for none).
func (e *Engine) topChain(ctx context.Context, id digest.Digest) (string, error) {
	if id == "" {
		return "", nil
	}
	rec, err := e.images.Get(ctx, id)
	if err != nil {
		return "", err
	}
	if ids := rec.ChainIDs(); len(ids) > 0 {
		return ids[len(ids)-1].String(), nil
	}
	return "", nil
}

func (bb buildBackend) Mutate(ctx context.Context, opts build.MutateOptions) (digest.Digest, error) {
	e := bb.e
	parent, err := e.topChain(ctx, opts.Base)
	if err != nil {
		return "", err
	}
	key := buildSnapshotPrefix + rand.Text()
	ms, err := e.snaps.Prepare(ctx, key, parent)
	if err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	defer func() {
		if err := e.snaps.Remove(context.WithoutCancel(ctx), key); err != nil {
			log.From(ctx).Warn("build: remove working snapshot; it may stay", log.KeySnapshot, key, log.KeyErr, err)
		}
	}()
	if err := mount.WithTempMount(ctx, ms, func(root string) error { return opts.Write(ctx, root) }); err != nil {
		return "", err
	}
	return e.buildImage(ctx, opts.Base, opts.Config, func(w io.Writer) error {
		_, err := unpack.Diff(ctx, e.snaps, key, w)
		return err
	})
}

func (bb buildBackend) Commit(ctx context.Context, opts build.CommitOptions) (digest.Digest, error) {
	return bb.e.buildImage(ctx, opts.Base, opts.Config, nil)
}

func (bb buildBackend) View(ctx context.Context, id digest.Digest, fn func(root string) error) error {
	e := bb.e
	parent, err := e.topChain(ctx, id)
	if err != nil {
		return err
	}
	if parent == "" {
		dir, err := os.MkdirTemp("", "berth-build-empty-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		return fn(dir)
	}
	key := buildSnapshotPrefix + "view-" + rand.Text()
	ms, err := e.snaps.View(ctx, key, parent)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	defer func() {
		if err := e.snaps.Remove(context.WithoutCancel(ctx), key); err != nil {
			log.From(ctx).Warn("build: remove view; it may stay", log.KeySnapshot, key, log.KeyErr, err)
		}
	}()
	return mount.WithTempMount(ctx, ms, fn)
}

func (bb buildBackend) Tag(ctx context.Context, id digest.Digest, ref string) error {
	return bb.e.ImageTag(ctx, ImageTagOptions{Source: id.String(), Target: ref})
}

func (bb buildBackend) RemoveUnused(ctx context.Context, ids []digest.Digest) (int64, error) {
	e := bb.e
	var freed int64
	var errs []error
	for _, id := range ids {
		rec, err := e.images.Get(ctx, id)
		if err != nil || !rec.Dangling() {
			continue
		}
		if users, err := e.imageUsers(ctx, id); err != nil || len(users) > 0 {
			continue
		}
		if _, err := e.ImageRemove(ctx, id.String(), ImageRemoveOptions{}); err != nil {
			if !errors.Is(err, errdefs.ErrNotFound) && !errors.Is(err, errdefs.ErrConflict) {
				errs = append(errs, err)
			}
			continue
		}
		freed += rec.Size
	}
	return freed, errors.Join(errs...)
}

// buildImage stores the image of a build step: cfg over base's layers,
// plus the layer diff writes when diff is set. Like commit, it holds
// the image store's collection off until the image is recorded, and on
// failure collects the blobs it wrote.
func (e *Engine) buildImage(ctx context.Context, baseID digest.Digest, cfg dockerspec.DockerOCIImage, diff func(w io.Writer) error) (_ digest.Digest, err error) {
	var base image.Record
	if baseID != "" {
		if base, err = e.images.Get(ctx, baseID); err != nil {
			return "", err
		}
	}
	release := e.images.Hold()
	held := true
	defer func() {
		if held {
			release()
		}
		if err != nil {
			if _, cerr := e.collect(context.WithoutCancel(ctx)); cerr != nil {
				log.From(ctx).Warn("build: clean up after failure", log.KeyErr, cerr)
			}
		}
	}()
	layers := make([]ocispec.Descriptor, 0, len(base.Layers)+1)
	cfg.RootFS = ocispec.RootFS{Type: "layers"}
	for _, l := range base.Layers {
		layers = append(layers, l.Blob)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.DiffID)
	}
	var layer ocispec.Descriptor
	if diff != nil {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(diff(pw)) }()
		var diffID digest.Digest
		layer, diffID, err = e.storeLayer(ctx, pr)
		pr.Close()
		if err != nil {
			return "", fmt.Errorf("build: store layer: %w", err)
		}
		layers = append(layers, layer)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	rec, err := image.NewImage(ctx, e.content, cfg.Image, raw, layers)
	if err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	for i := range base.Layers {
		rec.Layers[i].Size = base.Layers[i].Size
	}
	rec.Size = base.Size
	if diff != nil {
		rec.Layers[len(rec.Layers)-1].Size = layer.Size
		if rec, err = e.unpack(ctx, rec); err != nil {
			return "", fmt.Errorf("build: %w", err)
		}
	}
	if rec, err = e.images.Put(ctx, rec); err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	release()
	held = false
	return rec.ID, nil
}
