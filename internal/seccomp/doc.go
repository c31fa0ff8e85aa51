// Package seccomp compiles the seccomp section of an OCI runtime spec
// (linux.seccomp, config-linux.md) into a classic BPF program and loads it
// with seccomp(2). It does not use libseccomp, so berth stays one static
// binary: the program is built here, and the syscall tables are generated
// from the kernel's uapi headers (zsyscalls.go, by mktables.go through
// `go generate`; needs the Debian packages linux-libc-dev and cpp).
//
// It knows nothing of containers, bundles or processes: the runtime calls
//
//	func Compile(s *specs.LinuxSeccomp) (*Filter, error)
//	func (f *Filter) Load() (notifyFD int, err error)
//	func (f *Filter) Notify() bool      // Load will return a listener fd
//	func (f *Filter) Unknown() []string // syscall names skipped as unknown
//	func (f *Filter) DroppedArches() []specs.Arch // listed but killed: no table
//	func (f *Filter) Len() int          // BPF instructions
//
//	func SendListener(ctx context.Context, path string, fd int, st specs.ContainerProcessState) error
//	                                    // the fd to the agent at listenerPath
//
// and, to build the seccomp section of a spec, Docker's default profile:
//
//	func DefaultProfile() *Profile
//	func (p *Profile) Spec(o ProfileOptions) (*specs.LinuxSeccomp, error)
//
// Compile early (in the runtime's parent, where errors are easy to
// report) and Load last in the container's init, after everything that
// needs syscalls the filter may block, right before execve. Load needs
// no_new_privs or CAP_SYS_ADMIN (see Load).
//
// What the program does, in order:
//
//  1. Check seccomp_data.arch against the native ABI and the compat ABIs
//     the spec lists (x86 and x32 on x86_64); any other arch is killed
//     (SECCOMP_RET_KILL_PROCESS). x86_64 and x32 share an audit arch and
//     differ by the x32 bit (0x40000000) of the number: each half of the
//     number space belongs to one of them, or is killed when that one is
//     not listed. Listed arches a kernel of the native arch cannot run
//     (Docker lists mips for amd64) are dropped, as they cannot occur; a
//     compat ABI with no table here (arm on arm64) is killed like an
//     unlisted one and reported by DroppedArches.
//  2. Binary-search the syscall number over intervals that share an
//     outcome, so a call costs O(log n) compares (about 10 instructions
//     for Docker's default profile rather than hundreds in a linear chain).
//  3. For a syscall whose rules test arguments, try its rules in spec
//     order: the first whose conditions all hold (they are ANDed) decides;
//     none holding means defaultAction. Arguments are 64-bit and compared
//     unsigned as two 32-bit halves; on i386 only the low half, which is
//     all the kernel passes.
//
// Syscall names an ABI does not have are skipped, as libseccomp skips
// them (Unknown lists those no ABI has). Unknown actions, operators,
// arches and flags, an argument index above 5, and an errnoRet on an
// action other than ERRNO or TRACE are errors (errdefs.ErrInvalidArgument).
//
// The package owns nothing on disk.
package seccomp
