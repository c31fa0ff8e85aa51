package daemon

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	containertypes "github.com/moby/moby/api/types/container"
	evtypes "github.com/moby/moby/api/types/events"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/unpack"
)

// Files of a container, for cp, export, diff and commit. Paths inside a
// container are resolved with openat2(RESOLVE_IN_ROOT) from a descriptor
// of its root, and trees are walked one component at a time with
// O_NOFOLLOW from a parent descriptor: a running container cannot swap a
// directory for a symlink and make the engine read or write host files
// (CVE-2018-15664 was that race in docker cp).

// containerRoot gives fn a descriptor of the container's filesystem: a
// running container's own view (/proc/<pid>/root: with its volumes and
// binds), else its root filesystem, mounted for the call. withMounts
// false always uses the root filesystem alone (export).
func (e *Engine) containerRoot(ctx context.Context, ref string, withMounts bool, fn func(rootfd int, r *container.Record) error) error {
	ct, c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	ct.Lock()
	r := ct.R()
	if r.State.Status == container.Removing || r.State.Status == container.Dead {
		ct.Unlock()
		return fmt.Errorf("container %s is marked for removal: %w", r.ID, errdefs.ErrConflict)
	}
	l := c.liveOf(r.ID)
	if r.State.IsRunning() {
		dir := l.mounted
		if withMounts {
			dir = "/proc/" + strconv.Itoa(r.State.Pid) + "/root"
		}
		rec := *r
		ct.Unlock()
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("container %s: open root: %w", rec.ID, err)
		}
		defer unix.Close(fd)
		return fn(fd, &rec)
	}
	defer ct.Unlock()
	return e.withRootfs(ctx, c, r, func(root string) error {
		fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("container %s: open root: %w", r.ID, err)
		}
		defer unix.Close(fd)
		return fn(fd, r)
	})
}

// openInRoot opens p (absolute in the container) below rootfd; no
// component, symlinks included, may resolve outside it.
func openInRoot(rootfd int, p string, flags uint64) (int, error) {
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	for {
		fd, err := unix.Openat2(rootfd, rel, &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue // a rename raced the lookup
		}
		return fd, err
	}
}

// statIn lstats p in the container: its parent resolved in the root,
// the last component not followed.
func statIn(rootfd int, p string) (unix.Stat_t, string, error) {
	var st unix.Stat_t
	clean := path.Clean("/" + p)
	if clean == "/" {
		err := unix.Fstat(rootfd, &st)
		return st, "", err
	}
	pfd, err := openInRoot(rootfd, path.Dir(clean), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return st, "", err
	}
	defer unix.Close(pfd)
	base := path.Base(clean)
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return st, "", err
	}
	link := ""
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(pfd, base, buf)
		if err != nil {
			return st, "", err
		}
		link = string(buf[:n])
	}
	return st, link, nil
}

func notInContainer(p, id string, err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("Could not find the file %s in container %s: %w", p, id, errdefs.ErrNotFound) //nolint:staticcheck // docker's words
	}
	return fmt.Errorf("container %s: %s: %w", id, p, err)
}

func pathStat(p string, st unix.Stat_t, link string) containertypes.PathStat {
	name := path.Base(path.Clean("/" + p))
	return containertypes.PathStat{
		Name: name, Size: st.Size, Mode: fileMode(st.Mode),
		Mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec), LinkTarget: link,
	}
}

// fileMode converts a st_mode to Go's FileMode, as os.Lstat does.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// ContainerStatPath is HEAD /containers/{id}/archive: a path's stat.
func (e *Engine) ContainerStatPath(ctx context.Context, ref, p string) (containertypes.PathStat, error) {
	var out containertypes.PathStat
	err := e.containerRoot(ctx, ref, true, func(rootfd int, r *container.Record) error {
		st, link, err := statIn(rootfd, p)
		if err != nil {
			return notInContainer(p, r.ID, err)
		}
		out = pathStat(p, st, link)
		return nil
	})
	return out, err
}

// ContainerArchive is GET /containers/{id}/archive: a tar of p (named by
// its base name) and p's stat. The tar is built before it is returned,
// into a temporary file, so the container is not held while the client
// reads.
func (e *Engine) ContainerArchive(ctx context.Context, ref, p string) (io.ReadCloser, containertypes.PathStat, error) {
	var stat containertypes.PathStat
	tmp, err := os.CreateTemp("", "berth-cp-*.tar")
	if err != nil {
		return nil, stat, err
	}
	os.Remove(tmp.Name())
	err = e.containerRoot(ctx, ref, true, func(rootfd int, r *container.Record) error {
		st, link, err := statIn(rootfd, p)
		if err != nil {
			return notInContainer(p, r.ID, err)
		}
		stat = pathStat(p, st, link)
		clean := path.Clean("/" + p)
		name := path.Base(clean)
		if clean == "/" {
			name = "."
		}
		tw := tar.NewWriter(tmp)
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			fd, err := openInRoot(rootfd, clean, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
			if err != nil {
				return notInContainer(p, r.ID, err)
			}
			err = writeTree(ctx, tw, fd, name, &st)
			unix.Close(fd)
			if err != nil {
				return err
			}
		} else {
			pfd, err := openInRoot(rootfd, path.Dir(clean), unix.O_PATH|unix.O_DIRECTORY)
			if err != nil {
				return notInContainer(p, r.ID, err)
			}
			err = writeEntry(tw, pfd, path.Base(clean), name, &st)
			unix.Close(pfd)
			if err != nil {
				return err
			}
		}
		if err := tw.Close(); err != nil {
			return err
		}
		e.emitContainer(ctx, evtypes.ActionArchivePath, r, map[string]string{"path": p})
		return nil
	})
	if err != nil {
		tmp.Close()
		return nil, stat, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		tmp.Close()
		return nil, stat, err
	}
	return tmp, stat, nil
}

// writeTree writes the directory open as dirfd, named name in the tar, and
// everything below it, never following a symlink.
func writeTree(ctx context.Context, tw *tar.Writer, dirfd int, name string, st *unix.Stat_t) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if name != "" && name != "." {
		if err := tw.WriteHeader(header(name+"/", st, "")); err != nil {
			return err
		}
	}
	// Read names through a dup, so closing f leaves dirfd to the caller.
	dup, err := unix.Dup(dirfd)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(dup), name)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		var cst unix.Stat_t
		if err := unix.Fstatat(dirfd, n, &cst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // removed meanwhile
			}
			return err
		}
		child := path.Join(name, n)
		if name == "" || name == "." {
			child = n
		}
		if cst.Mode&unix.S_IFMT == unix.S_IFDIR {
			cfd, err := unix.Openat(dirfd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				if errors.Is(err, unix.ENOENT) {
					continue
				}
				return err
			}
			err = writeTree(ctx, tw, cfd, child, &cst)
			unix.Close(cfd)
			if err != nil {
				return err
			}
			continue
		}
		if err := writeEntry(tw, dirfd, n, child, &cst); err != nil {
			return err
		}
	}
	return nil
}

// writeEntry writes the non-directory base (in the directory pfd) as name.
func writeEntry(tw *tar.Writer, pfd int, base, name string, st *unix.Stat_t) error {
	link := ""
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(pfd, base, buf)
		if err != nil {
			return err
		}
		link = string(buf[:n])
	case unix.S_IFSOCK:
		return nil
	}
	h := header(name, st, link)
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return tw.WriteHeader(h)
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	// A file that shrank meanwhile is padded, one that grew cut: the
	// header already promised st.Size bytes.
	n, err := io.CopyN(tw, f, st.Size)
	if errors.Is(err, io.EOF) {
		_, err = io.CopyN(tw, zeroReader{}, st.Size-n)
	}
	return err
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func header(name string, st *unix.Stat_t, link string) *tar.Header {
	h := &tar.Header{
		Name: name, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0), Format: tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		h.Typeflag = tar.TypeDir
	case unix.S_IFREG:
		h.Typeflag, h.Size = tar.TypeReg, st.Size
	case unix.S_IFLNK:
		h.Typeflag, h.Linkname = tar.TypeSymlink, link
	case unix.S_IFCHR, unix.S_IFBLK:
		h.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	}
	return h
}

// ContainerExtractOptions are PUT /containers/{id}/archive's.
type ContainerExtractOptions struct {
	NoOverwriteDirNonDir, CopyUIDGID bool
}

// ContainerExtract is PUT /containers/{id}/archive: the tar's contents
// unpacked into the directory p of the container.
func (e *Engine) ContainerExtract(ctx context.Context, ref, p string, opts ContainerExtractOptions, tr io.Reader) error {
	return e.containerRoot(ctx, ref, true, func(rootfd int, r *container.Record) error {
		if r.HostConfig.ReadonlyRootfs {
			return fmt.Errorf("container rootfs is marked read-only: %w", errdefs.ErrForbidden)
		}
		fd, err := openInRoot(rootfd, p, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			if errors.Is(err, unix.ENOTDIR) {
				return fmt.Errorf("extraction point is not a directory: %w", errdefs.ErrInvalidArgument)
			}
			return notInContainer(p, r.ID, err)
		}
		defer unix.Close(fd)
		// /proc/self/fd/N names exactly the directory resolved above:
		// Apply opens it without walking any path inside the container.
		dir := "/proc/self/fd/" + strconv.Itoa(fd)
		if _, err := archive.Apply(ctx, dir, tr, archive.ApplyOptions{Whiteouts: archive.WhiteoutsDelete}); err != nil {
			return fmt.Errorf("extract to %s in %s: %v: %w", p, r.ID, err, errdefs.ErrInvalidArgument)
		}
		e.emitContainer(ctx, evtypes.ActionExtractToDir, r, map[string]string{"path": p})
		return nil
	})
}

// ContainerExport writes the container's root filesystem (the image and
// its changes, without volumes) as a tar to out.
func (e *Engine) ContainerExport(ctx context.Context, ref string, out io.Writer) error {
	return e.containerRoot(ctx, ref, false, func(rootfd int, r *container.Record) error {
		fd, err := openInRoot(rootfd, "/", unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		tw := tar.NewWriter(out)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		if err := writeTree(ctx, tw, fd, "", &st); err != nil {
			return fmt.Errorf("export %s: %w", r.ID, err)
		}
		if err := tw.Close(); err != nil {
			return err
		}
		e.emitContainer(ctx, evtypes.ActionExport, r, nil)
		return nil
	})
}

// ContainerChanges is docker diff: what the writable layer added (A),
// changed (C) and deleted (D), by path.
func (e *Engine) ContainerChanges(ctx context.Context, ref string) ([]containertypes.FilesystemChange, error) {
	ct, _, err := e.lookup(ref)
	if err != nil {
		return nil, err
	}
	r := ct.Snapshot()
	info, err := e.snaps.Stat(ctx, r.SnapshotKey)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := unpack.Diff(ctx, e.snaps, r.SnapshotKey, pw)
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	var changes []containertypes.FilesystemChange
	tr := tar.NewReader(pr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("diff %s: %w", r.ID, err)
		}
		p := "/" + strings.TrimSuffix(path.Clean(h.Name), "/")
		base := path.Base(p)
		switch {
		case base == archive.WhiteoutOpaque:
			continue
		case strings.HasPrefix(base, archive.WhiteoutPrefix):
			changes = append(changes, containertypes.FilesystemChange{Kind: containertypes.ChangeDelete, Path: path.Join(path.Dir(p), strings.TrimPrefix(base, archive.WhiteoutPrefix))})
		default:
			changes = append(changes, containertypes.FilesystemChange{Kind: containertypes.ChangeAdd, Path: p})
		}
	}
	// Added or modified: it is a modification if the image has the path.
	if info.Parent != "" {
		vkey := fmt.Sprintf("changes-%s-%d", r.ID, time.Now().UnixNano())
		ms, err := e.snaps.View(ctx, vkey, info.Parent)
		if err != nil {
			return nil, err
		}
		defer func() { _ = e.snaps.Remove(context.WithoutCancel(ctx), vkey) }()
		check := func(lower string) error {
			for i, c := range changes {
				if c.Kind != containertypes.ChangeAdd {
					continue
				}
				if _, err := os.Lstat(filepath.Join(lower, c.Path)); err == nil {
					changes[i].Kind = containertypes.ChangeModify
				}
			}
			return nil
		}
		if len(ms) == 1 && ms[0].Type == "bind" {
			err = check(ms[0].Source)
		} else {
			err = mount.WithTempMount(ctx, ms, check)
		}
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(changes, func(a, b containertypes.FilesystemChange) int { return strings.Compare(a.Path, b.Path) })
	return hideMountpoints(changes, &r), nil
}

// hideMountpoints drops what the container's mounts made in the writable
// layer: the empty files and directories the runtime creates as mount
// targets (/etc/hosts, volumes), and a directory shown as changed only
// because of them. docker keeps these in a separate init layer.
func hideMountpoints(changes []containertypes.FilesystemChange, r *container.Record) []containertypes.FilesystemChange {
	targets := map[string]bool{"/etc/hostname": true, "/etc/hosts": true, "/etc/resolv.conf": true, "/dev": true, "/proc": true, "/sys": true}
	for _, m := range r.Mounts {
		targets[m.Destination] = true
	}
	for d := range r.HostConfig.Tmpfs {
		targets[d] = true
	}
	hidden := map[string]bool{}
	var kept []containertypes.FilesystemChange
	for _, c := range changes {
		if c.Kind == containertypes.ChangeAdd && targets[c.Path] {
			hidden[c.Path] = true
			continue
		}
		kept = append(kept, c)
	}
	out := kept[:0]
	for i, c := range kept {
		if c.Kind == containertypes.ChangeModify && hasHiddenChild(hidden, c.Path) && !hasChild(kept[i+1:], c.Path) {
			continue
		}
		out = append(out, c)
	}
	return out
}

func hasHiddenChild(hidden map[string]bool, dir string) bool {
	for p := range hidden {
		if path.Dir(p) == dir {
			return true
		}
	}
	return false
}

// hasChild says whether sorted (by path, after dir) holds a path below dir.
func hasChild(sorted []containertypes.FilesystemChange, dir string) bool {
	for _, c := range sorted {
		if strings.HasPrefix(c.Path, dir+"/") {
			return true
		}
	}
	return false
}

// ContainerCommitOptions are docker commit's.
type ContainerCommitOptions struct {
	Container, Reference, Comment, Author string
	// Pause freezes a running container while its layer is read.
	Pause bool
	// Changes are Dockerfile instructions applied to the new config.
	Changes []string
	// Config, if set, is merged over the container's configuration.
	Config *containertypes.Config
}

// ContainerCommitResult names the new image.
type ContainerCommitResult struct {
	ID digest.Digest
}

// ContainerCommit makes an image of the container's image plus its
// writable layer, configured as the container is (with Changes).
func (e *Engine) ContainerCommit(ctx context.Context, opts ContainerCommitOptions) (res ContainerCommitResult, err error) {
	ct, c, err := e.lookup(opts.Container)
	if err != nil {
		return res, err
	}
	var tag string
	if opts.Reference != "" {
		t, err := image.ParseTag(opts.Reference)
		if err != nil {
			return res, err
		}
		tag = t.String()
	}
	r := ct.Snapshot()
	base, err := e.images.Get(ctx, digest.Digest(r.Image))
	if err != nil {
		return res, fmt.Errorf("commit %s: image %s: %w", r.ID, r.Image, err)
	}
	bcfg, err := e.config(ctx, base)
	if err != nil {
		return res, err
	}
	if opts.Pause && r.State.Status == container.Running {
		if rc, err := c.rt.Load(ctx, r.ID); err == nil && rc.Pause(ctx) == nil {
			defer func() {
				if err := rc.Resume(context.WithoutCancel(ctx)); err != nil {
					log.From(ctx).Warn("commit: resume", log.KeyContainer, r.ID, log.KeyErr, err)
				}
			}()
		}
	}
	cfg := ocispec.Image{
		Platform: bcfg.Platform,
		Author:   opts.Author,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: slices.Clone(bcfg.RootFS.DiffIDs)},
		History:  slices.Clone(bcfg.History),
	}
	cc := *r.Config
	if opts.Config != nil {
		mergeCommitConfig(&cc, opts.Config)
	}
	cfg.Config = ocispec.ImageConfig{
		User: cc.User, Env: cc.Env, Entrypoint: cc.Entrypoint, Cmd: cc.Cmd, WorkingDir: cc.WorkingDir,
		Labels: cc.Labels, StopSignal: cc.StopSignal,
	}
	for p := range cc.ExposedPorts {
		if cfg.Config.ExposedPorts == nil {
			cfg.Config.ExposedPorts = map[string]struct{}{}
		}
		cfg.Config.ExposedPorts[p.String()] = struct{}{}
	}
	for v := range cc.Volumes {
		if cfg.Config.Volumes == nil {
			cfg.Config.Volumes = map[string]struct{}{}
		}
		cfg.Config.Volumes[v] = struct{}{}
	}
	if err := image.ApplyChanges(&cfg.Config, opts.Changes); err != nil {
		return res, fmt.Errorf("commit: %w", err)
	}
	release := e.images.Hold()
	held := true
	defer func() {
		if held {
			release()
		}
		if err != nil {
			if _, cerr := e.collect(context.WithoutCancel(ctx)); cerr != nil {
				log.From(ctx).Warn("commit: clean up after failure", log.KeyErr, cerr)
			}
		}
	}()
	pr, pw := io.Pipe()
	go func() {
		_, err := unpack.Diff(ctx, e.snaps, r.SnapshotKey, pw)
		pw.CloseWithError(err)
	}()
	layer, diffID, err := e.storeLayer(ctx, pr)
	pr.Close()
	if err != nil {
		return res, fmt.Errorf("commit %s: %w", r.ID, err)
	}
	now := time.Now().UTC()
	cfg.Created = &now
	cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
	cfg.History = append(cfg.History, ocispec.History{Created: &now, Author: opts.Author, Comment: opts.Comment, CreatedBy: strings.TrimSpace(r.Path + " " + strings.Join(r.Args, " "))})
	var layers []ocispec.Descriptor
	for _, l := range base.Layers {
		layers = append(layers, l.Blob)
	}
	layers = append(layers, layer)
	rec, err := image.NewImage(ctx, e.content, cfg, nil, layers)
	if err != nil {
		return res, fmt.Errorf("commit: %w", err)
	}
	for i := range base.Layers {
		rec.Layers[i].Size = base.Layers[i].Size
	}
	rec.Layers[len(rec.Layers)-1].Size = layer.Size
	if tag != "" {
		rec.RepoTags = []string{tag}
	}
	if rec, err = e.unpack(ctx, rec); err != nil {
		return res, fmt.Errorf("commit: %w", err)
	}
	if rec, err = e.images.Put(ctx, rec); err != nil {
		return res, fmt.Errorf("commit: %w", err)
	}
	release()
	held = false
	e.emitContainer(ctx, evtypes.ActionCommit, &r, map[string]string{"comment": opts.Comment, "imageID": rec.ID.String()})
	return ContainerCommitResult{ID: rec.ID}, nil
}

// mergeCommitConfig lays the config given to commit over the container's.
func mergeCommitConfig(dst, src *containertypes.Config) {
	if src.User != "" {
		dst.User = src.User
	}
	if len(src.Cmd) > 0 {
		dst.Cmd = src.Cmd
	}
	if src.Entrypoint != nil {
		dst.Entrypoint = src.Entrypoint
	}
	if len(src.Env) > 0 {
		dst.Env = mergeEnv(dst.Env, src.Env)
	}
	if src.WorkingDir != "" {
		dst.WorkingDir = src.WorkingDir
	}
	for k, v := range src.Labels {
		if dst.Labels == nil {
			dst.Labels = map[string]string{}
		}
		dst.Labels[k] = v
	}
	if src.StopSignal != "" {
		dst.StopSignal = src.StopSignal
	}
}
