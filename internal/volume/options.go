package volume

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/mount"
)

// mountSpec is what a volume's driver options mount on its _data.
type mountSpec struct {
	m mount.Mount
}

// parseOptions checks the local driver's options as docker's local driver
// does (known keys; device and type go together; o needs both) and
// returns the mount they ask for, nil for none. berth mounts two kinds:
// a tmpfs (type=tmpfs), and a bind of a host directory (type=none or
// bind, o=bind or rbind, device=/abs/dir).
func parseOptions(opts map[string]string) (*mountSpec, error) {
	if len(opts) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "type", "device", "o":
		case "size":
			return nil, fmt.Errorf("quota size requested but no quota support: %w", errdefs.ErrInvalidArgument)
		default:
			return nil, fmt.Errorf("invalid option: %q: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	need := map[string][]string{"device": {"type"}, "type": {"device"}, "o": {"device", "type"}}
	for _, k := range keys {
		for _, r := range need[k] {
			if _, ok := opts[r]; !ok {
				return nil, fmt.Errorf("missing required option: %q: %w", r, errdefs.ErrInvalidArgument)
			}
		}
	}
	typ, dev := opts["type"], opts["device"]
	o := splitOpts(opts["o"])
	bind := slices.Contains(o, "bind") || slices.Contains(o, "rbind")
	switch {
	case typ == "tmpfs" && !bind:
		if dev == "" {
			dev = "tmpfs"
		}
		return &mountSpec{m: mount.Mount{Type: "tmpfs", Source: dev, Options: o}}, nil
	case (typ == "none" || typ == "bind") || bind:
		if !bind {
			return nil, fmt.Errorf("volume option type=%s needs o=bind: %w", typ, errdefs.ErrInvalidArgument)
		}
		if !filepath.IsAbs(dev) {
			return nil, fmt.Errorf("volume option device=%q: a bind needs an absolute host path: %w", dev, errdefs.ErrInvalidArgument)
		}
		return &mountSpec{m: mount.Mount{Type: "bind", Source: filepath.Clean(dev), Options: o}}, nil
	}
	// nfs, cifs, block devices: docker's local driver mounts them; berth
	// does not, and says so rather than leave a plain directory.
	return nil, fmt.Errorf("volume option type=%s: berth's local driver mounts only tmpfs and bind (type=none, o=bind): %w", typ, errdefs.ErrNotImplemented)
}

func splitOpts(s string) []string {
	var out []string
	for _, w := range strings.Split(s, ",") {
		if w = strings.TrimSpace(w); w != "" {
			out = append(out, w)
		}
	}
	return out
}

// mount mounts the spec on target (the volume's _data).
func (ms *mountSpec) mount(target string) error {
	if ms.m.Type == "bind" {
		fi, err := os.Stat(ms.m.Source)
		if err != nil {
			return fmt.Errorf("bind device %s: %w", ms.m.Source, errors.Join(err, errdefs.ErrInvalidArgument))
		}
		if !fi.IsDir() {
			return fmt.Errorf("bind device %s: not a directory: %w", ms.m.Source, errdefs.ErrInvalidArgument)
		}
	}
	if err := ms.m.Mount(target); err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			err = errors.Join(err, errdefs.ErrInvalidArgument)
		}
		return err
	}
	return nil
}

// remount mounts v's options again if its _data is not a mount point (a
// reboot took the mount away), then its pins. The caller holds s.mu.
func (s *Store) remount(v Volume) error {
	spec, err := parseOptions(v.Options)
	if err != nil {
		return fmt.Errorf("mount volume %s: %w", v.Name, err)
	}
	if spec != nil && !isMountPoint(v.Mountpoint) {
		if err := spec.mount(v.Mountpoint); err != nil {
			return fmt.Errorf("mount volume %s: %w", v.Name, err)
		}
	}
	s.repin(v.Name)
	return nil
}

// isMountPoint says whether p is the root of a mount (statx's
// STATX_ATTR_MOUNT_ROOT, Linux 5.8; /proc/self/mountinfo before). A bind
// of a directory of the same filesystem has the same device number, so
// comparing with the parent would not tell.
func isMountPoint(p string) bool {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, 0, &st); err != nil {
		return false
	}
	if st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		// Field 5 is the mount point, with space, tab, newline and
		// backslash escaped in octal (proc(5)).
		if f := strings.Fields(line); len(f) > 4 && unescapeMountinfo(f[4]) == p {
			return true
		}
	}
	return false
}

func unescapeMountinfo(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// unmountAll unmounts everything stacked on p, so a RemoveAll that
// follows cannot reach into a mounted filesystem. A p that is no mount
// point needs nothing (and no privilege).
func unmountAll(p string) error {
	for isMountPoint(p) {
		if err := mount.Unmount(p); err != nil {
			return err
		}
	}
	return nil
}
