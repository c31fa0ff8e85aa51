package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/cleanup"
	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/events"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/snapshot/drivers"
	"github.com/berth-dev/berth/internal/unpack"
)

// Config says where the Engine keeps its state and how.
type Config struct {
	// Root is the state directory (/var/lib/berth).
	Root string
	// StorageDriver is "overlay", "vfs" (the copy driver), or "" to choose.
	StorageDriver string
	// InsecureRegistries are registries ("host" or "host:port") reached
	// over plain HTTP, as dockerd's insecure-registries. Loopback
	// registries always are.
	InsecureRegistries []string
	// CertsDir holds per-registry CAs and client certificates laid out as
	// docker's certs.d (<host[:port]>/*.crt, *.cert, *.key). Empty means
	// /etc/docker/certs.d if it exists, so a host set up for docker works
	// unchanged, else /etc/berth/certs.d.
	CertsDir string
}

// Default places for registry certificates, in the order tried.
var defaultCertsDirs = []string{"/etc/docker/certs.d", "/etc/berth/certs.d"}

func certsDir(dir string) string {
	if dir != "" {
		return dir
	}
	for _, d := range defaultCertsDirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
	}
	return defaultCertsDirs[len(defaultCertsDirs)-1]
}

// ContainerRef names a container that uses an image.
type ContainerRef struct {
	ID      string
	Running bool
}

// Engine owns berth's stores. It is safe for concurrent use.
//
// Fields are set once by New and read-only afterwards, so methods in other
// files of the package (pull, push, containers) may use them directly.
type Engine struct {
	root    string
	cfg     Config
	content *content.Store
	images  *image.Store
	snaps   snapshot.Snapshotter
	driver  string // the snapshotter's name: overlay or copy
	// unpacker turns layers into chain-ID snapshots.
	unpacker *unpack.Unpacker
	// registry reaches registries for pull, push and login.
	registry *distribution.Client
	// bus carries the events every step publishes (Emit).
	bus *events.Bus

	// imageUsers lists the containers that use image id; rmi and prune
	// refuse (or need force) while there are any. Until containers exist
	// it says none; the container code sets it.
	imageUsers func(ctx context.Context, id digest.Digest) ([]ContainerRef, error)
	// intermediates are the untagged images a build's later steps grew
	// from; list and prune leave them alone. The builder sets it.
	intermediates func(ctx context.Context) map[digest.Digest]bool
}

// New opens (creating if needed) the stores under cfg.Root.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Root == "" {
		return nil, errors.New("new engine: no root directory")
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("new engine: %w", err)
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("new engine: %w", err)
	}
	var undo cleanup.Stack
	defer undo.Unwind()
	cfg.Root = root
	cfg.CertsDir = certsDir(cfg.CertsDir)
	e := &Engine{root: root, cfg: cfg, bus: events.New(events.DefaultRingSize)}
	e.registry = distribution.New(distribution.Config{Insecure: cfg.InsecureRegistries, CertsDir: cfg.CertsDir})
	// The image database first: its lock serialises Engines on one root,
	// so the content store's crash cleanup never races another Engine.
	if e.images, err = image.OpenStore(ctx, filepath.Join(root, "image", "images.db")); err != nil {
		return nil, fmt.Errorf("new engine: %w", err)
	}
	undo.Push(func() { e.images.Close() })
	if e.content, err = content.Open(ctx, filepath.Join(root, "content")); err != nil {
		return nil, fmt.Errorf("new engine: %w", err)
	}
	undo.Push(func() { e.content.Close() })
	if e.snaps, e.driver, err = drivers.Open(ctx, drivers.Options{Root: root, Driver: cfg.StorageDriver}); err != nil {
		return nil, fmt.Errorf("new engine: %w", err)
	}
	undo.Push(func() { e.snaps.Close() })
	e.unpacker = unpack.New(e.snaps)
	// Working snapshots of an unpack cut short by a crash: this Engine
	// holds the root alone (the image database's lock), so none is live.
	if err := e.unpacker.Prune(ctx); err != nil {
		return nil, fmt.Errorf("new engine: %w", err)
	}
	if err := e.pruneInspectViews(ctx); err != nil {
		return nil, fmt.Errorf("new engine: %w", err)
	}
	// Blobs and layer snapshots of a load or pull that a crash cut short
	// before its image was recorded: nothing references them, nobody else
	// can be writing (same lock), so they go now.
	if _, err := e.images.Collect(ctx, e.content, e.snaps); err != nil {
		return nil, fmt.Errorf("new engine: %w", err)
	}
	e.imageUsers = func(context.Context, digest.Digest) ([]ContainerRef, error) { return nil, nil }
	e.intermediates = func(context.Context) map[digest.Digest]bool { return nil }
	undo.Disarm()
	return e, nil
}

// pruneInspectViews removes the views image inspect makes (layerDirs)
// that a crash left behind; they would hold their layers from collection.
func (e *Engine) pruneInspectViews(ctx context.Context) error {
	var stale []string
	err := e.snaps.Walk(ctx, func(i snapshot.Info) error {
		if i.Kind == snapshot.KindView && strings.HasPrefix(i.Name, inspectViewPrefix) {
			stale = append(stale, i.Name)
		}
		return nil
	})
	for _, k := range stale {
		err = errors.Join(err, e.snaps.Remove(ctx, k))
	}
	return err
}

// Close releases the stores.
func (e *Engine) Close() error {
	return errors.Join(e.snaps.Close(), e.content.Close(), e.images.Close())
}

// Root is the state directory.
func (e *Engine) Root() string { return e.root }

// StorageDriver is the name of the snapshotter in use (overlay or copy).
func (e *Engine) StorageDriver() string { return e.driver }

// Content is the blob store.
func (e *Engine) Content() *content.Store { return e.content }

// Images is the image metadata store.
func (e *Engine) Images() *image.Store { return e.images }

// Snapshotter is the layer store.
func (e *Engine) Snapshotter() snapshot.Snapshotter { return e.snaps }
