package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var propagationFlags = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// mountOption is one entry of mounts[].options: set or clear a flag.
type mountOption struct {
	clear bool
	flag  uintptr
}

var mountOptions = map[string]mountOption{
	"async": {true, unix.MS_SYNCHRONOUS}, "sync": {false, unix.MS_SYNCHRONOUS},
	"atime": {true, unix.MS_NOATIME}, "noatime": {false, unix.MS_NOATIME},
	"defaults": {false, 0},
	"dev":      {true, unix.MS_NODEV}, "nodev": {false, unix.MS_NODEV},
	"diratime": {true, unix.MS_NODIRATIME}, "nodiratime": {false, unix.MS_NODIRATIME},
	"dirsync": {false, unix.MS_DIRSYNC},
	"exec":    {true, unix.MS_NOEXEC}, "noexec": {false, unix.MS_NOEXEC},
	"mand": {false, unix.MS_MANDLOCK}, "nomand": {true, unix.MS_MANDLOCK},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"suid": {true, unix.MS_NOSUID}, "nosuid": {false, unix.MS_NOSUID},
	"remount": {false, unix.MS_REMOUNT},
	"bind":    {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
	"silent": {false, unix.MS_SILENT}, "loud": {true, unix.MS_SILENT},
	"iversion": {false, unix.MS_I_VERSION}, "noiversion": {true, unix.MS_I_VERSION},
	"lazytime": {false, unix.MS_LAZYTIME}, "nolazytime": {true, unix.MS_LAZYTIME},
}

// parsedMount is a spec mount turned into mount(2) arguments.
type parsedMount struct {
	flags uintptr
	prop  uintptr // propagation, applied by a second mount(2)
	data  string
	bind  bool
	rattr unix.MountAttr // recursive attributes (rro, rnosuid, ...)
}

// recursiveAttrs maps config.md's recursive mount options to
// mount_setattr attributes: set (true) or clear (false).
var recursiveAttrs = map[string]struct {
	attr uint64
	set  bool
}{
	"rro": {unix.MOUNT_ATTR_RDONLY, true}, "rrw": {unix.MOUNT_ATTR_RDONLY, false},
	"rnosuid": {unix.MOUNT_ATTR_NOSUID, true}, "rsuid": {unix.MOUNT_ATTR_NOSUID, false},
	"rnodev": {unix.MOUNT_ATTR_NODEV, true}, "rdev": {unix.MOUNT_ATTR_NODEV, false},
	"rnoexec": {unix.MOUNT_ATTR_NOEXEC, true}, "rexec": {unix.MOUNT_ATTR_NOEXEC, false},
	"rnodiratime": {unix.MOUNT_ATTR_NODIRATIME, true}, "rdiratime": {unix.MOUNT_ATTR_NODIRATIME, false},
	"rnosymfollow": {unix.MOUNT_ATTR_NOSYMFOLLOW, true}, "rsymfollow": {unix.MOUNT_ATTR_NOSYMFOLLOW, false},
	"rrelatime": {unix.MOUNT_ATTR_RELATIME, true}, "rnoatime": {unix.MOUNT_ATTR_NOATIME, true},
	"rstrictatime": {unix.MOUNT_ATTR_STRICTATIME, true},
}

func parseMountOptions(m specs.Mount) parsedMount {
	var p parsedMount
	var data []string
	for _, o := range m.Options {
		if f, ok := propagationFlags[o]; ok {
			p.prop |= f
			continue
		}
		if ra, ok := recursiveAttrs[o]; ok {
			switch {
			case ra.attr&unix.MOUNT_ATTR__ATIME != 0 || ra.attr == unix.MOUNT_ATTR_RELATIME && ra.set:
				// The atime mode is one field: clear it, then set it.
				p.rattr.Attr_clr |= unix.MOUNT_ATTR__ATIME
				p.rattr.Attr_set = p.rattr.Attr_set&^unix.MOUNT_ATTR__ATIME | ra.attr
			case ra.set:
				p.rattr.Attr_set |= ra.attr
				p.rattr.Attr_clr &^= ra.attr
			default:
				p.rattr.Attr_clr |= ra.attr
				p.rattr.Attr_set &^= ra.attr
			}
			continue
		}
		if mo, ok := mountOptions[o]; ok {
			if mo.clear {
				p.flags &^= mo.flag
			} else {
				p.flags |= mo.flag
			}
			continue
		}
		// rro, rnosuid... (recursive attributes) and idmap are not
		// supported; tmpcopyup is a runc extension. Anything else is data.
		data = append(data, o)
	}
	if m.Type == "bind" {
		p.flags |= unix.MS_BIND
	}
	p.bind = p.flags&unix.MS_BIND != 0
	p.data = strings.Join(data, ",")
	return p
}

// openInRoot opens path inside root, resolving every component as if root
// were "/": ".." and absolute symlinks cannot leave it (openat2
// RESOLVE_IN_ROOT). This is what keeps a hostile image from redirecting a
// mount destination onto the host (runc's CVE-2021-30465 class of bugs).
func openInRoot(rootfd int, path string, flags int) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	for {
		fd, err := unix.Openat2(rootfd, path, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// mkdirInRoot creates path (and its parents) inside root; the last
// component is a directory, or an empty file when file is true. It returns an
// O_PATH fd of the result.
func mkdirInRoot(rootfd int, path string, file bool) (int, error) {
	path = filepath.Clean("/" + path)
	if fd, err := openInRoot(rootfd, path, unix.O_PATH); err == nil {
		return fd, nil
	} else if !errors.Is(err, unix.ENOENT) {
		return -1, err
	}
	parent := filepath.Dir(path)
	pfd, err := mkdirInRoot(rootfd, parent, false)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	// pfd is O_PATH: go through a real directory fd to create in it.
	dfd, err := openInRoot(rootfd, parent, unix.O_DIRECTORY|unix.O_RDONLY)
	if err != nil {
		return -1, err
	}
	defer unix.Close(dfd)
	name := filepath.Base(path)
	if file {
		fd, err := unix.Openat(dfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, err
		}
		if err == nil {
			unix.Close(fd)
		}
	} else if err := unix.Mkdirat(dfd, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, err
	}
	return openInRoot(rootfd, path, unix.O_PATH)
}

func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// rootfsSetup prepares the container's root before pivot_root, in the
// init's new mount namespace.
type rootfsSetup struct {
	cfg    *initConfig
	rootfd int
}

func (r *rootfsSetup) prepare() error {
	s := r.cfg.Spec
	// Stop mounts we make from propagating back to the host (the default
	// is rslave, as runc); rootfsPropagation may ask for another mode.
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if p := s.Linux.RootfsPropagation; p != "" {
		prop = propagationFlags[p]
	}
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("set propagation of /: %w", err)
	}
	// pivot_root wants new_root to be a mount point whose parent mount is
	// not shared.
	if prop&unix.MS_SHARED != 0 {
		if mp := mountPointOf(r.cfg.Rootfs); mp != "" {
			if err := unix.Mount("", mp, "", unix.MS_PRIVATE, ""); err != nil {
				return fmt.Errorf("make %s private: %w", mp, err)
			}
		}
	}
	if err := unix.Mount(r.cfg.Rootfs, r.cfg.Rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs %s: %w", r.cfg.Rootfs, err)
	}
	fd, err := unix.Open(r.cfg.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	r.rootfd = fd
	for _, m := range s.Mounts {
		if err := r.mount(m); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Type, m.Destination, err)
		}
	}
	if err := r.devices(); err != nil {
		return err
	}
	return nil
}

func (r *rootfsSetup) mount(m specs.Mount) error {
	p := parseMountOptions(m)
	if m.Type == "cgroup" || m.Type == "cgroup2" {
		return r.mountCgroup(m, p)
	}
	src := m.Source
	isFile := false
	if p.bind {
		if !filepath.IsAbs(src) {
			src = filepath.Join(r.cfg.Bundle, src)
		}
		st, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("bind source: %w", err)
		}
		isFile = !st.IsDir()
	}
	dst, err := mkdirInRoot(r.rootfd, m.Destination, isFile)
	if err != nil {
		return fmt.Errorf("create destination: %w", err)
	}
	defer unix.Close(dst)
	target := fdPath(dst)
	if p.bind {
		if err := unix.Mount(src, target, "", p.flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
			return err
		}
		// A bind mount ignores other flags: remount to apply them. The
		// target is now the new mount, reached again through the fd's path.
		if rest := p.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); rest != 0 {
			nfd, err := openInRoot(r.rootfd, m.Destination, unix.O_PATH)
			if err != nil {
				return err
			}
			defer unix.Close(nfd)
			if err := remountBind(fdPath(nfd), rest); err != nil {
				return err
			}
		}
	} else {
		t := m.Type
		if t == "" {
			t = m.Source
		}
		if err := unix.Mount(m.Source, target, t, p.flags, p.data); err != nil {
			return err
		}
	}
	if p.rattr.Attr_set != 0 || p.rattr.Attr_clr != 0 {
		nfd, err := openInRoot(r.rootfd, m.Destination, unix.O_PATH)
		if err != nil {
			return err
		}
		defer unix.Close(nfd)
		// config.md's recursive options: mount_setattr(AT_RECURSIVE) sets
		// the attribute on the mount and every mount below it.
		if err := unix.MountSetattr(nfd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &p.rattr); err != nil {
			return fmt.Errorf("set recursive attributes: %w", err)
		}
	}
	if p.prop != 0 {
		nfd, err := openInRoot(r.rootfd, m.Destination, unix.O_PATH)
		if err != nil {
			return err
		}
		defer unix.Close(nfd)
		if err := unix.Mount("", fdPath(nfd), "", p.prop, ""); err != nil {
			return fmt.Errorf("set propagation: %w", err)
		}
	}
	return nil
}

// remountBind applies flags to an existing bind mount, keeping the flags
// the kernel locks on it (nosuid, nodev, noexec from a more privileged
// mount namespace, which EPERM otherwise).
func remountBind(target string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err == nil {
		for _, f := range [][2]uintptr{{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC}} {
			if uintptr(st.Flags)&f[0] != 0 {
				flags |= f[1]
			}
		}
	}
	if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|flags, ""); err != nil {
		return fmt.Errorf("remount %s: %w", target, err)
	}
	return nil
}

// mountCgroup mounts the cgroup filesystems. On a v2-only host that is one
// cgroup2 mount. On v1 and hybrid hosts it is a tmpfs holding one mount per
// hierarchy the init belongs to (and "unified" for the v2 one), as runc does;
// with a cgroup namespace each shows only the container's own subtree,
// without one the container's cgroup directories are bind-mounted.
func (r *rootfsSetup) mountCgroup(m specs.Mount, p parsedMount) error {
	dst, err := mkdirInRoot(r.rootfd, m.Destination, false)
	if err != nil {
		return fmt.Errorf("create destination: %w", err)
	}
	defer unix.Close(dst)
	flags := p.flags &^ (unix.MS_BIND | unix.MS_REC)
	if m.Type == "cgroup2" || isCgroup2Only() {
		return unix.Mount("cgroup2", fdPath(dst), "cgroup2", flags, "")
	}
	if err := unix.Mount("tmpfs", fdPath(dst), "tmpfs", flags&^unix.MS_RDONLY, "mode=755"); err != nil {
		return err
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return err
	}
	base := filepath.Join("/", m.Destination)
	for line := range strings.Lines(string(b)) {
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) != 3 {
			continue
		}
		ctrl, fstype, data := f[1], "cgroup", f[1]
		name := strings.TrimPrefix(ctrl, "name=")
		if ctrl == "" {
			if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers"); err != nil {
				continue
			}
			name, fstype, data = "unified", "cgroup2", ""
		}
		sub, err := mkdirInRoot(r.rootfd, filepath.Join(base, name), false)
		if err != nil {
			return err
		}
		if r.cfg.NewCgroupNS {
			err = unix.Mount("cgroup", fdPath(sub), fstype, flags, data)
		} else {
			src := r.cfg.Cgroups[ctrlKey(ctrl)]
			if src == "" {
				src = filepath.Join("/sys/fs/cgroup", name, f[2])
			}
			if err = unix.Mount(src, fdPath(sub), "", unix.MS_BIND|unix.MS_REC, ""); err == nil && flags != 0 {
				// Remount through a fresh fd: the old one names the
				// directory under the new mount.
				var nfd int
				if nfd, err = openInRoot(r.rootfd, filepath.Join(base, name), unix.O_PATH); err == nil {
					err = remountBind(fdPath(nfd), flags)
					unix.Close(nfd)
				}
			}
		}
		unix.Close(sub)
		if err != nil {
			return fmt.Errorf("mount cgroup %s: %w", name, err)
		}
		// cpu,cpuacct mounted as one hierarchy: link each name to it.
		if strings.Contains(name, ",") {
			dfd, err := openInRoot(r.rootfd, base, unix.O_DIRECTORY|unix.O_RDONLY)
			if err == nil {
				for _, c := range strings.Split(name, ",") {
					_ = unix.Symlinkat(name, dfd, c)
				}
				unix.Close(dfd)
			}
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		nfd, err := openInRoot(r.rootfd, m.Destination, unix.O_PATH)
		if err != nil {
			return err
		}
		defer unix.Close(nfd)
		return remountBind(fdPath(nfd), flags|unix.MS_RDONLY)
	}
	return nil
}

// ctrlKey maps a /proc/self/cgroup controller list to the key the cgroups
// manager uses in Paths(): the first controller, or "" for the unified one.
func ctrlKey(ctrl string) string {
	if i := strings.IndexByte(ctrl, ','); i >= 0 {
		return ctrl[:i]
	}
	return ctrl
}

func isCgroup2Only() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// mountPointOf returns the mount point holding path, from mountinfo.
func mountPointOf(path string) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	best := ""
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := f[4]
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	return best
}

type devNode struct {
	path         string
	major, minor uint32
	mode         uint32
}

// The devices every container gets (runtime-linux.md "Default Devices").
var defaultDevices = []devNode{
	{"/dev/null", 1, 3, 0o666}, {"/dev/zero", 1, 5, 0o666}, {"/dev/full", 1, 7, 0o666},
	{"/dev/random", 1, 8, 0o666}, {"/dev/urandom", 1, 9, 0o666}, {"/dev/tty", 5, 0, 0o666},
}

// devices populates /dev when the spec mounts something fresh there: the
// default devices, linux.devices, and the standard symlinks.
func (r *rootfsSetup) devices() error {
	devMounted := false
	for _, m := range r.cfg.Spec.Mounts {
		if filepath.Clean(m.Destination) == "/dev" && m.Type != "bind" {
			devMounted = true
		}
	}
	inUserNS := hasNSNew(r.cfg.Spec, specs.UserNamespace)
	old := unix.Umask(0)
	defer unix.Umask(old)
	if devMounted {
		for _, d := range defaultDevices {
			if err := r.mknod(d.path, unix.S_IFCHR|d.mode, d.major, d.minor, 0, 0, inUserNS); err != nil {
				return err
			}
		}
	}
	for _, d := range r.cfg.Spec.Linux.Devices {
		t := uint32(unix.S_IFCHR)
		switch d.Type {
		case "b":
			t = unix.S_IFBLK
		case "p":
			t = unix.S_IFIFO
		case "c", "u":
		default:
			return invalid("linux.devices: %s has unknown type %q", d.Path, d.Type)
		}
		mode := uint32(0o666)
		if d.FileMode != nil {
			mode = uint32(*d.FileMode) & 0o7777
		}
		var uid, gid uint32
		if d.UID != nil {
			uid = *d.UID
		}
		if d.GID != nil {
			gid = *d.GID
		}
		if err := r.mknod(d.Path, t|mode, uint32(d.Major), uint32(d.Minor), uid, gid, inUserNS); err != nil {
			return err
		}
	}
	if !devMounted {
		return nil
	}
	dfd, err := openInRoot(r.rootfd, "/dev", unix.O_DIRECTORY|unix.O_RDONLY)
	if err != nil {
		return fmt.Errorf("open /dev: %w", err)
	}
	defer unix.Close(dfd)
	links := [][2]string{{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"}}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	for _, l := range links {
		if err := unix.Symlinkat(l[0], dfd, l[1]); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink /dev/%s: %w", l[1], err)
		}
	}
	return nil
}

// mknod makes a device node inside the rootfs. In a user namespace mknod is
// not allowed, so the host's node is bind-mounted instead, as runc does.
func (r *rootfsSetup) mknod(path string, mode, major, minor, uid, gid uint32, bind bool) error {
	path = filepath.Clean("/" + path)
	if !strings.HasPrefix(path, "/dev/") {
		return invalid("device %s is not under /dev", path)
	}
	pfd, err := mkdirInRoot(r.rootfd, filepath.Dir(path), false)
	if err != nil {
		return fmt.Errorf("device %s: %w", path, err)
	}
	unix.Close(pfd)
	dfd, err := openInRoot(r.rootfd, filepath.Dir(path), unix.O_DIRECTORY|unix.O_RDONLY)
	if err != nil {
		return fmt.Errorf("device %s: %w", path, err)
	}
	defer unix.Close(dfd)
	name := filepath.Base(path)
	if bind {
		fd, err := unix.Openat(dfd, name, unix.O_CREAT|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return fmt.Errorf("device %s: %w", path, err)
		}
		defer unix.Close(fd)
		if err := unix.Mount(path, fdPath(fd), "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind device %s: %w", path, err)
		}
		return nil
	}
	_ = unix.Unlinkat(dfd, name, 0)
	if err := unix.Mknodat(dfd, name, mode, int(unix.Mkdev(major, minor))); err != nil {
		return fmt.Errorf("mknod %s: %w", path, err)
	}
	if uid != 0 || gid != 0 {
		if err := unix.Fchownat(dfd, name, int(uid), int(gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown %s: %w", path, err)
		}
	}
	return nil
}

// pivot makes the prepared rootfs the root. The old root is stacked under
// the new one by pivot_root(".", ".") and detached at once, so no directory
// is needed for it; it is made rslave first so the unmount cannot propagate
// to the host.
func (r *rootfsSetup) pivot() error {
	if r.cfg.NoPivot {
		if err := unix.Chdir(r.cfg.Rootfs); err != nil {
			return err
		}
		if err := unix.Mount(r.cfg.Rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move rootfs to /: %w", err)
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
		return unix.Chdir("/")
	}
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldroot)
	if err := unix.Chdir(r.cfg.Rootfs); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return err
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root rslave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// finish applies what must follow pivot_root: readonlyPaths, maskedPaths
// and a read-only root.
func finishRootfs(s *specs.Spec) error {
	for _, p := range s.Linux.ReadonlyPaths {
		if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return fmt.Errorf("readonly path %s: %w", p, err)
		}
		if err := remountBind(p, unix.MS_RDONLY); err != nil {
			return fmt.Errorf("readonly path %s: %w", p, err)
		}
	}
	for _, p := range s.Linux.MaskedPaths {
		err := unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
		if errors.Is(err, unix.ENOTDIR) {
			// A directory: hide it under an empty read-only tmpfs.
			err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "size=0k")
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("mask path %s: %w", p, err)
		}
	}
	if s.Root.Readonly {
		if err := remountBind("/", unix.MS_RDONLY); err != nil {
			return fmt.Errorf("make root read-only: %w", err)
		}
	}
	return nil
}

func hasNSNew(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	ns, ok := hasNS(s, t)
	return ok && ns.Path == ""
}
