package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
)

// Whiteouts says what Apply does with a layer's whiteout entries.
type Whiteouts int

const (
	// WhiteoutsOverlay writes them in overlayfs's form: ".wh.NAME" becomes
	// a 0/0 character device NAME, ".wh..wh..opq" the xattr
	// trusted.overlay.opaque=y on its directory. For a layer extracted into
	// its own overlay upper directory.
	WhiteoutsOverlay Whiteouts = iota + 1
	// WhiteoutsDelete removes what they name from the directory, which
	// already holds the parent layers (the copy snapshotter).
	WhiteoutsDelete
)

// Whiteout names, from the OCI image spec (layer.md, "Whiteouts").
const (
	WhiteoutPrefix = ".wh."
	WhiteoutOpaque = ".wh..wh..opq"
	whiteoutMeta   = ".wh..wh." // aufs bookkeeping (.wh..wh.plnk, ...)
)

// overlay's own xattrs; see Documentation/filesystems/overlayfs.rst.
const (
	overlayXattrPrefix = "trusted.overlay."
	overlayOpaqueXattr = "trusted.overlay.opaque"
)

// ApplyOptions controls Apply.
type ApplyOptions struct {
	// Whiteouts must be set: there is no safe default, as each form is
	// wrong for the other kind of directory.
	Whiteouts Whiteouts
	// DiffID, if set, is the expected sha256 of the uncompressed tar;
	// a mismatch is an error wrapping errdefs.ErrInvalidArgument. The
	// directory then holds untrusted content and the caller removes it.
	DiffID digest.Digest
}

// ApplyResult describes an applied layer.
type ApplyResult struct {
	DiffID digest.Digest // sha256 of the uncompressed tar stream
	Size   int64         // bytes of the uncompressed tar stream
}

// Compression is a layer's compression, as told by its first bytes.
type Compression int

const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

// DetectCompression tells a stream's compression from its magic number.
func DetectCompression(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return Gzip
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return Zstd
	}
	return Uncompressed
}

// Decompress returns the uncompressed stream of r, whatever of plain, gzip
// or zstd it is. Close releases the decoder, not r.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read layer header: %w", err)
	}
	switch DetectCompression(head) {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		return zr, nil
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

type countingHash struct {
	hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.Hash.Write(p)
}

// Apply extracts the layer tar in r into dir, which must exist. Nothing it
// writes lands outside dir, whatever the tar says. It returns the layer's
// diffID; on error dir may hold part of the layer and the caller discards
// it.
func Apply(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (ApplyResult, error) {
	res, err := apply(ctx, dir, r, opts)
	if err != nil {
		return res, fmt.Errorf("apply layer to %s: %w", dir, err)
	}
	return res, nil
}

func apply(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (ApplyResult, error) {
	if opts.Whiteouts != WhiteoutsOverlay && opts.Whiteouts != WhiteoutsDelete {
		return ApplyResult{}, fmt.Errorf("whiteout mode not set: %w", errdefs.ErrInvalidArgument)
	}
	rootfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("open destination: %w", err)
	}
	defer unix.Close(rootfd)

	dr, err := Decompress(r)
	if err != nil {
		return ApplyResult{}, err
	}
	defer dr.Close()
	h := &countingHash{Hash: sha256.New()}
	stream := io.TeeReader(dr, h)
	a := &applier{
		ctx:     ctx,
		root:    rootfd,
		mode:    opts.Whiteouts,
		written: map[string]bool{},
		cacheFd: -1,
		buf:     make([]byte, 256<<10),
	}
	defer a.dropCache()
	tr := tar.NewReader(stream)
	for {
		if err := ctx.Err(); err != nil {
			return ApplyResult{}, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return ApplyResult{}, fmt.Errorf("read tar: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		if err := a.entry(hdr, tr); err != nil {
			return ApplyResult{}, fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
	// The diffID covers the whole stream, including the zero blocks and
	// padding after the tar's end marker.
	if _, err := io.CopyBuffer(io.Discard, stream, a.buf); err != nil {
		return ApplyResult{}, fmt.Errorf("read layer: %w", err)
	}
	if err := a.finish(); err != nil {
		return ApplyResult{}, err
	}
	res := ApplyResult{DiffID: digest.NewDigest(digest.SHA256, h.Hash), Size: h.n}
	if opts.DiffID != "" && res.DiffID != opts.DiffID {
		return res, fmt.Errorf("diffID mismatch: layer has %s, expected %s: %w", res.DiffID, opts.DiffID, errdefs.ErrInvalidArgument)
	}
	return res, nil
}

type dirTimes struct {
	name         string
	atime, mtime time.Time
}

// applier holds the state of one Apply. Not safe for concurrent use.
type applier struct {
	ctx  context.Context
	root int // O_PATH descriptor of the destination
	mode Whiteouts
	// written holds every path this layer created, so an opaque
	// directory in delete mode keeps them.
	written map[string]bool
	dirs    []dirTimes
	// One open parent directory, reused while entries stay in it.
	cacheDir string
	cacheFd  int
	buf      []byte
}

func (a *applier) dropCache() {
	if a.cacheFd >= 0 {
		unix.Close(a.cacheFd)
	}
	a.cacheFd, a.cacheDir = -1, ""
}

// clean turns a tar name into a path relative to the root with no "..":
// "/a/../../b/" → "b", "./" → "".
func clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// resolveHow makes every lookup behave as if dir were "/" (openat2(2)):
// "..", absolute symlinks and symlinks to "../../x" all stay inside, and
// /proc magic links, which could jump anywhere, are refused. Extractors
// that joined paths as strings let layers write through symlinks and hard
// links onto the host (CVE-2014-6407, CVE-2014-9356).
var resolveHow = unix.OpenHow{
	Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
	Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
}

func (a *applier) openat2(rel string) (int, error) {
	for {
		fd, err := unix.Openat2(a.root, rel, &resolveHow)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue // RESOLVE_IN_ROOT retries when a rename raced the walk
		}
		return fd, err
	}
}

// dir returns a descriptor of the directory rel, resolved inside the root,
// creating missing directories (0755, root-owned) when create is set. The
// descriptor belongs to the cache: do not close it.
func (a *applier) dir(rel string, create bool) (int, error) {
	if rel == "" {
		return a.root, nil
	}
	if a.cacheFd >= 0 && a.cacheDir == rel {
		return a.cacheFd, nil
	}
	fd, err := a.openat2(rel)
	if errors.Is(err, unix.ENOENT) && create {
		fd, err = a.mkdirAll(rel)
	}
	if err != nil {
		return -1, fmt.Errorf("open directory %s: %w", rel, err)
	}
	a.dropCache()
	a.cacheDir, a.cacheFd = rel, fd
	return fd, nil
}

func (a *applier) mkdirAll(rel string) (int, error) {
	parent := a.root
	parts := strings.Split(rel, "/")
	for i := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		fd, err := a.openat2(prefix)
		if errors.Is(err, unix.ENOENT) {
			if err := unix.Mkdirat(parent, parts[i], 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				a.closeNotRoot(parent)
				return -1, err
			}
			fd, err = a.openat2(prefix)
		}
		a.closeNotRoot(parent)
		if err != nil {
			return -1, err
		}
		a.written[prefix] = true
		parent = fd
	}
	return parent, nil
}

func (a *applier) closeNotRoot(fd int) {
	if fd != a.root {
		unix.Close(fd)
	}
}

// procPath names base in the directory fd without following base if it is
// a symlink; the descriptor itself was resolved inside the root.
func procPath(fd int, base string) string {
	p := "/proc/self/fd/" + strconv.Itoa(fd)
	if base != "" {
		p += "/" + base
	}
	return p
}

func (a *applier) entry(hdr *tar.Header, body io.Reader) error {
	name := clean(hdr.Name)
	parent, base := path.Split(name)
	parent = strings.TrimSuffix(parent, "/")

	if strings.HasPrefix(base, WhiteoutPrefix) {
		return a.whiteout(parent, base)
	}
	if name == "" {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("only a directory may replace the root: %w", errdefs.ErrInvalidArgument)
		}
		return a.rootDir(hdr)
	}
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	case tar.TypeGNUSparse:
		// archive/tar fills the holes in as it reads: a regular file.
		hdr.Typeflag = tar.TypeReg
	default:
		return fmt.Errorf("unsupported tar entry type %q: %w", hdr.Typeflag, errdefs.ErrInvalidArgument)
	}
	pfd, err := a.dir(parent, true)
	if err != nil {
		return err
	}
	isDir, err := a.clear(pfd, name, hdr.Typeflag == tar.TypeDir)
	if err != nil {
		return err
	}
	a.written[name] = true

	switch hdr.Typeflag {
	case tar.TypeReg:
		return a.file(pfd, base, hdr, body)
	case tar.TypeDir:
		if !isDir {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return fmt.Errorf("mkdir: %w", err)
			}
		}
		a.dirs = append(a.dirs, dirTimes{name: name, atime: atime(hdr), mtime: hdr.ModTime})
		return a.attrs(pfd, base, hdr, false)
	case tar.TypeSymlink:
		// The target is stored as written; it is harmless because every
		// later lookup through it resolves inside the root.
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
		return a.attrs(pfd, base, hdr, true)
	case tar.TypeLink:
		return a.hardlink(pfd, base, hdr)
	default: // char, block, fifo
		mode := uint32(hdr.Mode & 0o7777)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode |= unix.S_IFCHR
		case tar.TypeBlock:
			mode |= unix.S_IFBLK
		default:
			mode |= unix.S_IFIFO
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(pfd, base, mode, int(dev)); err != nil {
			return fmt.Errorf("mknod: %w", err)
		}
		return a.attrs(pfd, base, hdr, false)
	}
}

// clear makes room for a new entry name, whose parent directory is pfd. An
// existing directory stays when the entry is a directory too (the layers'
// contents merge); anything else is removed.
func (a *applier) clear(pfd int, name string, wantDir bool) (isDir bool, err error) {
	base := path.Base(name)
	// A cached directory below what goes away (or was reached through a
	// symlink that goes away) is stale. pfd itself is name's parent, so
	// it never is.
	if strings.HasPrefix(a.cacheDir, name+"/") {
		a.dropCache()
	}
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("stat: %w", err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if wantDir {
			return true, nil
		}
		if err := os.RemoveAll(procPath(pfd, base)); err != nil {
			return false, fmt.Errorf("replace directory: %w", err)
		}
		return false, nil
	}
	if err := unix.Unlinkat(pfd, base, 0); err != nil {
		return false, fmt.Errorf("replace: %w", err)
	}
	return false, nil
}

func (a *applier) file(pfd int, base string, hdr *tar.Header, body io.Reader) error {
	// O_EXCL|O_NOFOLLOW: the name was just cleared; if anything appeared
	// there since, fail rather than write through it.
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	if _, err := io.CopyBuffer(struct{ io.Writer }{f}, body, a.buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("read body: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		return fmt.Errorf("write: %w", err)
	}
	// chown first: it clears setuid/setgid bits and file capabilities
	// (chown(2)), which the chmod and xattrs below then set for good.
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	for k, v := range xattrs(a.ctx, hdr) {
		if err := unix.Fsetxattr(fd, k, []byte(v), 0); err != nil {
			return fmt.Errorf("set xattr %s: %w", k, err)
		}
	}
	ts := []unix.Timespec{timespec(atime(hdr)), timespec(hdr.ModTime)}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return f.Close()
}

// attrs sets ownership, mode, xattrs and (except for directories, whose
// times are set last) times on base in pfd, never following base.
func (a *applier) attrs(pfd int, base string, hdr *tar.Header, symlink bool) error {
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if !symlink {
		// base is no symlink: it was just created, or checked to be a
		// directory, by this goroutine. fchmodat(2) would follow one,
		// chmod-ing a host file (CVE-2021-32760).
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	for k, v := range xattrs(a.ctx, hdr) {
		if err := unix.Lsetxattr(procPath(pfd, base), k, []byte(v), 0); err != nil {
			return fmt.Errorf("set xattr %s: %w", k, err)
		}
	}
	if hdr.Typeflag == tar.TypeDir {
		return nil
	}
	ts := []unix.Timespec{timespec(atime(hdr)), timespec(hdr.ModTime)}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func (a *applier) rootDir(hdr *tar.Header) error {
	p := procPath(a.root, "")
	if err := unix.Fchownat(a.root, "", hdr.Uid, hdr.Gid, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("chown root: %w", err)
	}
	if err := unix.Chmod(p, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod root: %w", err)
	}
	for k, v := range xattrs(a.ctx, hdr) {
		if err := unix.Setxattr(p, k, []byte(v), 0); err != nil {
			return fmt.Errorf("set xattr %s on root: %w", k, err)
		}
	}
	a.dirs = append(a.dirs, dirTimes{name: "", atime: atime(hdr), mtime: hdr.ModTime})
	return nil
}

func (a *applier) hardlink(pfd int, base string, hdr *tar.Header) error {
	target := clean(hdr.Linkname)
	tdir, tbase := path.Split(target)
	if tbase == "" {
		return fmt.Errorf("hard link to the root: %w", errdefs.ErrInvalidArgument)
	}
	// Resolve the target's directory inside the root too: a link
	// "x -> ../../etc/shadow" or through a symlinked directory must find
	// the file inside, never the host's. linkat(2) without
	// AT_SYMLINK_FOLLOW links a symlink itself, not what it points to.
	var tfd int
	var err error
	if tdir == "" {
		tfd, err = unix.Dup(a.root)
	} else {
		tfd, err = a.openat2(strings.TrimSuffix(tdir, "/"))
	}
	if err != nil {
		return fmt.Errorf("hard link target %s: %w", target, err)
	}
	defer unix.Close(tfd)
	if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
		return fmt.Errorf("hard link to %s: %w", target, err)
	}
	return nil
}

func (a *applier) whiteout(parent, base string) error {
	if base == WhiteoutOpaque {
		return a.opaque(parent)
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // aufs metadata, meaningless here
	}
	victim := strings.TrimPrefix(base, WhiteoutPrefix)
	if victim == "" || victim == "." || victim == ".." {
		return fmt.Errorf("whiteout names nothing: %w", errdefs.ErrInvalidArgument)
	}
	if a.mode == WhiteoutsOverlay {
		pfd, err := a.dir(parent, true)
		if err != nil {
			return err
		}
		if _, err := a.clear(pfd, path.Join(parent, victim), false); err != nil {
			return err
		}
		if err := unix.Mknodat(pfd, victim, unix.S_IFCHR, 0); err != nil {
			return fmt.Errorf("whiteout device: %w", err)
		}
		return nil
	}
	pfd, err := a.dir(parent, false)
	if errors.Is(err, unix.ENOENT) {
		return nil // nothing there to delete
	}
	if err != nil {
		return err
	}
	if _, err := a.clear(pfd, path.Join(parent, victim), false); err != nil {
		return err
	}
	return nil
}

func (a *applier) opaque(dir string) error {
	pfd, err := a.dir(dir, true)
	if err != nil {
		return err
	}
	if a.mode == WhiteoutsOverlay {
		if err := unix.Setxattr(procPath(pfd, ""), overlayOpaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("set opaque xattr: %w", err)
		}
		return nil
	}
	// Delete mode: everything below dir that this layer did not write
	// goes, whether the marker came before or after the layer's entries.
	fd, err := unix.Dup(pfd)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	a.dropCache()
	return a.pruneUnwritten(fd, dir)
}

func (a *applier) pruneUnwritten(fd int, dir string) error {
	// getdents needs a readable descriptor, not an O_PATH one.
	rfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s for listing: %w", dir, err)
	}
	f := os.NewFile(uintptr(rfd), dir)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	for _, n := range names {
		p := path.Join(dir, n)
		if !a.written[p] {
			if err := os.RemoveAll(procPath(fd, n)); err != nil {
				return fmt.Errorf("remove %s under opaque directory: %w", p, err)
			}
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		cfd, err := unix.Openat(fd, n, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		err = a.pruneUnwritten(cfd, p)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

// finish sets directories' times, deepest last-written first, now that
// nothing more is written inside them.
func (a *applier) finish() error {
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := a.dirs[i]
		ts := []unix.Timespec{timespec(d.atime), timespec(d.mtime)}
		if d.name == "" {
			if err := unix.UtimesNano(procPath(a.root, ""), ts); err != nil {
				return fmt.Errorf("set times of root: %w", err)
			}
			continue
		}
		parent, base := path.Split(d.name)
		pfd, err := a.dir(strings.TrimSuffix(parent, "/"), false)
		if err != nil {
			return err
		}
		if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set times of %s: %w", d.name, err)
		}
	}
	return nil
}

// xattrs returns the entry's extended attributes (PAX SCHILY.xattr.*),
// minus overlay's own: a layer must not forge opaque, redirect or metacopy
// markers, which would let it rewire the merged tree.
func xattrs(ctx context.Context, hdr *tar.Header) map[string]string {
	var out map[string]string
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if strings.HasPrefix(name, overlayXattrPrefix) {
			log.From(ctx).Debug("drop overlay xattr from layer", log.KeyPath, hdr.Name, "xattr", name)
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = v
	}
	return out
}

func atime(hdr *tar.Header) time.Time {
	if hdr.AccessTime.IsZero() {
		return hdr.ModTime
	}
	return hdr.AccessTime
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Sec: 0}
	}
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}
