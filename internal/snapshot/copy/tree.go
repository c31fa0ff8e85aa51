package copy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// copyTree copies the tree at src to dst (which must not exist) with every
// attribute a layer carries: ownership, mode bits, xattrs, times, hard
// links, symlinks (never followed), devices and fifos. Sockets are skipped.
func copyTree(ctx context.Context, src, dst string) error {
	links := map[uint64]string{} // inode → first copy, for hard links
	type dirTimes struct {
		path string
		ts   []unix.Timespec
	}
	var dirs []dirTimes
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		ts := []unix.Timespec{st.Atim, st.Mtim}
		typ := st.Mode & unix.S_IFMT
		if typ != unix.S_IFDIR && st.Nlink > 1 {
			if first, ok := links[st.Ino]; ok {
				return os.Link(first, target)
			}
			links[st.Ino] = target
		}
		switch typ {
		case unix.S_IFDIR:
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirTimes{target, ts})
		case unix.S_IFREG:
			if err := copyFile(p, target); err != nil {
				return err
			}
		case unix.S_IFLNK:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(l, target); err != nil {
				return err
			}
		case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
			if err := unix.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
				return fmt.Errorf("mknod %s: %w", target, err)
			}
		default:
			return nil // sockets belong to a running process, not a layer
		}
		// chown before chmod and xattrs: chown clears setuid bits and
		// file capabilities (chown(2)).
		if err := unix.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
			return fmt.Errorf("chown %s: %w", target, err)
		}
		if typ != unix.S_IFLNK {
			if err := unix.Chmod(target, st.Mode&0o7777); err != nil {
				return fmt.Errorf("chmod %s: %w", target, err)
			}
		}
		if err := copyXattrs(p, target); err != nil {
			return err
		}
		if typ != unix.S_IFDIR {
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("set times of %s: %w", target, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Directories last, deepest first: writing inside one changes its mtime.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, dirs[i].path, dirs[i].ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set times of %s: %w", dirs[i].path, err)
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	// *os.File to *os.File: copy_file_range(2), in the kernel.
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

func copyXattrs(src, dst string) error {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(src, buf)
	if errors.Is(err, unix.ERANGE) {
		sz, err2 := unix.Llistxattr(src, nil)
		if err2 != nil {
			return err2
		}
		buf = make([]byte, sz)
		n, err = unix.Llistxattr(src, buf)
	}
	if errors.Is(err, unix.ENOTSUP) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list xattrs of %s: %w", src, err)
	}
	for name := range strings.SplitSeq(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		sz, err := unix.Lgetxattr(src, name, nil)
		if err != nil {
			return fmt.Errorf("get xattr %s of %s: %w", name, src, err)
		}
		val := make([]byte, sz)
		sz, err = unix.Lgetxattr(src, name, val)
		if err != nil {
			return fmt.Errorf("get xattr %s of %s: %w", name, src, err)
		}
		if err := unix.Lsetxattr(dst, name, val[:sz], 0); err != nil {
			return fmt.Errorf("set xattr %s on %s: %w", name, dst, err)
		}
	}
	return nil
}
