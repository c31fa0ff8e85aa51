package cgroups

import (
	"fmt"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Config says where a container's cgroup goes and what limits it gets.
type Config struct {
	// Path is linux.cgroupsPath from the spec. Absolute: under each
	// hierarchy's root. Relative: under berth's parent (see Parent).
	// Empty: <hierarchy root>/<Parent>/<Name>.
	Path string
	// Name is the container id, used for the default path.
	Name string
	// Resources are the limits Apply uses to decide which v2 controllers
	// to enable; Set writes them.
	Resources *specs.LinuxResources
}

// Parent is the directory under each hierarchy's root that holds the
// cgroups berth creates when the spec gives no absolute path. It is never
// the caller's own cgroup: a runtime started from inside a cgroup that
// belongs to someone else (a service manager, a CI job) must not nest its
// containers there.
const Parent = "berth"

// Manager runs one container's cgroup(s). It is not safe for concurrent
// use; the runtime serializes operations on a container. Errors wrap the
// classes of internal/errdefs: ErrInvalidArgument for values the kernel or
// the checks here reject, ErrNotImplemented for a controller or file this
// host lacks, ErrUnavailable for a freeze that does not settle.
type Manager interface {
	// Apply creates the cgroup(s) and moves pid into them. A pid of 0 or
	// less creates them without moving anything.
	Apply(pid int) error
	// Set writes the limits in r; fields left nil are not written. It
	// serves both create and update.
	Set(r *specs.LinuxResources) error
	// Stats reads usage and limits.
	Stats() (*Stats, error)
	// Freeze freezes or thaws every process and returns once the kernel
	// reports the state reached.
	Freeze(frozen bool) error
	// Kill sends sig to every process in the cgroup, including processes
	// that fork while it runs.
	Kill(sig unix.Signal) error
	// Destroy removes the cgroup(s), waiting briefly for exiting processes
	// to leave. It kills nothing: a live process makes it fail.
	Destroy() error
	// Pids lists the processes in the cgroup and its descendants.
	Pids() ([]int, error)
	// Paths maps each v1 controller to its directory, and "" to the
	// cgroup v2 directory. Save it to call Load later.
	Paths() map[string]string
}

// Mode is the cgroup layout of a host.
type Mode int

const (
	// Legacy hosts mount only cgroup v1 hierarchies.
	Legacy Mode = iota + 1
	// Hybrid hosts mount v1 hierarchies and a v2 hierarchy beside them,
	// whose cgroup.controllers lists what no v1 hierarchy took.
	Hybrid
	// Unified hosts mount only cgroup v2.
	Unified
)

func (m Mode) String() string {
	switch m {
	case Legacy:
		return "legacy"
	case Hybrid:
		return "hybrid"
	case Unified:
		return "unified"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// HostMode reports the cgroup layout of this host.
func HostMode() (Mode, error) {
	l, err := hostLayout()
	if err != nil {
		return 0, err
	}
	return l.mode, nil
}

// New returns the manager for cfg on this host's layout. It creates
// nothing: Apply does.
func New(cfg Config) (Manager, error) {
	l, err := hostLayout()
	if err != nil {
		return nil, err
	}
	rel, err := resolve(cfg.Path, cfg.Name)
	if err != nil {
		return nil, err
	}
	return newManager(l, rel, cfg.Resources), nil
}

func newManager(l *layout, rel string, r *specs.LinuxResources) Manager {
	switch l.mode {
	case Legacy:
		return newV1(l, rel)
	case Unified:
		return newV2(l.unified, rel, l.unifiedControllers)
	}
	h := &hybrid{v1: newV1(l, rel), v2: newV2(l.unified, rel, nil), unifiedControllers: l.unifiedControllers}
	h.v2.want = h.v2Controllers(r)
	return h
}

// Load returns the manager for cgroups created earlier, from the map that
// Manager.Paths returned.
func Load(paths map[string]string) (Manager, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("load cgroups: no paths: %w", errdefs.ErrInvalidArgument)
	}
	l, err := hostLayout()
	if err != nil {
		return nil, err
	}
	return load(l, paths)
}

func load(l *layout, paths map[string]string) (Manager, error) {
	unified, hasUnified := paths[""]
	v1paths := map[string]string{}
	for c, p := range paths {
		if c == "" {
			continue
		}
		root, ok := l.v1[c]
		if !ok {
			return nil, fmt.Errorf("load cgroups: controller %s is not mounted: %w", c, errdefs.ErrNotFound)
		}
		// The hierarchy root is every process on the host: never a
		// container's cgroup, and Kill or Freeze there would be a disaster.
		if !within(root, p) || filepath.Clean(p) == root {
			return nil, fmt.Errorf("load cgroups: %s path %s is not below %s: %w", c, p, root, errdefs.ErrInvalidArgument)
		}
		v1paths[c] = filepath.Clean(p)
	}
	var v2m *v2
	if hasUnified {
		if l.unified == "" {
			return nil, fmt.Errorf("load cgroups: no cgroup v2 hierarchy is mounted: %w", errdefs.ErrNotFound)
		}
		if !within(l.unified, unified) || filepath.Clean(unified) == l.unified {
			return nil, fmt.Errorf("load cgroups: path %s is not below %s: %w", unified, l.unified, errdefs.ErrInvalidArgument)
		}
		v2m = &v2{root: l.unified, dir: filepath.Clean(unified)}
	}
	switch {
	case len(v1paths) == 0 && v2m != nil:
		return v2m, nil
	case v2m == nil:
		return &v1{roots: l.v1, paths: v1paths}, nil
	}
	return &hybrid{v1: &v1{roots: l.v1, paths: v1paths}, v2: v2m, unifiedControllers: l.unifiedControllers}, nil
}
