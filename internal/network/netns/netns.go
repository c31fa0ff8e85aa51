package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// threadNS is the path of the calling thread's own network namespace; the
// process-wide /proc/self/ns/net names the main thread's, which is not ours
// after a setns on a locked thread.
const threadNS = "/proc/thread-self/ns/net"

// fresh makes a new network namespace with loopback up and returns an open
// file on it. The calling goroutine's thread is restored to the namespace it
// was in; if that fails the thread stays locked, so the Go runtime ends it
// with the goroutine instead of reusing a thread in the wrong namespace.
func fresh() (f *os.File, err error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		orig, oerr := os.Open(threadNS)
		if oerr != nil {
			err = fmt.Errorf("open current netns: %w", oerr)
			runtime.UnlockOSThread()
			return
		}
		defer orig.Close()
		if uerr := unix.Unshare(unix.CLONE_NEWNET); uerr != nil {
			err = fmt.Errorf("unshare netns: %w", uerr)
			runtime.UnlockOSThread()
			return
		}
		f, err = os.Open(threadNS)
		if err == nil {
			err = loopbackUp()
		}
		if serr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); serr != nil {
			// Leave the thread locked: it dies with this goroutine.
			if err == nil {
				err = fmt.Errorf("return to netns: %w", serr)
			}
			return
		}
		runtime.UnlockOSThread()
	}()
	<-done
	if err != nil && f != nil {
		f.Close()
		f = nil
	}
	return f, err
}

// loopbackUp sets lo up in the calling thread's namespace.
func loopbackUp() error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in new netns: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// bind mounts the namespace open as f on path, creating path.
func bind(f *os.File, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("netns dir: %w", err)
	}
	file, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("netns file %s: %w", path, err)
	}
	file.Close()
	src := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
		os.Remove(path)
		return fmt.Errorf("bind netns on %s: %w", path, err)
	}
	return nil
}

// Create makes a new network namespace with loopback up at path, which must
// not exist yet.
func Create(path string) error {
	f, err := fresh()
	if err != nil {
		return err
	}
	defer f.Close()
	return bind(f, path)
}

// Remove unmounts the namespace at path and removes the file. A path that
// is missing is not an error, so Remove can run twice.
func Remove(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}

// IsNetns reports whether path is a mounted network namespace.
func IsNetns(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// Do runs fn on a locked OS thread inside the network namespace at path and
// returns the thread to its namespace afterwards. Sockets fn creates stay in
// the namespace at path after Do returns.
func Do(path string, fn func() error) error {
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer target.Close()
	var ferr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		orig, err := os.Open(threadNS)
		if err != nil {
			runtime.UnlockOSThread()
			ferr = fmt.Errorf("open current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ferr = fmt.Errorf("enter netns %s: %w", path, err)
			return
		}
		ferr = fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked so it dies with this goroutine.
			return
		}
		runtime.UnlockOSThread()
	}()
	<-done
	return ferr
}
