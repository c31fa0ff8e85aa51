package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// WriteOverlayDiff writes the overlay upper directory upper as a layer tar
// to w: overlay's whiteouts (0/0 character devices) become ".wh.NAME"
// entries, opaque directories get a ".wh..wh..opq" entry, and overlay's own
// xattrs are left out. It assumes the overlay ran without metacopy and
// redirect_dir, which berth never enables: with them an upper file can be
// a stub whose data lives below.
func WriteOverlayDiff(ctx context.Context, w io.Writer, upper string) error {
	dw := newDiffWriter(w)
	if err := dw.overlay(ctx, upper, ""); err != nil {
		return fmt.Errorf("write diff of %s: %w", upper, err)
	}
	if err := dw.tw.Close(); err != nil {
		return fmt.Errorf("write diff of %s: %w", upper, err)
	}
	return nil
}

// WriteDiff writes to w, as a layer tar, what changed from the tree lower
// to the tree upper: new and changed entries, and a ".wh.NAME" whiteout
// for each entry of lower that upper lacks. lower may be "" for an empty
// tree. A file counts as changed when its type, mode, owner, size, mtime,
// device number or link target differ (content is not read: the copy
// snapshotter preserves mtimes, and any write changes it).
func WriteDiff(ctx context.Context, w io.Writer, lower, upper string) error {
	dw := newDiffWriter(w)
	if err := dw.compare(ctx, lower, upper, "", lower != ""); err != nil {
		return fmt.Errorf("write diff of %s against %s: %w", upper, lower, err)
	}
	if err := dw.tw.Close(); err != nil {
		return fmt.Errorf("write diff of %s: %w", upper, err)
	}
	return nil
}

type diffWriter struct {
	tw    *tar.Writer
	links map[[2]uint64]string // (dev, ino) → first name, for hard links
}

func newDiffWriter(w io.Writer) *diffWriter {
	return &diffWriter{tw: tar.NewWriter(w), links: map[[2]uint64]string{}}
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	slices.Sort(names)
	return names, err
}

func (d *diffWriter) overlay(ctx context.Context, upper, rel string) error {
	names, err := readDirNames(filepath.Join(upper, rel))
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		r := path.Join(rel, n)
		p := filepath.Join(upper, r)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			if err := d.whiteout(path.Join(rel, WhiteoutPrefix+n)); err != nil {
				return err
			}
			continue
		}
		if err := d.add(p, r, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		buf := make([]byte, 4)
		if n, err := unix.Lgetxattr(p, overlayOpaqueXattr, buf); err == nil && string(buf[:n]) == "y" {
			if err := d.whiteout(path.Join(r, WhiteoutOpaque)); err != nil {
				return err
			}
		}
		if err := d.overlay(ctx, upper, r); err != nil {
			return err
		}
	}
	return nil
}

// compare walks upper's directory rel. lowerHas says lower/rel is a real
// directory (not reached through a symlink), so lower's entries there can
// be looked at without leaving lower.
func (d *diffWriter) compare(ctx context.Context, lower, upper, rel string, lowerHas bool) error {
	names, err := readDirNames(filepath.Join(upper, rel))
	if err != nil {
		return err
	}
	var lowerNames []string
	if lowerHas {
		if lowerNames, err = readDirNames(filepath.Join(lower, rel)); err != nil {
			return err
		}
	}
	for _, n := range lowerNames {
		if _, found := slices.BinarySearch(names, n); !found {
			if err := d.whiteout(path.Join(rel, WhiteoutPrefix+n)); err != nil {
				return err
			}
		}
	}
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		r := path.Join(rel, n)
		p := filepath.Join(upper, r)
		var st, lst unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		inLower := false
		if _, found := slices.BinarySearch(lowerNames, n); found {
			if err := unix.Lstat(filepath.Join(lower, r), &lst); err != nil {
				return err
			}
			inLower = true
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if !inLower || changed(&st, &lst, p, filepath.Join(lower, r)) {
			if err := d.add(p, r, &st); err != nil {
				return err
			}
		}
		if isDir {
			if err := d.compare(ctx, lower, upper, r, inLower && lst.Mode&unix.S_IFMT == unix.S_IFDIR); err != nil {
				return err
			}
		}
	}
	return nil
}

func changed(a, b *unix.Stat_t, pa, pb string) bool {
	if a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid {
		return true
	}
	switch a.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return a.Mtim != b.Mtim
	case unix.S_IFLNK:
		la, _ := os.Readlink(pa)
		lb, _ := os.Readlink(pb)
		return la != lb
	case unix.S_IFCHR, unix.S_IFBLK:
		return a.Rdev != b.Rdev
	}
	return a.Size != b.Size || a.Mtim != b.Mtim
}

func (d *diffWriter) whiteout(name string) error {
	return d.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, ModTime: time.Unix(0, 0)})
}

// add writes the entry at p, named rel in the tar, with its attributes.
func (d *diffWriter) add(p, rel string, st *unix.Stat_t) error {
	h := &tar.Header{
		Name:    rel,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
	}
	typ := st.Mode & unix.S_IFMT
	if typ != unix.S_IFDIR && st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := d.links[key]; ok {
			h.Typeflag, h.Linkname = tar.TypeLink, first
			return d.tw.WriteHeader(h)
		}
		d.links[key] = rel
	}
	switch typ {
	case unix.S_IFDIR:
		h.Typeflag, h.Name = tar.TypeDir, rel+"/"
	case unix.S_IFREG:
		h.Typeflag, h.Size = tar.TypeReg, st.Size
	case unix.S_IFLNK:
		l, err := os.Readlink(p)
		if err != nil {
			return err
		}
		h.Typeflag, h.Linkname = tar.TypeSymlink, l
	case unix.S_IFCHR, unix.S_IFBLK:
		h.Typeflag = tar.TypeChar
		if typ == unix.S_IFBLK {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	default:
		return nil // sockets are not part of a layer
	}
	x, err := readXattrs(p)
	if err != nil {
		return err
	}
	for k, v := range x {
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords["SCHILY.xattr."+k] = v
	}
	if err := d.tw.WriteHeader(h); err != nil {
		return err
	}
	if typ != unix.S_IFREG {
		return nil
	}
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyN(d.tw, f, st.Size); err != nil {
		return fmt.Errorf("%s changed while being read: %w", rel, err)
	}
	return nil
}

// readXattrs returns p's xattrs, minus overlay's own.
func readXattrs(p string) (map[string]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if errors.Is(err, unix.ENOTSUP) || sz == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list xattrs of %s: %w", p, err)
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, fmt.Errorf("list xattrs of %s: %w", p, err)
	}
	var out map[string]string
	for name := range strings.SplitSeq(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		if name == "" || strings.HasPrefix(name, overlayXattrPrefix) {
			continue
		}
		vsz, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, fmt.Errorf("get xattr %s of %s: %w", name, p, err)
		}
		val := make([]byte, vsz)
		vsz, err = unix.Lgetxattr(p, name, val)
		if err != nil {
			return nil, fmt.Errorf("get xattr %s of %s: %w", name, p, err)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = string(val[:vsz])
	}
	return out, nil
}
