package seccomp

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Load installs the filter on the calling process and returns the
// listener fd when the filter notifies (Notify), or -1. The kernel opens
// the listener close-on-exec, so the caller hands it on (to the agent at
// listenerPath, over SCM_RIGHTS) before execve, then closes it.
//
// The kernel accepts a filter only from a task with no_new_privs set or
// CAP_SYS_ADMIN in its user namespace (Documentation/userspace-api/
// seccomp_filter.rst): set no_new_privs first (process.noNewPrivileges),
// or keep CAP_SYS_ADMIN until Load. Otherwise Load fails with
// errdefs.ErrForbidden.
//
// The filter applies to every thread of the process (SECCOMP_FILTER_FLAG_TSYNC):
// Go runs goroutines on threads it picks, so a filter on the calling
// thread alone would leave the others unfiltered until execve. Load as
// late as possible, just before execve: everything the runtime calls
// afterwards goes through the filter (and a NOTIFY rule on those calls would
// wait for an agent that does not have the fd yet).
func (f *Filter) Load() (notifyFD int, err error) {
	prog := unix.SockFprog{Len: uint16(len(f.prog)), Filter: &f.prog[0]}
	flags := f.flags | unix.SECCOMP_FILTER_FLAG_TSYNC
	if f.notify {
		// TSYNC reports a failed sync by returning a thread id, which
		// cannot be told apart from a listener fd; TSYNC_ESRCH makes it
		// an ESRCH instead (Linux 5.7).
		flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
	}
	ret, errno := seccomp(flags, &prog)
	if errno == unix.EINVAL && f.notify && !f.tsync {
		// A kernel older than 5.7 refuses TSYNC with a listener; the
		// spec did not ask for TSYNC, so filter the calling thread only.
		flags &^= unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
		ret, errno = seccomp(flags, &prog)
	}
	if errno == unix.ENOSYS && flags == unix.SECCOMP_FILTER_FLAG_TSYNC && !f.tsync {
		// seccomp(2) came in Linux 3.17; prctl has no flags, so it can
		// only stand in when none but our own TSYNC were wanted.
		errno = prctlSeccomp(&prog)
		ret = 0
	}
	switch {
	case errno == unix.EACCES:
		return -1, fmt.Errorf("load seccomp filter: needs no_new_privs or CAP_SYS_ADMIN: %w", errdefs.ErrForbidden)
	case errno == unix.ESRCH:
		return -1, fmt.Errorf("load seccomp filter: another thread has a different filter, cannot synchronize: %w", errdefs.ErrConflict)
	case errno == unix.EINVAL:
		return -1, fmt.Errorf("load seccomp filter (flags %#x): the kernel refuses the flags or the program: %w", flags, errno)
	case errno != 0:
		return -1, fmt.Errorf("load seccomp filter: %w", errno)
	}
	if f.notify {
		return int(ret), nil
	}
	if ret != 0 {
		// Without TSYNC_ESRCH, a failed TSYNC returns the thread's id.
		return -1, fmt.Errorf("load seccomp filter: thread %d cannot be synchronized: %w", ret, errdefs.ErrConflict)
	}
	return -1, nil
}

func seccomp(flags uint, prog *unix.SockFprog) (uintptr, unix.Errno) {
	r, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(prog)))
	return r, errno
}

func prctlSeccomp(prog *unix.SockFprog) unix.Errno {
	_, _, errno := unix.RawSyscall(unix.SYS_PRCTL, unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(prog)))
	return errno
}
