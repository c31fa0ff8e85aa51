// Package seccomp compiles the seccomp section of an OCI runtime spec
// (linux.seccomp, config-linux.md) into a classic BPF program and loads it
// with seccomp(2). It does not use libseccomp, so berth stays one static
// binary: the program is built here, and the syscall tables are generated
// from the kernel's uapi headers (zsyscalls.go, written by mktables.go
// through `go generate ./internal/seccomp`; that needs the Debian packages
// cpp, linux-libc-dev, linux-libc-dev-arm64-cross and
// linux-libc-dev-armhf-cross; building and testing do not). Tables: x86_64,
// i386, x32, aarch64 and arm (EABI).
//
// It knows nothing of containers, bundles or processes. The runtime calls
//
//	func Compile(s *specs.LinuxSeccomp) (*Filter, error)
//	func (f *Filter) Load() (notifyFD int, err error) // -1 unless Notify
//	func (f *Filter) Notify() bool                    // Load returns a listener fd
//	func (f *Filter) Unknown() []string               // names no ABI has: skipped
//	func (f *Filter) DroppedArches() []specs.Arch     // listed, no table: killed
//	func (f *Filter) Len() int                        // BPF instructions
//	func SendListener(ctx context.Context, path string, fd int, st specs.ContainerProcessState) error
//
// and specgen builds the seccomp section of a spec from Docker's default
// profile, or from a profile in Docker's JSON form (what
// `docker run --security-opt seccomp=FILE` sends), with
//
//	func DefaultProfile() *Profile
//	func ParseProfile(data []byte) (*Profile, error)
//	func (p *Profile) MarshalJSON() ([]byte, error)   // Docker's JSON form
//	func (p *Profile) Spec(o ProfileOptions) (*specs.LinuxSeccomp, error)
//
// Spec keeps the rules whose includes/excludes (host arch, the container's
// bounding capabilities, kernel version) hold, as Docker does.
//
// Compile early (in the runtime's parent, where errors are easy to
// report) and Load last in the container's init, right before execve,
// after everything that needs calls the filter may block. Load needs
// no_new_privs or CAP_SYS_ADMIN, and filters every thread (TSYNC); see Load.
//
// What the program does, in order:
//
//  1. Check seccomp_data.arch against the native ABI and the compat ABIs
//     the spec lists (x86 and x32 on x86_64); any other arch is killed
//     (SECCOMP_RET_KILL_PROCESS), as libseccomp kills. x86_64 and x32
//     share an audit arch and differ by the x32 bit (0x40000000) of the
//     number: each half of the number space belongs to one of them, or is
//     killed when that one is not listed. Listed arches a kernel of the
//     native arch cannot run (mips on amd64) are dropped, as they cannot
//     occur; a compat ABI with no table here (none today) would be killed
//     like an unlisted one and reported by DroppedArches.
//  2. Binary-search the syscall number over intervals that share an
//     outcome. For Docker's default profile that is 11 instructions per
//     call on average (12 at most), against 156 (305 at most) for a chain
//     of one compare per name (BenchmarkDefaultProfile).
//  3. For a syscall whose entries test arguments, try the entries in spec
//     order: the first whose conditions all hold (they are ANDed) decides,
//     none holding means defaultAction. Arguments are 64-bit and compared
//     unsigned as two 32-bit halves; on i386 and arm only the low half,
//     which is all a 32-bit call passes. MASKED_EQ is (arg & value) == valueTwo.
//
// Actions: SCMP_ACT_KILL is KILL_THREAD; ERRNO and TRACE take errnoRet
// (default EPERM), no other action may; NOTIFY cannot be defaultAction,
// since the runtime's own calls before execve would wait on an agent that
// does not have the fd yet. Syscall names an ABI does not have are skipped,
// as libseccomp skips them. Unknown actions, operators, arches and flags,
// an argument index above 5, and an errno above 4095 are errors
// (errdefs.ErrInvalidArgument), as is a program over the kernel's 4096
// instructions.
//
// The package owns nothing on disk.
package seccomp
