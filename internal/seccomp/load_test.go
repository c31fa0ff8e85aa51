package seccomp

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

// A filter cannot be removed once loaded, so each real test re-executes
// the test binary as a child that loads the filter, makes the calls, and
// reports through its exit status and stderr.
const childEnv = "BERTH_SECCOMP_CHILD"

func init() {
	name := os.Getenv(childEnv)
	if name == "" {
		return
	}
	fn, ok := children[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown child %q\n", name)
		os.Exit(3)
	}
	if err := fn(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

var children = map[string]func() error{
	"errno":  childErrno,
	"kill":   childKill,
	"notify": childNotify,
	"eacces": childEACCES,
	"thread": childKillThread,
	"trap":   childTrap,
	"flags":  childFlags,
	"x32":    childX32,
	"docker": childDockerProfile,
	"bench":  childBench,
}

// load compiles s and loads it with no_new_privs set, as a container's
// init does.
func load(s *specs.LinuxSeccomp) (int, error) {
	f, err := Compile(s)
	if err != nil {
		return -1, err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return -1, fmt.Errorf("set no_new_privs: %w", err)
	}
	return f.Load()
}

func childErrno() error {
	dir := os.Getenv("DIR")
	if _, err := load(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno},
			{Names: []string{"symlink", "symlinkat"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV))},
		},
	}); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(dir, "a"), 0o755); !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("mkdir under the filter: %v, want EPERM", err)
	}
	if err := os.Symlink("x", filepath.Join(dir, "b")); !errors.Is(err, unix.EXDEV) {
		return fmt.Errorf("symlink under the filter: %v, want EXDEV", err)
	}
	// Everything else still works.
	return os.WriteFile(filepath.Join(dir, "c"), nil, 0o644)
}

func childKill() error {
	// SIGSYS dumps core by default; keep cores off the test machine.
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return err
	}
	if _, err := load(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActKillProcess}},
	}); err != nil {
		return err
	}
	unix.Getppid()
	return errors.New("getppid returned under a KILL_PROCESS filter")
}

func childKillThread() error {
	if _, err := load(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActKill}},
	}); err != nil {
		return err
	}
	tid := make(chan int)
	go func() {
		runtime.LockOSThread()
		tid <- unix.Gettid()
		unix.Getppid()
		panic("getppid returned under a KILL filter")
	}()
	task := fmt.Sprintf("/proc/self/task/%d", <-tid)
	// SCMP_ACT_KILL ends the calling thread only; the process goes on.
	for range 200 {
		if _, err := os.Stat(task); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return errors.New("the thread survived getppid under a KILL filter")
}

func childTrap() error {
	if _, err := load(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActTrap}},
	}); err != nil {
		return err
	}
	// TRAP raises SIGSYS in the thread; the Go runtime dies of it.
	unix.Getppid()
	return errors.New("getppid returned under a TRAP filter")
}

func childFlags() error {
	fd, err := load(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog,
			specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getppid"}, Action: specs.ActNotify},
			{Names: []string{"getpgrp"}, Action: specs.ActLog},
			{Names: []string{"personality"}, Action: specs.ActTrace, ErrnoRet: uintp(1)},
		},
	})
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// No tracer: the kernel fails a TRACE call with ENOSYS.
	if _, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0); e != unix.ENOSYS {
		return fmt.Errorf("personality under TRACE without a tracer: %v, want ENOSYS", e)
	}
	if unix.Getpgrp() == 0 {
		return errors.New("getpgrp under LOG returned 0")
	}
	return nil
}

// childX32 makes calls with the x32 bit set through the x86_64 syscall
// instruction: the filter sees them whether or not this kernel was built
// with x32, since seccomp runs before the call is dispatched.
func childX32() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return err
	}
	listX32 := os.Getenv("LIST_X32") != ""
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV))}},
	}
	if listX32 {
		s.Architectures = []specs.Arch{specs.ArchX32}
	}
	if _, err := load(s); err != nil {
		return err
	}
	if _, _, e := unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0); e != unix.EXDEV {
		return fmt.Errorf("x86_64 getppid: %v, want EXDEV", e)
	}
	_, _, e := unix.RawSyscall(x32SyscallBit|unix.SYS_GETPPID, 0, 0, 0)
	if !listX32 {
		return fmt.Errorf("x32 getppid returned (%v) though x32 is not listed", e)
	}
	if e != unix.EXDEV {
		return fmt.Errorf("x32 getppid: %v, want EXDEV", e)
	}
	return nil
}

// childDockerProfile runs the Go runtime, exec and a few refused calls
// under Docker's default profile: new threads and child processes must
// pass the clone rule, namespaces and mounts must not.
func childDockerProfile() error {
	s, err := DefaultProfile().Spec(ProfileOptions{Caps: dockerCaps})
	if err != nil {
		return err
	}
	if _, err := load(s); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { runtime.LockOSThread(); close(done) }() // a new thread: clone(CLONE_THREAD|...)
	<-done
	if out, err := exec.Command("/bin/sh", "-c", "echo ok").CombinedOutput(); err != nil || string(out) != "ok\n" {
		return fmt.Errorf("exec under the profile: %q, %v", out, err)
	}
	// Paths that do not exist: unfiltered these fail with ENOENT, so EPERM
	// can only come from the filter, and nothing is ever mounted.
	if err := unix.Mount("none", "/nonexistent/berth", "tmpfs", 0, ""); err != unix.EPERM {
		return fmt.Errorf("mount: %v, want EPERM", err)
	}
	if err := unix.Unmount("/nonexistent/berth", 0); err != unix.EPERM {
		return fmt.Errorf("umount2: %v, want EPERM", err)
	}
	if err := unix.Unshare(unix.CLONE_NEWUSER); err != unix.EPERM {
		return fmt.Errorf("unshare: %v, want EPERM", err)
	}
	if _, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM, 0); err != unix.EPERM {
		return fmt.Errorf("socket(AF_VSOCK): %v, want EPERM", err)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return fmt.Errorf("socket(AF_UNIX): %v", err)
	}
	unix.Close(fd)
	if _, _, e := unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0); e != unix.ENOSYS {
		return fmt.Errorf("clone3: %v, want ENOSYS", e)
	}
	return nil
}

// childBench times N personality calls under Docker's default profile in the
// layout LAYOUT (none, search or linear) and prints ns per call.
func childBench() error {
	n, err := strconv.Atoi(os.Getenv("N"))
	if err != nil {
		return err
	}
	if layout := os.Getenv("LAYOUT"); layout != "none" {
		s, err := DefaultProfile().Spec(ProfileOptions{Caps: dockerCaps})
		if err != nil {
			return err
		}
		native, err := nativeArch()
		if err != nil {
			return err
		}
		f, err := compile(s, compileOptions{native: native, linear: layout == "linear"})
		if err != nil {
			return err
		}
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return err
		}
		if _, err := f.Load(); err != nil {
			return err
		}
	}
	// Since Linux 5.11 the kernel caches calls a filter allows whatever
	// their arguments and skips the filter for them, so time one whose
	// rule tests an argument: personality(0xffffffff) only asks for the
	// current persona, and the filter runs on every call.
	// The fastest of ten batches: the least disturbed by other load.
	batch := max(n/10, 1)
	best := time.Duration(1<<63 - 1)
	for range 10 {
		start := time.Now()
		for range batch {
			unix.RawSyscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
		}
		best = min(best, time.Since(start))
	}
	fmt.Println(float64(best.Nanoseconds()) / float64(batch))
	return nil
}

// seccompNotif and seccompNotifResp are struct seccomp_notif and
// seccomp_notif_resp (include/uapi/linux/seccomp.h); x/sys has no types.
type seccompNotif struct {
	id    uint64
	pid   uint32
	flags uint32
	nr    int32
	arch  uint32
	ip    uint64
	args  [6]uint64
}

type seccompNotifResp struct {
	id    uint64
	val   int64
	error int32
	flags uint32
}

func childNotify() error {
	fd, err := load(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActNotify}},
	})
	if err != nil {
		return err
	}
	if fd < 0 {
		return errors.New("no listener fd for a NOTIFY filter")
	}
	defer unix.Close(fd)
	got := make(chan int, 1)
	tid := make(chan int, 1)
	go func() {
		runtime.LockOSThread()
		tid <- unix.Gettid()
		got <- unix.Getppid() // waits for our answer below
	}()
	var n seccompNotif // the kernel wants it zeroed
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&n))); e != 0 {
		return fmt.Errorf("notif recv: %w", e)
	}
	if want := int32(tableX86_64["getppid"]); n.nr != want || n.arch != auditX86_64 {
		return fmt.Errorf("notification for nr %d arch %#x, want getppid (%d)", n.nr, n.arch, want)
	}
	if t := <-tid; int(n.pid) != t {
		return fmt.Errorf("notification from %d, want thread %d", n.pid, t)
	}
	resp := seccompNotifResp{id: n.id, val: 4242}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp))); e != 0 {
		return fmt.Errorf("notif send: %w", e)
	}
	if v := <-got; v != 4242 {
		return fmt.Errorf("getppid returned %d, want the agent's 4242", v)
	}
	return nil
}

func childEACCES() error {
	f, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow})
	if err != nil {
		return err
	}
	// no_new_privs unset and CAP_SYS_ADMIN dropped from this thread's
	// effective set (capabilities are per thread): the kernel must refuse.
	runtime.LockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	data[unix.CAP_SYS_ADMIN/32].Effective &^= 1 << (unix.CAP_SYS_ADMIN % 32)
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return err
	}
	_, err = f.Load()
	if !errors.Is(err, errdefs.ErrForbidden) || !strings.Contains(err.Error(), "no_new_privs or CAP_SYS_ADMIN") {
		return fmt.Errorf("load without no_new_privs or CAP_SYS_ADMIN: %v, want ErrForbidden", err)
	}
	return nil
}

func runChild(t *testing.T, name string, env ...string) (*os.ProcessState, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, childEnv+"="+name)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run child %s: %v", name, err)
	}
	return cmd.ProcessState, stderr.String()
}

func requireNativeX86_64(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the child checks x86_64 syscall numbers")
	}
}

func TestLoadErrno(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	st, out := runChild(t, "errno", "DIR="+dir)
	if !st.Success() {
		t.Fatalf("child: %v: %s", st, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mkdir ran despite the filter: %v", err)
	}
}

func TestLoadKillProcess(t *testing.T) {
	testutil.RequireRoot(t)
	st, out := runChild(t, "kill")
	ws := st.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != unix.SIGSYS {
		t.Fatalf("child ended with %v, want killed by SIGSYS: %s", st, out)
	}
}

func TestLoadKillThread(t *testing.T) {
	testutil.RequireRoot(t)
	if st, out := runChild(t, "thread"); !st.Success() {
		t.Fatalf("child: %v: %s", st, out)
	}
}

func TestLoadTrap(t *testing.T) {
	testutil.RequireRoot(t)
	st, out := runChild(t, "trap")
	if st.Success() || !strings.Contains(out, "SIGSYS") {
		t.Fatalf("child ended with %v, want the Go runtime dead of SIGSYS: %s", st, out)
	}
}

func TestLoadAllFlags(t *testing.T) {
	testutil.RequireRoot(t)
	if st, out := runChild(t, "flags"); !st.Success() {
		t.Fatalf("child: %v: %s", st, out)
	}
}

func TestLoadX32Bit(t *testing.T) {
	testutil.RequireRoot(t)
	requireNativeX86_64(t)
	t.Run("listed", func(t *testing.T) {
		if st, out := runChild(t, "x32", "LIST_X32=1"); !st.Success() {
			t.Fatalf("child: %v: %s", st, out)
		}
	})
	t.Run("not listed", func(t *testing.T) {
		st, out := runChild(t, "x32")
		ws := st.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != unix.SIGSYS {
			t.Fatalf("child ended with %v, want killed by SIGSYS: %s", st, out)
		}
	})
}

func TestLoadDockerDefaultProfile(t *testing.T) {
	testutil.RequireRoot(t)
	if st, out := runChild(t, "docker"); !st.Success() {
		t.Fatalf("child: %v: %s", st, out)
	}
}

// BenchmarkKernelSyscall measures what the filter costs the real kernel
// per call: personality with no filter, and under Docker's default profile in
// the search and the linear layout (ns/call: the child's fastest batch).
func BenchmarkKernelSyscall(b *testing.B) {
	for _, layout := range []string{"none", "search", "linear"} {
		b.Run(layout, func(b *testing.B) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"=bench", "LAYOUT="+layout, fmt.Sprintf("N=%d", b.N))
			out, err := cmd.Output()
			if err != nil {
				b.Fatalf("child: %v", err)
			}
			ns, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
			if err != nil {
				b.Fatalf("child said %q", out)
			}
			b.ReportMetric(ns, "ns/call")
		})
	}
}

func TestLoadNotify(t *testing.T) {
	testutil.RequireRoot(t)
	requireNativeX86_64(t)
	if st, out := runChild(t, "notify"); !st.Success() {
		t.Fatalf("child: %v: %s", st, out)
	}
}

func TestLoadNeedsNoNewPrivsOrCapSysAdmin(t *testing.T) {
	testutil.RequireRoot(t)
	if st, out := runChild(t, "eacces"); !st.Success() {
		t.Fatalf("child: %v: %s", st, out)
	}
}
