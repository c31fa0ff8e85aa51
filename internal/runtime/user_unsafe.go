package runtime

import (
	"fmt"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// setUser switches to the container user on this thread only: the raw
// syscalls skip glibc's and Go's all-threads setxid dance, which the other
// threads do not need because execve ends them.
func setUser(u specs.User) error {
	groups := make([]uint32, 0, len(u.AdditionalGids))
	groups = append(groups, u.AdditionalGids...)
	var gp unsafe.Pointer
	if len(groups) > 0 {
		gp = unsafe.Pointer(&groups[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(gp), 0); e != 0 {
		// With setgroups denied in a user namespace, an empty list is
		// what the process has anyway.
		if !(e == unix.EPERM && len(groups) == 0) {
			return fmt.Errorf("setgroups %v: %w", groups, e)
		}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("setgid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("setuid %d: %w", u.UID, e)
	}
	return nil
}
