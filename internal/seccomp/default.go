package seccomp

import (
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// DefaultProfile returns Docker's default seccomp profile: an allow-list
// of the syscalls ordinary programs use, everything else failing with
// EPERM, and the privileged calls allowed only with the capability that
// guards them anyway (so `--cap-add SYS_ADMIN` also opens mount, unshare
// and the rest, as in Docker).
//
// It is transcribed from Docker's documented profile
// (profiles/seccomp/default.json in moby/moby, and the "Seccomp security
// profiles for Docker" page), matching Docker 28/29. To keep it current,
// compare each Docker release's profile with this list and copy the new
// names and rules in the same order; TestDefaultProfileNames fails on a
// name no syscall table knows, which catches typos and calls this
// machine's headers are too old for. Each call returns a fresh value the
// caller may change.
func DefaultProfile() *Profile {
	errnoRet := func(e unix.Errno) *uint { v := uint(e); return &v }
	allow := func(names string) ProfileRule {
		return ProfileRule{Names: strings.Fields(names), Action: specs.ActAllow}
	}
	withCaps := func(names string, caps ...string) ProfileRule {
		r := allow(names)
		r.OnlyCaps = caps
		return r
	}
	onArches := func(names string, arches ...string) ProfileRule {
		r := allow(names)
		r.OnlyArches = arches
		return r
	}
	personality := func(v uint64) ProfileRule {
		r := allow("personality")
		r.Args = []specs.LinuxSeccompArg{{Index: 0, Value: v, Op: specs.OpEqualTo}}
		return r
	}
	// CLONE_NEWNS|CLONE_NEWCGROUP|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWUSER|
	// CLONE_NEWPID|CLONE_NEWNET: clone may not make namespaces without
	// CAP_SYS_ADMIN.
	const cloneNamespaceFlags = 0x7e020000
	clone := allow("clone")
	clone.Args = []specs.LinuxSeccompArg{{Index: 0, Value: cloneNamespaceFlags, Op: specs.OpMaskedEqual}}
	clone.NotCaps = []string{"CAP_SYS_ADMIN"}
	clone.NotArches = []string{"s390", "s390x"}
	cloneS390 := allow("clone")
	// s390 swaps clone's first two arguments.
	cloneS390.Args = []specs.LinuxSeccompArg{{Index: 1, Value: cloneNamespaceFlags, Op: specs.OpMaskedEqual}}
	cloneS390.OnlyArches = []string{"s390", "s390x"}
	cloneS390.NotCaps = []string{"CAP_SYS_ADMIN"}
	// Without CAP_SYS_ADMIN clone3 answers ENOSYS, so libcs fall back to
	// clone, whose flags the rule above can see (clone3 passes them in
	// memory, out of a filter's reach).
	clone3 := ProfileRule{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: errnoRet(unix.ENOSYS), NotCaps: []string{"CAP_SYS_ADMIN"}}
	ptrace := allow("process_vm_readv process_vm_writev ptrace")
	// Before 4.8 ptrace could bypass seccomp (the check ran before the
	// tracer could change the syscall).
	ptrace.MinKernel = "4.8"
	socket := allow("socket")
	socket.Args = []specs.LinuxSeccompArg{{Index: 0, Value: unix.AF_VSOCK, Op: specs.OpNotEqual}}

	return &Profile{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: errnoRet(unix.EPERM),
		Arches: map[specs.Arch][]specs.Arch{
			specs.ArchX86_64:      {specs.ArchX86, specs.ArchX32},
			specs.ArchAARCH64:     {specs.ArchARM},
			specs.ArchMIPS64:      {specs.ArchMIPS, specs.ArchMIPS64N32},
			specs.ArchMIPS64N32:   {specs.ArchMIPS, specs.ArchMIPS64},
			specs.ArchMIPSEL64:    {specs.ArchMIPSEL, specs.ArchMIPSEL64N32},
			specs.ArchMIPSEL64N32: {specs.ArchMIPSEL, specs.ArchMIPSEL64},
			specs.ArchS390X:       {specs.ArchS390},
			specs.ArchRISCV64:     nil,
		},
		Rules: []ProfileRule{
			allow(defaultAllowed),
			ptrace,
			socket,
			personality(0x0),        // PER_LINUX
			personality(0x8),        // PER_LINUX32
			personality(0x20000),    // UNAME26
			personality(0x20008),    // UNAME26|PER_LINUX32
			personality(0xffffffff), // query the current persona
			onArches("sync_file_range2 swapcontext", "ppc64le"),
			onArches("arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls", "arm", "arm64"),
			onArches("arch_prctl", "amd64", "x32"),
			onArches("modify_ldt", "amd64", "x32", "x86"),
			onArches("s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr", "s390", "s390x"),
			onArches("riscv_flush_icache", "riscv64"),
			withCaps("open_by_handle_at", "CAP_DAC_READ_SEARCH"),
			withCaps("bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount "+
				"mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname "+
				"sethostname setns syslog umount umount2 unshare", "CAP_SYS_ADMIN"),
			clone,
			cloneS390,
			clone3,
			withCaps("reboot", "CAP_SYS_BOOT"),
			withCaps("chroot", "CAP_SYS_CHROOT"),
			withCaps("delete_module init_module finit_module", "CAP_SYS_MODULE"),
			withCaps("acct", "CAP_SYS_PACCT"),
			withCaps("kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace", "CAP_SYS_PTRACE"),
			withCaps("iopl ioperm", "CAP_SYS_RAWIO"),
			withCaps("settimeofday stime clock_settime clock_settime64", "CAP_SYS_TIME"),
			withCaps("vhangup", "CAP_SYS_TTY_CONFIG"),
			withCaps("get_mempolicy mbind set_mempolicy set_mempolicy_home_node", "CAP_SYS_NICE"),
			withCaps("syslog", "CAP_SYSLOG"),
			withCaps("bpf", "CAP_BPF"),
			withCaps("perf_event_open", "CAP_PERFMON"),
		},
	}
}

// defaultAllowed is the profile's first rule: calls allowed to every
// container.
const defaultAllowed = `
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat
dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2
epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit exit_group
faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat
fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork
fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64
futex futex_time64 futex_waitv futimesat getcpu getcwd getdents getdents64
getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer
getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32
getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
get_thread_area gettid gettimeofday getuid getuid32 getxattr
inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set
io_setup io_submit io_uring_enter io_uring_register io_uring_setup ipc kill
landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr
link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64
madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat
mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap
msgctl msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep
newfstatat _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2
pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2
prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2
read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq
rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
sched_getaffinity sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min
sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity
sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select
semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto
setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer
setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32
setreuid setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area
set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack
signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64
statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time
timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat
utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
`
