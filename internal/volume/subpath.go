package volume

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
)

// Subpath returns a host path that shows only sub, a directory or file of
// volume name, for a container to bind. sub must be relative and must
// resolve inside the volume: "..", an absolute path, or a symlink that
// leads out of the volume is ErrInvalidArgument, and so is a sub that
// does not exist. The path returned is a pin (see doc.go): a bind mount
// of what sub resolved to now, which later renames or symlinks inside the
// volume cannot redirect. It stays until the volume is removed.
func (s *Store) Subpath(ctx context.Context, name, sub string) (string, error) {
	if err := checkSubpath(sub); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.get(name)
	if err != nil {
		return "", err
	}
	if err := s.remount(v); err != nil {
		return "", err
	}
	return s.pin(ctx, v, sub)
}

// checkSubpath refuses what cannot name something inside a volume before
// anything is opened: the resolution below would refuse it too, with a
// less telling error.
func checkSubpath(sub string) error {
	bad := func(why string) error {
		return fmt.Errorf("volume subpath %q: %s: %w", sub, why, errdefs.ErrInvalidArgument)
	}
	switch {
	case sub == "":
		return bad("empty")
	case filepath.IsAbs(sub):
		return bad("must be a relative path inside the volume")
	case strings.ContainsRune(sub, 0):
		return bad("contains a NUL byte")
	}
	for _, part := range strings.Split(sub, "/") {
		if part == ".." {
			return bad("must not contain \"..\"")
		}
	}
	return nil
}

// openBeneath opens sub under root with O_PATH. RESOLVE_BENEATH makes the
// kernel refuse (EXDEV) any step out of root, through ".." or a symlink,
// however the volume's content was arranged by a container that writes
// to it; RESOLVE_NO_MAGICLINKS refuses /proc/<pid>/fd-style links.
func openBeneath(root, sub string) (int, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open volume: %w", err)
	}
	defer unix.Close(rfd)
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	for {
		fd, err := unix.Openat2(rfd, sub, &how)
		switch {
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			continue // a rename raced the walk: the kernel asks to retry
		case errors.Is(err, unix.EXDEV):
			return -1, fmt.Errorf("volume subpath %q: resolves outside the volume: %w", sub, errdefs.ErrInvalidArgument)
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
			return -1, fmt.Errorf("volume subpath %q: does not exist in the volume: %w", sub, errdefs.ErrInvalidArgument)
		case errors.Is(err, unix.ELOOP):
			return -1, fmt.Errorf("volume subpath %q: too many symlinks: %w", sub, errdefs.ErrInvalidArgument)
		case err != nil:
			return -1, fmt.Errorf("volume subpath %q: %w", sub, err)
		}
		return fd, nil
	}
}

func pinsDir(dir, name string) string { return filepath.Join(dir, name, "pins") }

// pin resolves sub in v and binds the result at pins/<key>, key naming
// both sub and the inode found: a second container asking for the same,
// unchanged subpath shares the pin; a directory since replaced gets a new
// one, and the old pin stays what older containers were made with. The
// caller holds s.mu.
func (s *Store) pin(ctx context.Context, v Volume, sub string) (string, error) {
	fd, err := openBeneath(v.Mountpoint, sub)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", fmt.Errorf("volume subpath %q: %w", sub, err)
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if !isDir && st.Mode&unix.S_IFMT != unix.S_IFREG {
		return "", fmt.Errorf("volume subpath %q: not a directory or regular file: %w", sub, errdefs.ErrInvalidArgument)
	}
	sum := sha256.Sum256([]byte(sub))
	key := hex.EncodeToString(sum[:8]) + "-" + strconv.FormatUint(st.Dev, 16) + "-" + strconv.FormatUint(st.Ino, 16)
	pins := pinsDir(s.dir, v.Name)
	if err := os.Mkdir(pins, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("pin volume subpath: %w", err)
	}
	target := filepath.Join(pins, key)
	if isMountPoint(target) {
		var have unix.Stat_t
		if err := unix.Stat(target, &have); err == nil && have.Dev == st.Dev && have.Ino == st.Ino {
			return target, nil
		}
		if err := unmountAll(target); err != nil {
			return "", fmt.Errorf("pin volume subpath: %w", err)
		}
	}
	if err := bindFd(fd, target, isDir); err != nil {
		return "", fmt.Errorf("pin volume subpath %q: %w", sub, err)
	}
	if err := writeAtomic(target+".subpath", []byte(sub)); err != nil {
		_ = unmountAll(target)
		return "", fmt.Errorf("pin volume subpath %q: %w", sub, err)
	}
	log.From(ctx).Debug("volume: subpath pinned", "volume", v.Name, "subpath", sub, log.KeyPath, target)
	return target, nil
}

// bindFd binds what fd refers to on target, made as a directory or an
// empty file to match. Binding /proc/self/fd/N mounts the very inode
// resolved, with no second walk of the path.
func bindFd(fd int, target string, isDir bool) error {
	if isDir {
		if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	} else {
		f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		f.Close()
	}
	src := "/proc/self/fd/" + strconv.Itoa(fd)
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", target, err)
	}
	return nil
}

// repin binds again the pins of volume name that a reboot unmounted,
// resolving each one's subpath afresh. A subpath gone meanwhile leaves
// its pin empty (logged). The caller holds s.mu.
func (s *Store) repin(name string) {
	pins := pinsDir(s.dir, name)
	ents, err := os.ReadDir(pins)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, e := range ents {
		key, ok := strings.CutSuffix(e.Name(), ".subpath")
		if !ok {
			continue
		}
		target := filepath.Join(pins, key)
		if isMountPoint(target) {
			continue
		}
		sub, err := os.ReadFile(filepath.Join(pins, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := checkSubpath(string(sub)); err != nil {
			errs = append(errs, err)
			continue
		}
		fd, err := openBeneath(filepath.Join(s.dir, name, "_data"), string(sub))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		if err == nil {
			err = bindFd(fd, target, st.Mode&unix.S_IFMT == unix.S_IFDIR)
		}
		unix.Close(fd)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		log.From(context.Background()).Warn("volume: pin a subpath again", "volume", name, log.KeyErr, errors.Join(errs...))
	}
}

// unpinAll unmounts every pin of volume name. The caller holds s.mu.
func (s *Store) unpinAll(name string) error {
	pins := pinsDir(s.dir, name)
	ents, err := os.ReadDir(pins)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".subpath") {
			continue
		}
		if err := unmountAll(filepath.Join(pins, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
