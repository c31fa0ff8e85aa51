package build

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
)

type pullCall struct {
	ref  string
	auth *RegistryAuth
}

// fakeBackend keeps images in memory, each with a directory holding its
// whole filesystem (copied from the parent on Mutate). RUN is not run:
// it records the call and, if runExit is set, fails with that code.
type fakeBackend struct {
	t       *testing.T
	dir     string
	mu      sync.Mutex
	images  map[digest.Digest]Image
	names   map[string]digest.Digest
	roots   map[digest.Digest]string
	runs    []RunOptions
	pulls   []pullCall
	runExit int
	seq     int
}

func newFakeBackend(t *testing.T) *fakeBackend {
	f := &fakeBackend{t: t, dir: t.TempDir(), images: map[digest.Digest]Image{}, names: map[string]digest.Digest{}, roots: map[digest.Digest]string{}}
	base := scratchConfig()
	base.Config.Env = []string{"PATH=/usr/bin:/bin"}
	base.Config.Cmd = []string{"sh"}
	base.RootFS.DiffIDs = []digest.Digest{digest.FromString("base-layer")}
	id := f.store(base, "")
	f.names["busybox"] = id
	root := f.roots[id]
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc", "group"), []byte("root:x:0:\nstaff:x:50:\n"), 0o644)
	return f
}

// store records cfg as a new image whose root is a copy of parent's.
func (f *fakeBackend) store(cfg dockerspec.DockerOCIImage, parent digest.Digest) digest.Digest {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	b, _ := json.Marshal(cfg)
	id := digest.FromString(fmt.Sprintf("%d:%s", f.seq, b))
	f.images[id] = Image{ID: id, Config: cfg}
	root := filepath.Join(f.dir, id.Encoded()[:12])
	os.MkdirAll(root, 0o755)
	if p, ok := f.roots[parent]; ok {
		// cp -a: owners and modes are what the tests check.
		if b, err := exec.Command("cp", "-a", p+"/.", root).CombinedOutput(); err != nil {
			f.t.Fatalf("copy image root: %v: %s", err, b)
		}
	}
	f.roots[id] = root
	return id
}

func (f *fakeBackend) Image(_ context.Context, ref string) (Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.names[ref]; ok {
		return f.images[id], nil
	}
	if im, ok := f.images[digest.Digest(ref)]; ok {
		return im, nil
	}
	return Image{}, fmt.Errorf("No such image: %s: %w", ref, errdefs.ErrNotFound)
}

func (f *fakeBackend) Pull(_ context.Context, ref string, auth *RegistryAuth, out io.Writer) (Image, error) {
	f.mu.Lock()
	f.pulls = append(f.pulls, pullCall{ref, auth})
	f.mu.Unlock()
	fmt.Fprintf(out, "pulling %s\n", ref)
	return Image{}, fmt.Errorf("pull access denied for %s, repository does not exist or may require 'docker login': %w", ref, errdefs.ErrNotFound)
}

func (f *fakeBackend) Run(_ context.Context, opts RunOptions) (digest.Digest, error) {
	f.mu.Lock()
	f.runs = append(f.runs, opts)
	exit := f.runExit
	f.mu.Unlock()
	if opts.Started != nil {
		opts.Started("0123456789abcdef")
	}
	if exit != 0 {
		return "", &ExitError{Code: exit}
	}
	opts.Config.RootFS.DiffIDs = append(opts.Config.RootFS.DiffIDs, digest.FromString(strings.Join(opts.Args, " ")))
	return f.store(opts.Config, opts.Base), nil
}

func (f *fakeBackend) Mutate(ctx context.Context, opts MutateOptions) (digest.Digest, error) {
	id := f.store(opts.Config, opts.Base)
	if err := opts.Write(ctx, f.roots[id]); err != nil {
		f.mu.Lock()
		delete(f.images, id)
		f.mu.Unlock()
		return "", err
	}
	return id, nil
}

func (f *fakeBackend) Commit(_ context.Context, opts CommitOptions) (digest.Digest, error) {
	return f.store(opts.Config, opts.Base), nil
}

func (f *fakeBackend) View(_ context.Context, id digest.Digest, fn func(root string) error) error {
	f.mu.Lock()
	root, ok := f.roots[id]
	f.mu.Unlock()
	if !ok {
		root = f.t.TempDir()
	}
	return fn(root)
}

func (f *fakeBackend) Tag(_ context.Context, id digest.Digest, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.names[ref] = id
	f.names[image.Familiar(ref)] = id
	return nil
}

func (f *fakeBackend) RemoveUnused(_ context.Context, ids []digest.Digest) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		delete(f.images, id)
	}
	return int64(len(ids)), nil
}

// rootOf is the filesystem of an image, for checks.
func (f *fakeBackend) rootOf(id digest.Digest) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.roots[id]
}
