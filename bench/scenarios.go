package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
)

// env is what every scenario shares: built binaries and the test image.
type env struct {
	repo    string
	tmp     string
	bundle  string     // busybox bundle with /bin/true and an absolute rootfs
	img     *imageEnv  // started on first use by an image scenario
	eng     *engineEnv // started on first use by an engine scenario
	closers []func()
}

func newEnv() (*env, error) {
	repo, err := testutil.RepoRoot()
	if err != nil {
		return nil, err
	}
	imgs, err := testutil.EnsureImages()
	if err != nil {
		return nil, fmt.Errorf("test images: %w", err)
	}
	tmp, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{repo: repo, tmp: tmp, bundle: filepath.Join(tmp, "bundle")}
	if err := writeBundle(e.bundle, imgs.Bundle, imgs.Rootfs, "/bin/true"); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *env) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	_ = os.RemoveAll(e.tmp)
}

func (e *env) bin(name string) string { return filepath.Join(e.repo, "bin", name) }

// writeBundle writes a bundle whose config is the test bundle's with args
// replaced and the rootfs given by absolute path (shared, read-only).
func writeBundle(dir, from, rootfs string, args ...string) error {
	b, err := os.ReadFile(filepath.Join(from, "config.json"))
	if err != nil {
		return err
	}
	var s rspec.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	s.Process.Args = args
	s.Root.Path = rootfs
	// crun 1.8 (Debian 12) rejects ociVersion 1.2 and later as unknown.
	s.Version = "1.1.0"
	if b, err = json.Marshal(&s); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
}

// scenario names a measurement; setup returns berth's command, each
// available reference's command, and a cleanup.
type scenario struct {
	name  string
	setup func(e *env) (berth tool, refs map[string]tool, cleanup func(), err error)
}

func scenarios() []scenario {
	list := []scenario{
		{name: "runtime: run busybox /bin/true", setup: runtimeRun(1)},
		{name: "runtime: 100× create/start/delete", setup: runtimeCycle(100)},
		{name: "images: pull 150 MB, 3 layers, cold", setup: imagePull},
		{name: "images: push 150 MB, 3 layers", setup: imagePush},
		{name: "images: load 150 MB tarball", setup: imageLoad},
	}
	return append(list, engineScenarios()...)
}

// ociRuntime is a runc-compatible CLI with its own state root.
type ociRuntime struct {
	path, root string
	n          int
}

// cmd runs the runtime with its stdio on files, not pipes: a created
// container's init inherits them and holds them open until it exits.
func (r *ociRuntime) cmd(args ...string) error {
	errf, err := os.CreateTemp("", "berth-bench-stderr-")
	if err != nil {
		return err
	}
	defer os.Remove(errf.Name())
	defer errf.Close()
	c := exec.Command(r.path, append([]string{"--root", r.root}, args...)...)
	c.Stderr = errf
	if err := c.Run(); err != nil {
		msg, _ := os.ReadFile(errf.Name())
		return fmt.Errorf("%s %v: %w: %s", filepath.Base(r.path), args, err, msg)
	}
	return nil
}

// deleteAll force-deletes every container left in the runtime's state
// root (each runtime keeps one directory per container id there), so a
// failed run leaves no process or cgroup behind.
func (r *ociRuntime) deleteAll() {
	entries, _ := os.ReadDir(r.root)
	for _, e := range entries {
		if e.IsDir() {
			_ = r.cmd("delete", "--force", e.Name())
		}
	}
}

func (r *ociRuntime) nextID() string {
	r.n++
	return fmt.Sprintf("bench-%d-%d", os.Getpid(), r.n)
}

// runtimes returns berth-runtime and every reference runtime installed.
func runtimes(e *env) (*ociRuntime, map[string]*ociRuntime, error) {
	berth := e.bin("berth-runtime")
	if _, err := os.Stat(berth); err != nil {
		return nil, nil, fmt.Errorf("berth-runtime not built (make build): %w", err)
	}
	mk := func(name, path string) *ociRuntime {
		r := &ociRuntime{path: path, root: filepath.Join(e.tmp, "state-"+name)}
		e.closers = append(e.closers, r.deleteAll)
		return r
	}
	refs := map[string]*ociRuntime{}
	for _, name := range []string{"runc", "crun"} {
		if p, err := exec.LookPath(name); err == nil {
			refs[name] = mk(name, p)
		}
	}
	return mk("berth", berth), refs, nil
}

func runtimeRun(n int) func(e *env) (tool, map[string]tool, func(), error) {
	return func(e *env) (tool, map[string]tool, func(), error) {
		b, refs, err := runtimes(e)
		if err != nil {
			return tool{}, nil, nil, err
		}
		run := func(r *ociRuntime) tool {
			return tool{run: func() error {
				for range n {
					if err := r.cmd("run", "--bundle", e.bundle, r.nextID()); err != nil {
						return err
					}
				}
				return nil
			}}
		}
		fns := map[string]tool{}
		for name, r := range refs {
			fns[name] = run(r)
		}
		return run(b), fns, func() {}, nil
	}
}

func runtimeCycle(n int) func(e *env) (tool, map[string]tool, func(), error) {
	return func(e *env) (tool, map[string]tool, func(), error) {
		b, refs, err := runtimes(e)
		if err != nil {
			return tool{}, nil, nil, err
		}
		cycle := func(r *ociRuntime) tool {
			return tool{run: func() error {
				for range n {
					id := r.nextID()
					if err := r.cmd("create", "--bundle", e.bundle, id); err != nil {
						return err
					}
					if err := r.cmd("start", id); err != nil {
						_ = r.cmd("delete", "--force", id)
						return err
					}
					if err := r.cmd("delete", "--force", id); err != nil {
						return err
					}
				}
				return nil
			}}
		}
		fns := map[string]tool{}
		for name, r := range refs {
			fns[name] = cycle(r)
		}
		return cycle(b), fns, func() {}, nil
	}
}
