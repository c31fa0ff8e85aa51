// Package nsenter puts a re-executed child into existing and new
// namespaces before its Go runtime starts. It is berth's only cgo.
//
// Status: usable (joining by path, creating new namespaces with uid/gid
// maps and time offsets, the fork for pid and time namespaces; tested with
// real namespaces). The API others call:
//
//	type Config struct {
//		Namespaces               []specs.LinuxNamespace // Path set: join it; empty: create a new one
//		UIDMappings, GIDMappings []specs.LinuxIDMapping // for a new user namespace (written by the parent)
//		TimeOffsets              map[string]specs.LinuxTimeOffset // for a new time namespace
//	}
//	func Prepare(cmd *exec.Cmd, cfg Config) (*Session, error) // before cmd.Start
//	func (s *Session) Wait(ctx context.Context) (pid int, err error) // after cmd.Start
//	func (s *Session) Close() error // if cmd.Start failed
//	type ChildError struct{ Msg string; Errno syscall.Errno } // what the child reported
//
// The binary cmd runs must link this package (a blank import is enough);
// usually it is the runtime re-executing itself. A typical `exec`:
//
//	cmd := exec.Command("/proc/self/exe", "init-exec", ...)
//	s, err := nsenter.Prepare(cmd, nsenter.Config{Namespaces: pathsOf(container)})
//	if err := cmd.Start(); err != nil { s.Close(); ... }
//	pid, err := s.Wait(ctx) // pid is inside every namespace, its Go code about to start
//
// # Why a C constructor
//
// setns(2) into a mount namespace fails with EINVAL in a process whose
// threads share their filesystem information, and setns into a user
// namespace fails in any multithreaded process (setns(2), "EINVAL"). A Go
// program has several threads before main, and even before package init,
// so no Go code can do these joins. A function marked
// __attribute__((constructor)) in the C part of this package runs from the
// dynamic loader (or libc's start-up for a static binary) before the Go
// runtime's entry point, while the process still has one thread. It runs
// in every invocation of the binary, so it first checks one environment
// variable and returns at once when it is absent: the cost for an ordinary
// run of berth is one getenv.
//
// # Why the fork
//
// Joining or creating a pid namespace does not move the caller; it
// changes the namespace its next children are created in
// (pid_namespaces(7)). The time namespace works the same way
// (time_namespaces(7)). So when either is involved the constructor forks
// once after every other join: the child is the process inside all the
// namespaces, and the intermediate reports the child's pid to the parent
// and exits. The child is then re-parented to the parent's nearest child
// subreaper (or the host's init); see Session.Wait.
//
// # Order
//
// Every path is opened first (a /proc/<pid>/ns/... path must be resolved
// in the mount namespace it names a process of). Then the user namespace
// is joined, since setns checks capabilities against each namespace's
// owning user namespace; then ipc, uts, network, pid, cgroup and time;
// then mount. Then a new user namespace is created and the parent writes
// its maps, then the other new namespaces are created, so the new user
// namespace owns them; offsets go into a new time namespace; and a process
// that joined or created a user namespace becomes uid and gid 0 in it and
// drops supplementary groups.
//
// Errors go back to the parent as a message on the socketpair, never to
// the child's stdio, which may be the container's.
//
// This package knows nothing of containers, bundles or state; it owns
// nothing on disk.
package nsenter
