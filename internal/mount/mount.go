package mount

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
)

// Mount is one filesystem to mount. It is a plain value: snapshotters build
// it, the runtime and tests perform it.
type Mount struct {
	// Type is the filesystem type: "overlay", "bind", "tmpfs", ...
	// A bind mount may also be written as any type with a "bind" or
	// "rbind" option.
	Type string `json:"type"`
	// Source is the device, directory or pseudo-name ("overlay").
	Source string `json:"source"`
	// Target is where the mount goes, relative to the directory passed to
	// All; empty for the root itself. Snapshotters leave it empty.
	Target string `json:"target,omitempty"`
	// Options are mount(8)-style: flags (ro, nosuid, rbind, ...) and
	// filesystem data (lowerdir=..., size=...).
	Options []string `json:"options,omitempty"`
}

// flag is what a mount(8) option word does to the mount flags.
type flag struct {
	clear bool
	flag  uintptr
}

var flags = map[string]flag{
	"ro":          {false, unix.MS_RDONLY},
	"rw":          {true, unix.MS_RDONLY},
	"nosuid":      {false, unix.MS_NOSUID},
	"suid":        {true, unix.MS_NOSUID},
	"nodev":       {false, unix.MS_NODEV},
	"dev":         {true, unix.MS_NODEV},
	"noexec":      {false, unix.MS_NOEXEC},
	"exec":        {true, unix.MS_NOEXEC},
	"sync":        {false, unix.MS_SYNCHRONOUS},
	"async":       {true, unix.MS_SYNCHRONOUS},
	"noatime":     {false, unix.MS_NOATIME},
	"atime":       {true, unix.MS_NOATIME},
	"nodiratime":  {false, unix.MS_NODIRATIME},
	"diratime":    {true, unix.MS_NODIRATIME},
	"relatime":    {false, unix.MS_RELATIME},
	"norelatime":  {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME},
	"bind":        {false, unix.MS_BIND},
	"rbind":       {false, unix.MS_BIND | unix.MS_REC},
	"defaults":    {false, 0},
}

// parsed splits options into mount flags and the filesystem's data words.
func (m Mount) parsed() (uintptr, []string) {
	var f uintptr
	var data []string
	for _, o := range m.Options {
		if fl, ok := flags[o]; ok {
			if fl.clear {
				f &^= fl.flag
			} else {
				f |= fl.flag
			}
			continue
		}
		data = append(data, o)
	}
	if m.Type == "bind" {
		f |= unix.MS_BIND
	}
	return f, data
}

// ReadOnly reports whether the mount carries the "ro" option.
func (m Mount) ReadOnly() bool {
	f, _ := m.parsed()
	return f&unix.MS_RDONLY != 0
}

// Option returns the value of the data option key ("upperdir" for
// "upperdir=/x") and whether it is present.
func (m Mount) Option(key string) (string, bool) {
	for _, o := range m.Options {
		if v, ok := strings.CutPrefix(o, key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// pageSize is the most data mount(2) copies from user space: one page,
// including the terminating NUL (fs/namespace.c copy_mount_options).
var pageSize = os.Getpagesize()

// Mount mounts m on target, which must exist.
func (m Mount) Mount(target string) error {
	f, data := m.parsed()
	if f&unix.MS_BIND != 0 {
		return m.bind(target, f)
	}
	joined := strings.Join(data, ",")
	if len(joined) < pageSize {
		if err := unix.Mount(m.Source, target, m.Type, f, joined); err != nil {
			return fmt.Errorf("mount %s %s on %s: %w", m.Type, m.Source, target, err)
		}
		return nil
	}
	if m.Type != "overlay" {
		return fmt.Errorf("mount %s on %s: options are %d bytes, over the %d-byte page mount(2) takes: %w",
			m.Type, target, len(joined), pageSize, errdefs.ErrInvalidArgument)
	}
	if !forceFdPaths {
		err := m.fsmount(target, f, data)
		if !errors.Is(err, errNoLowerdirPlus) {
			return err
		}
	}
	return m.mountFdPaths(target, f, data)
}

// forceFdPaths makes long overlay mounts take the path older kernels need
// (tests set it).
var forceFdPaths = false

// errNoLowerdirPlus marks a kernel older than 6.8, whose overlay does not
// know "lowerdir+".
var errNoLowerdirPlus = errors.New("overlay without lowerdir+")

// mountFdPaths is the fallback for kernels without "lowerdir+": every
// layer directory is opened and named by its short /proc/self/fd/N path,
// which the kernel resolves while mounting. 128 layers then take about
// 2.5 KiB of mount data instead of one long path each.
func (m Mount) mountFdPaths(target string, f uintptr, data []string) error {
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	short := func(dir string) (string, error) {
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", fmt.Errorf("open layer %s: %w", dir, err)
		}
		fds = append(fds, fd)
		return "/proc/self/fd/" + strconv.Itoa(fd), nil
	}
	out := make([]string, 0, len(data))
	for _, d := range data {
		k, v, ok := strings.Cut(d, "=")
		switch {
		case ok && k == "lowerdir":
			var lowers []string
			for dir := range strings.SplitSeq(v, ":") {
				p, err := short(dir)
				if err != nil {
					return err
				}
				lowers = append(lowers, p)
			}
			out = append(out, "lowerdir="+strings.Join(lowers, ":"))
		case ok && (k == "upperdir" || k == "workdir"):
			p, err := short(v)
			if err != nil {
				return err
			}
			out = append(out, k+"="+p)
		default:
			out = append(out, d)
		}
	}
	joined := strings.Join(out, ",")
	if len(joined) >= pageSize {
		return fmt.Errorf("mount overlay on %s: %d layers do not fit in a page even as fd paths: %w",
			target, len(fds), errdefs.ErrInvalidArgument)
	}
	if err := unix.Mount(m.Source, target, m.Type, f, joined); err != nil {
		return fmt.Errorf("mount overlay on %s (layers as fd paths): %w", target, err)
	}
	return nil
}

func (m Mount) bind(target string, f uintptr) error {
	if err := unix.Mount(m.Source, target, "", f&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
		return fmt.Errorf("bind mount %s on %s: %w", m.Source, target, err)
	}
	// MS_BIND ignores every other flag; read-only and friends need a
	// second, remounting call (mount(2), "Creating a bind mount").
	if rest := f &^ (unix.MS_BIND | unix.MS_REC); rest != 0 {
		if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|rest, ""); err != nil {
			_ = unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("remount %s with flags %#x: %w", target, rest, err)
		}
	}
	return nil
}

// attrs maps MS_* flags to the MOUNT_ATTR_* of fsmount(2).
func attrs(f uintptr) int {
	a := 0
	for _, p := range []struct {
		ms   uintptr
		attr int
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY},
		{unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
		{unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.MS_NOATIME, unix.MOUNT_ATTR_NOATIME},
		{unix.MS_STRICTATIME, unix.MOUNT_ATTR_STRICTATIME},
		{unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
	} {
		if f&p.ms != 0 {
			a |= p.attr
		}
	}
	return a
}

// fsmount mounts an overlay through the new mount API, adding the lower
// layers one by one with "lowerdir+" (Documentation/filesystems/overlayfs.rst,
// "Specifying layers": Linux 6.8), so the one-page limit applies to each
// layer's path rather than to all of them together.
func (m Mount) fsmount(target string, f uintptr, data []string) (err error) {
	fd, err := unix.Fsopen(m.Type, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen %s: %w", m.Type, err)
	}
	defer unix.Close(fd)
	defer func() {
		if err != nil {
			err = withKernelLog(fd, err)
		}
	}()
	if err := unix.FsconfigSetString(fd, "source", m.Source); err != nil {
		return fmt.Errorf("fsconfig source=%s: %w", m.Source, err)
	}
	for _, d := range data {
		k, v, hasValue := strings.Cut(d, "=")
		switch {
		case k == "lowerdir":
			for dir := range strings.SplitSeq(v, ":") {
				if err := unix.FsconfigSetString(fd, "lowerdir+", dir); err != nil {
					if errors.Is(err, unix.EINVAL) && exists(dir) {
						// The key itself is unknown: Linux before 6.8.
						return fmt.Errorf("fsconfig lowerdir+: %w: %w", err, errNoLowerdirPlus)
					}
					return fmt.Errorf("fsconfig lowerdir+=%s: %w", dir, err)
				}
			}
		case hasValue:
			if err := unix.FsconfigSetString(fd, k, v); err != nil {
				return fmt.Errorf("fsconfig %s: %w", d, err)
			}
		default:
			if err := unix.FsconfigSetFlag(fd, k); err != nil {
				return fmt.Errorf("fsconfig %s: %w", k, err)
			}
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("create %s superblock: %w", m.Type, err)
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, attrs(f))
	if err != nil {
		return fmt.Errorf("fsmount %s: %w", m.Type, err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount %s to %s: %w", m.Type, target, err)
	}
	return nil
}

func exists(p string) bool {
	var st unix.Stat_t
	return unix.Stat(p, &st) == nil
}

// withKernelLog adds what the filesystem said about a failed fsconfig: the
// kernel queues its messages on the fs context fd ("e overlayfs: ...").
func withKernelLog(fd int, err error) error {
	buf := make([]byte, 1024)
	var msgs []string
	for range 8 {
		n, rerr := unix.Read(fd, buf)
		if rerr != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return err
	}
	return fmt.Errorf("%w (%s)", err, strings.Join(msgs, "; "))
}

// All mounts ms in order under target (each at target/m.Target). If one
// fails, the ones already mounted are unmounted again.
func All(ctx context.Context, ms []Mount, target string) error {
	for i, m := range ms {
		dst := filepath.Join(target, m.Target)
		log.From(ctx).Debug("mount", "type", m.Type, "source", m.Source, log.KeyPath, dst, "options", strings.Join(m.Options, ","))
		if err := m.Mount(dst); err != nil {
			for j := i - 1; j >= 0; j-- {
				if uerr := Unmount(filepath.Join(target, ms[j].Target)); uerr != nil {
					log.From(ctx).Warn("unmount after failed mount", log.KeyPath, target, log.KeyErr, uerr)
				}
			}
			return err
		}
	}
	return nil
}

// Unmount unmounts the topmost mount on target. It does not follow a
// symlink at target, so a path inside a container cannot redirect it.
func Unmount(target string) error {
	for range 50 {
		err := unix.Unmount(target, unix.UMOUNT_NOFOLLOW)
		if !errors.Is(err, unix.EBUSY) {
			if err != nil {
				return fmt.Errorf("unmount %s: %w", target, err)
			}
			return nil
		}
		// A file closed a moment ago may still pin the mount.
		unix.Nanosleep(&unix.Timespec{Nsec: 10_000_000}, nil)
	}
	if err := unix.Unmount(target, unix.UMOUNT_NOFOLLOW|unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}

// UnmountAll unmounts every mount stacked on target until none is left.
func UnmountAll(target string) error {
	for {
		err := unix.Unmount(target, unix.UMOUNT_NOFOLLOW)
		switch {
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil // not a mount point (any more)
		case err != nil:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
}

// WithTempMount mounts ms on a fresh temporary directory, calls fn with its
// path, then unmounts and removes the directory, whatever fn returns.
func WithTempMount(ctx context.Context, ms []Mount, fn func(root string) error) (err error) {
	dir, err := os.MkdirTemp("", "berth-mount-")
	if err != nil {
		return fmt.Errorf("temp mount dir: %w", err)
	}
	defer func() {
		if rerr := os.Remove(dir); rerr != nil && err == nil {
			err = fmt.Errorf("remove temp mount dir: %w", rerr)
		}
	}()
	if err := All(ctx, ms, dir); err != nil {
		return err
	}
	defer func() {
		for i := len(ms) - 1; i >= 0; i-- {
			if uerr := Unmount(filepath.Join(dir, ms[i].Target)); uerr != nil && err == nil {
				err = uerr
			}
		}
	}()
	return fn(dir)
}
