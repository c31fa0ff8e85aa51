package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	testregistry "github.com/berth-dev/berth/internal/testutil/registry"
)

// imageEnv is shared by the image scenarios: the ~150 MB three-layer bench
// image (generated offline, cached under _output), a registry holding it,
// and dockerd when installed.
type imageEnv struct {
	layout  string // OCI layout of the bench image
	archive string // the same as a docker-archive
	reg     *registry
	docker  *dockerd // nil when docker.io is not installed
	ref     string   // the image in the registry
}

func (e *env) images() (*imageEnv, error) {
	if e.img != nil {
		return e.img, nil
	}
	cache := filepath.Join(e.repo, "_output", "bench")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	layout, err := testregistry.BenchImage(cache)
	if err != nil {
		return nil, fmt.Errorf("bench image: %w", err)
	}
	ie := &imageEnv{layout: layout, archive: filepath.Join(cache, "bench-image.tar")}
	if _, err := os.Stat(ie.archive); err != nil {
		if err := run("skopeo", "copy", "--quiet", "oci:"+layout, "docker-archive:"+ie.archive+":bench/app:1"); err != nil {
			return nil, err
		}
	}
	if ie.reg, err = startRegistry(filepath.Join(e.tmp, "registry"), ""); err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() { ie.reg.svc.stop() })
	ie.ref = ie.reg.host + "/bench/app:1"
	if err := ie.seed(); err != nil {
		return nil, err
	}
	if d, err := startDockerd(filepath.Join(e.tmp, "docker")); err == nil {
		ie.docker = d
		e.closers = append(e.closers, d.stop)
	} else {
		fmt.Fprintf(os.Stderr, "  dockerd not available: %v\n", err)
	}
	e.img = ie
	return ie, nil
}

// names lists every name the bench image gets in any engine, so removing
// them all makes the next pull or load cold (a name left behind would keep
// its layers).
func (ie *imageEnv) names() []string {
	return []string{ie.ref, "bench/app:1", ie.reg.host + "/bench/pushed:1"}
}

func (ie *imageEnv) seed() error {
	return run("skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:"+ie.layout, "docker://"+ie.ref)
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %w: %s", args, err, out)
	}
	return nil
}

// berthImages is the bench's berth daemon (see engines), shared by the
// image scenarios: a cold pull is an rmi (which frees the blobs and layer
// snapshots) before each run.
func (e *env) berthImages() (*engineEnv, *imageEnv, error) {
	ie, err := e.images()
	if err != nil {
		return nil, nil, err
	}
	ee, err := e.engines()
	if err != nil {
		return nil, nil, err
	}
	return ee, ie, nil
}

func imagePull(e *env) (tool, map[string]tool, func(), error) {
	ee, ie, err := e.berthImages()
	if err != nil {
		return tool{}, nil, nil, err
	}
	berth := tool{
		before: func() error { _ = ee.berth(append([]string{"rmi", "-f"}, ie.names()...)...); return nil },
		run:    func() error { return ee.berth("pull", "-q", ie.ref) },
	}
	oci := filepath.Join(e.tmp, "skopeo-oci")
	refs := map[string]tool{
		"skopeo": {
			before: func() error { return os.RemoveAll(oci) },
			run: func() error {
				return run("skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://"+ie.ref, "oci:"+oci+":app")
			},
		},
	}
	if d := ie.docker; d != nil {
		refs["docker"] = tool{
			before: func() error { _ = d.cli(append([]string{"rmi", "-f"}, ie.names()...)...); return nil },
			run:    func() error { return d.cli("pull", "-q", ie.ref) },
		}
	}
	return berth, refs, func() { _ = os.RemoveAll(oci) }, nil
}

func imagePush(e *env) (tool, map[string]tool, func(), error) {
	ee, ie, err := e.berthImages()
	if err != nil {
		return tool{}, nil, nil, err
	}
	if err := ee.berth("pull", "-q", ie.ref); err != nil {
		return tool{}, nil, nil, err
	}
	target := ie.reg.host + "/bench/pushed:1"
	// Each push goes to an empty registry, so nothing is skipped as present.
	cold := func() error { return ie.reg.wipe() }
	if err := ee.berth("tag", ie.ref, target); err != nil {
		return tool{}, nil, nil, err
	}
	berth := tool{before: cold, run: func() error { return ee.berth("push", "-q", target) }}
	refs := map[string]tool{
		"skopeo": {before: cold, run: func() error {
			return run("skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:"+ie.layout, "docker://"+target)
		}},
	}
	if d := ie.docker; d != nil {
		if err := d.cli("pull", "-q", ie.ref); err != nil {
			return tool{}, nil, nil, err
		}
		if err := d.cli("tag", ie.ref, target); err != nil {
			return tool{}, nil, nil, err
		}
		refs["docker"] = tool{before: cold, run: func() error { return d.cli("push", "-q", target) }}
	}
	// Later scenarios pull the original image again.
	return berth, refs, func() { _ = ie.reg.wipe(); _ = ie.seed() }, nil
}

func imageLoad(e *env) (tool, map[string]tool, func(), error) {
	ee, ie, err := e.berthImages()
	if err != nil {
		return tool{}, nil, nil, err
	}
	berth := tool{
		before: func() error { _ = ee.berth(append([]string{"rmi", "-f"}, ie.names()...)...); return nil },
		run:    func() error { return ee.berth("load", "-q", "-i", ie.archive) },
	}
	refs := map[string]tool{}
	if d := ie.docker; d != nil {
		refs["docker"] = tool{
			before: func() error { _ = d.cli(append([]string{"rmi", "-f"}, ie.names()...)...); return nil },
			run:    func() error { return d.cli("load", "-q", "-i", ie.archive) },
		}
	}
	return berth, refs, func() {}, nil
}
