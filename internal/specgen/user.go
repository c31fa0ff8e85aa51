package specgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// ResolvedUser is a container user as its /etc/passwd and /etc/group say.
type ResolvedUser struct {
	specs.User
	Home string // from passwd; "/" when unknown
}

// LookupUser resolves docker's --user forms (name, uid, name:group,
// uid:gid; "" is root) and --group-add entries against the container's own
// /etc/passwd and /etc/group under rootfs. The files are opened with
// RESOLVE_IN_ROOT, so an image whose /etc/passwd is a symlink to a host
// path reads its own tree, never the host's. Supplementary groups are those
// that list the user by name, and the primary group, as docker gives them.
func LookupUser(rootfs, spec string, groupAdd []string) (ResolvedUser, error) {
	users, err := readDB(rootfs, "etc/passwd")
	if err != nil {
		return ResolvedUser{}, err
	}
	groups, err := readDB(rootfs, "etc/group")
	if err != nil {
		return ResolvedUser{}, err
	}
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" {
		userPart = "0"
	}
	u := ResolvedUser{Home: "/"}
	name := ""
	if n, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		u.UID = uint32(n)
		for _, e := range users {
			if len(e) > 5 && e[2] == userPart {
				name, u.Home = e[0], e[5]
				gid, _ := strconv.ParseUint(e[3], 10, 32)
				u.GID = uint32(gid)
				break
			}
		}
	} else {
		found := false
		for _, e := range users {
			if len(e) > 5 && e[0] == userPart {
				uid, err1 := strconv.ParseUint(e[2], 10, 32)
				gid, err2 := strconv.ParseUint(e[3], 10, 32)
				if err1 != nil || err2 != nil {
					continue
				}
				u.UID, u.GID, name, u.Home, found = uint32(uid), uint32(gid), e[0], e[5], true
				break
			}
		}
		if !found {
			return ResolvedUser{}, fmt.Errorf("unable to find user %s: no matching entries in passwd file: %w", userPart, errdefs.ErrInvalidArgument)
		}
	}
	if hasGroup {
		gid, err := lookupGroup(groups, groupPart)
		if err != nil {
			return ResolvedUser{}, err
		}
		u.GID = gid
	}
	// The primary group is also a supplementary one, as docker (through
	// runc) gives it: `id` in the container lists it under groups.
	u.AdditionalGids = []uint32{u.GID}
	if name != "" {
		for _, e := range groups {
			if len(e) < 4 {
				continue
			}
			for _, member := range strings.Split(e[3], ",") {
				if member == name {
					if gid, err := strconv.ParseUint(e[2], 10, 32); err == nil {
						u.AdditionalGids = appendUnique(u.AdditionalGids, uint32(gid))
					}
				}
			}
		}
	}
	for _, g := range groupAdd {
		gid, err := lookupGroup(groups, g)
		if err != nil {
			return ResolvedUser{}, err
		}
		u.AdditionalGids = appendUnique(u.AdditionalGids, gid)
	}
	return u, nil
}

func appendUnique(list []uint32, v uint32) []uint32 {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

func lookupGroup(groups [][]string, g string) (uint32, error) {
	if n, err := strconv.ParseUint(g, 10, 32); err == nil {
		return uint32(n), nil
	}
	for _, e := range groups {
		if len(e) > 2 && e[0] == g {
			if n, err := strconv.ParseUint(e[2], 10, 32); err == nil {
				return uint32(n), nil
			}
		}
	}
	return 0, fmt.Errorf("unable to find group %s: no matching entries in group file: %w", g, errdefs.ErrInvalidArgument)
}

// readDB reads a colon-separated database file inside rootfs; a missing
// file is an empty database, as in docker.
func readDB(rootfs, rel string) ([][]string, error) {
	f, err := openInRoot(rootfs, rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read /%s of the container: %w", rel, err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out, sc.Err()
}

func openInRoot(root, rel string) (*os.File, error) {
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(dir)
	fd, err := unix.Openat2(dir, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: rel, Err: err}
	}
	return os.NewFile(uintptr(fd), rel), nil
}
