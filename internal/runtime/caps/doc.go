// Package caps names Linux capabilities and applies an OCI capability set
// (bounding, effective, permitted, inheritable, ambient) to the calling
// thread. It knows nothing of containers, users or the spec beyond
// specs.LinuxCapabilities, and owns nothing on disk; it reads
// /proc/sys/kernel/cap_last_cap once.
//
// Status: usable. The API others call:
//
//	func Parse(names []string) ([]uintptr, error) // "CAP_NET_ADMIN" → 12; unknown names → errdefs.ErrInvalidArgument naming them
//	func Name(c uintptr) string                   // 12 → "CAP_NET_ADMIN"
//	func Last() uintptr                           // the kernel's last capability
//	func Known() []string                         // every name this kernel supports, for `features`
//	func Apply(c *specs.LinuxCapabilities) error  // the whole set, on the calling thread
//	func SetKeepCaps(keep bool) error             // PR_SET_KEEPCAPS, before a setuid to a non-root user
//	func Current() (Set, error)                   // the calling thread's sets, as /proc/thread-self/status shows them
//
// # Capabilities are per thread
//
// capset(2), PR_CAPBSET_DROP and PR_CAP_AMBIENT act on the calling thread
// only, and Go moves goroutines between threads. A caller must therefore
// runtime.LockOSThread, call Apply, and execve from that same locked thread
// (syscall.Exec runs on the calling thread, and the new program inherits
// that thread's credentials). The other threads of the Go process keep the
// old sets, which does not matter because execve discards them.
//
// # Order with a switch to a non-root user
//
// A setuid from uid 0 to a non-zero uid clears the permitted and effective
// sets unless the thread has PR_SET_KEEPCAPS, and always clears the ambient
// set (capabilities(7), "Effect of user ID changes on capabilities"). So the
// container init does, on one locked thread:
//
//	caps.SetKeepCaps(true) // permitted survives the uid change
//	setgroups, setresgid, setresuid to the container user
//	caps.Apply(spec.Process.Capabilities) // re-raises effective, sets ambient; clears keepcaps
//	syscall.Exec(...)
//
// Apply re-raises CAP_SETPCAP in the effective set when it is still
// permitted, so it can drop the bounding set after the uid change too.
// Calling Apply before the uid change instead does not work for a non-root
// user: the setuid would clear the ambient set Apply raised.
//
// After execve the kernel recomputes the sets (capabilities(7),
// "Transformation of capabilities during execve"): a non-root program
// without file capabilities keeps only the ambient set as permitted and
// effective; a root program gets its bounding set as permitted. That is the
// OCI meaning of the five sets, and why ambient exists.
package caps
