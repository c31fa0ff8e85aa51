package build

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
)

// openIn opens p below rootfd with every component, symlinks included,
// resolved inside the root: an image's /app -> /../../etc symlink cannot
// make COPY write on the host (the same guard as docker cp; see
// CVE-2018-15664 for what a path walked outside the root costs).
func openIn(rootfd int, p string, flags uint64) (int, error) {
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	for {
		fd, err := unix.Openat2(rootfd, rel, &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		return fd, err
	}
}

// mkdirAllIn makes directory p (and its missing parents) inside rootfd,
// new ones 0755 and owned by own (docker's MkdirAllAndChownNew), and
// returns an O_PATH descriptor of it. A component that is a dangling
// symlink gets its target made, resolved inside the root as the kernel
// would resolve it there.
func mkdirAllIn(rootfd int, p string, own owner) (int, error) {
	return mkdirAllDepth(rootfd, p, own, 0)
}

// maxLinks bounds the symlinks followed while making directories
// (the kernel's own limit is 40, path_resolution(7)).
const maxLinks = 40

func mkdirAllDepth(rootfd int, p string, own owner, depth int) (int, error) {
	if depth > maxLinks {
		return -1, fmt.Errorf("mkdir %s: %w", p, unix.ELOOP)
	}
	fd, err := unix.Dup(rootfd)
	if err != nil {
		return -1, err
	}
	cur := "/"
	for _, name := range strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/") {
		if name == "" {
			continue
		}
		parent := cur
		cur = path.Join(cur, name)
		err := unix.Mkdirat(fd, name, 0o755)
		created := err == nil
		if err != nil && !errors.Is(err, unix.EEXIST) {
			unix.Close(fd)
			return -1, fmt.Errorf("mkdir %s: %w", cur, err)
		}
		var link string
		if !created {
			buf := make([]byte, unix.PathMax)
			if n, err := unix.Readlinkat(fd, name, buf); err == nil {
				link = string(buf[:n])
			}
		}
		unix.Close(fd)
		// Reopen from the root: name may be a symlink, which must
		// resolve inside the root like any other path.
		fd, err = openIn(rootfd, cur, unix.O_PATH|unix.O_DIRECTORY)
		if errors.Is(err, unix.ENOENT) && link != "" {
			target := link
			if !path.IsAbs(target) {
				target = path.Join(parent, target)
			}
			var tfd int
			if tfd, err = mkdirAllDepth(rootfd, target, own, depth+1); err == nil {
				unix.Close(tfd)
				fd, err = openIn(rootfd, cur, unix.O_PATH|unix.O_DIRECTORY)
			}
		}
		if err != nil {
			if errors.Is(err, unix.ENOTDIR) {
				return -1, fmt.Errorf("%s is not a directory: %w", cur, errdefs.ErrInvalidArgument)
			}
			return -1, fmt.Errorf("open %s: %w", cur, err)
		}
		if created && (own.uid != 0 || own.gid != 0) {
			if err := unix.Fchownat(fd, "", own.uid, own.gid, unix.AT_EMPTY_PATH); err != nil {
				unix.Close(fd)
				return -1, fmt.Errorf("chown %s: %w", cur, err)
			}
		}
	}
	return fd, nil
}

// isDirIn reports whether p exists in the root as a directory (following
// symlinks inside the root).
func isDirIn(rootfd int, p string) bool {
	fd, err := openIn(rootfd, p, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// extractIn unpacks the tar in r into directory dir of the root,
// creating dir as needed.
func extractIn(ctx context.Context, root, dir string, own owner, r io.Reader) error {
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	fd, err := mkdirAllIn(rootfd, dir, own)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// /proc/self/fd/N is exactly the directory resolved above: Apply
	// walks no path of the image to get there.
	_, err = archive.Apply(ctx, "/proc/self/fd/"+strconv.Itoa(fd), r, archive.ApplyOptions{Whiteouts: archive.WhiteoutsDelete})
	return err
}

// resolveOwner turns --chown's user[:group] into ids, names looked up in
// the image's /etc/passwd and /etc/group (read within the root).
func resolveOwner(root, spec string) (owner, error) {
	if spec == "" {
		return owner{}, nil
	}
	user, group, hasGroup := strings.Cut(spec, ":")
	uid, ugid, err := lookupID(root, "etc/passwd", user)
	if err != nil {
		return owner{}, err
	}
	gid := ugid
	if !hasGroup {
		// docker: a user alone means that user's uid as the group too
		// when numeric, its primary group when named.
		if _, err := strconv.Atoi(user); err == nil {
			gid = uid
		}
	} else if gid, _, err = lookupID(root, "etc/group", group); err != nil {
		return owner{}, err
	}
	return owner{uid: uid, gid: gid}, nil
}

// lookupID finds name in an /etc/passwd or /etc/group style file: its id
// and (for passwd) its primary group. A number is taken as it is.
func lookupID(root, file, name string) (int, int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, n, nil
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	f, err := r.Open(file)
	if err != nil {
		return 0, 0, fmt.Errorf("unable to convert uid/gid chown string to host mapping: no such user or group %q: %w", name, errdefs.ErrInvalidArgument)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 3 || fields[0] != name {
			continue
		}
		id, err := strconv.Atoi(fields[2])
		if err != nil {
			break
		}
		gid := id
		if len(fields) > 3 {
			if g, err := strconv.Atoi(fields[3]); err == nil && strings.HasSuffix(file, "passwd") {
				gid = g
			}
		}
		return id, gid, nil
	}
	return 0, 0, fmt.Errorf("unable to convert uid/gid chown string to host mapping: no such user or group %q: %w", name, errdefs.ErrInvalidArgument)
}
