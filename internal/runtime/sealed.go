package runtime

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// sealedExe returns an O_PATH fd of this binary as seen through a private,
// read-only, detached bind mount, for the re-exec of the container init.
//
// CVE-2019-5736: a process in the container could open /proc/<init>/exe
// (or an fd of it) and write to the runtime binary on the host once the
// runtime exited, so the next run executed the attacker's code as root.
// runc copies the binary into a sealed memfd; copying ~10 MB on every start
// costs milliseconds. Instead: open_tree(OPEN_TREE_CLONE) makes a bind mount
// of the binary that is attached nowhere (it appears in no mount table and
// vanishes with its last fd), mount_setattr makes it read-only, and the init
// is exec'd through it. Every path to the init's executable then ends on a
// read-only mount, so opening it for writing fails with EROFS, while the
// host binary itself is never copied. A read-only mount cannot be made
// writable again from inside the container: it is not in any namespace the
// container could remount it in.
func sealedExe() (*os.File, error) {
	exe, err := selfExe()
	if err != nil {
		return nil, err
	}
	// Through /proc/self/exe rather than its path: the binary on disk may
	// have been replaced or deleted since this process started (an
	// upgrade, a rebuild under a running daemon); the magic link still
	// reaches the file this process runs.
	src := "/proc/self/exe"
	if initBinary != "" {
		src = initBinary
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("seal runtime binary %s: open_tree: %w", exe, err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("seal runtime binary %s: mount_setattr: %w", exe, err)
	}
	return os.NewFile(uintptr(fd), exe), nil
}

// initBinary overrides the binary re-exec'd as the init (tests use it to
// point at a copy they can check afterwards).
var initBinary string

var selfExeOnce struct {
	sync.Once
	path string
	err  error
}

func selfExe() (string, error) {
	if initBinary != "" {
		return initBinary, nil
	}
	selfExeOnce.Do(func() {
		selfExeOnce.path, selfExeOnce.err = os.Readlink("/proc/self/exe")
	})
	return selfExeOnce.path, selfExeOnce.err
}
