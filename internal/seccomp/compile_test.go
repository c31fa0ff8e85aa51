package seccomp

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

const (
	auditX86_64  = 0xc000003e
	auditI386    = 0x40000003
	auditAARCH64 = 0xc00000b7
	auditARM     = 0x40000028
)

func uintp(v uint) *uint { return &v }

func mustCompile(t *testing.T, s *specs.LinuxSeccomp, native specs.Arch) *Filter {
	t.Helper()
	f, err := compile(s, compileOptions{native: native})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return f
}

// x86 returns the x86_64 number of a syscall.
func x86(name string) uint32 { return tableX86_64[name] }

func TestActions(t *testing.T) {
	for _, tc := range []struct {
		action   specs.LinuxSeccompAction
		errnoRet *uint
		want     uint32
	}{
		{specs.ActKill, nil, unix.SECCOMP_RET_KILL_THREAD},
		{specs.ActKillThread, nil, unix.SECCOMP_RET_KILL_THREAD},
		{specs.ActKillProcess, nil, unix.SECCOMP_RET_KILL_PROCESS},
		{specs.ActTrap, nil, unix.SECCOMP_RET_TRAP},
		{specs.ActErrno, nil, unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{specs.ActErrno, uintp(uint(unix.ENOSYS)), unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		{specs.ActErrno, uintp(0), unix.SECCOMP_RET_ERRNO},
		{specs.ActTrace, nil, unix.SECCOMP_RET_TRACE | uint32(unix.EPERM)},
		{specs.ActTrace, uintp(77), unix.SECCOMP_RET_TRACE | 77},
		{specs.ActLog, nil, unix.SECCOMP_RET_LOG},
		{specs.ActNotify, nil, unix.SECCOMP_RET_USER_NOTIF},
		{specs.ActAllow, nil, unix.SECCOMP_RET_ALLOW},
	} {
		name := string(tc.action)
		if tc.errnoRet != nil {
			name = fmt.Sprintf("%s(%d)", name, *tc.errnoRet)
		}
		t.Run(name, func(t *testing.T) {
			def := specs.ActAllow
			defRet := uint32(unix.SECCOMP_RET_ALLOW)
			if tc.action == specs.ActAllow {
				def, defRet = specs.ActErrno, unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM)
			}
			f := mustCompile(t, &specs.LinuxSeccomp{
				DefaultAction: def,
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: tc.action, ErrnoRet: tc.errnoRet}},
			}, specs.ArchX86_64)
			check(t, f, input{nr: x86("getppid"), arch: auditX86_64}, tc.want)
			check(t, f, input{nr: x86("getpid"), arch: auditX86_64}, defRet)
			if f.Notify() != (tc.action == specs.ActNotify) {
				t.Errorf("Notify() = %v", f.Notify())
			}
		})
	}
}

func TestDefaultErrnoRet(t *testing.T) {
	f := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uintp(uint(unix.ENOSYS)),
		Syscalls:        []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActAllow}},
	}, specs.ArchX86_64)
	check(t, f, input{nr: x86("write"), arch: auditX86_64}, unix.SECCOMP_RET_ALLOW)
	check(t, f, input{nr: x86("mkdir"), arch: auditX86_64}, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS))
	check(t, f, input{nr: 0xffffffff & 5000, arch: auditX86_64}, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS))
}

func TestArchitectures(t *testing.T) {
	errno := unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	allow := uint32(unix.SECCOMP_RET_ALLOW)
	kill := uint32(unix.SECCOMP_RET_KILL_PROCESS)
	rules := []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno}}
	for _, tc := range []struct {
		name   string
		native specs.Arch
		arches []specs.Arch
		in     input
		want   uint32
	}{
		{"native only", specs.ArchX86_64, nil, input{nr: x86("getppid"), arch: auditX86_64}, errno},
		{"i386 not listed", specs.ArchX86_64, nil, input{nr: tableX86["getppid"], arch: auditI386}, kill},
		{"i386 listed", specs.ArchX86_64, []specs.Arch{specs.ArchX86}, input{nr: tableX86["getppid"], arch: auditI386}, errno},
		{"i386 other syscall", specs.ArchX86_64, []specs.Arch{specs.ArchX86}, input{nr: x86("getppid"), arch: auditI386}, allow},
		{"foreign arch", specs.ArchX86_64, []specs.Arch{specs.ArchX86}, input{nr: x86("getppid"), arch: auditAARCH64}, kill},
		// Docker lists arm for amd64 hosts too: dropped, it cannot occur.
		{"foreign arch listed", specs.ArchX86_64, []specs.Arch{specs.ArchARM}, input{nr: 1, arch: arches[specs.ArchARM].audit}, kill},
		{"x32 bit, x32 not listed", specs.ArchX86_64, []specs.Arch{specs.ArchX86}, input{nr: x86("getpid") | x32SyscallBit, arch: auditX86_64}, kill},
		{"x32 listed, x32 call", specs.ArchX86_64, []specs.Arch{specs.ArchX32}, input{nr: tableX32["getppid"], arch: auditX86_64}, errno},
		{"x32 listed, other x32 call", specs.ArchX86_64, []specs.Arch{specs.ArchX32}, input{nr: tableX32["getpid"], arch: auditX86_64}, allow},
		{"x32 listed, x86_64 call", specs.ArchX86_64, []specs.Arch{specs.ArchX32}, input{nr: x86("getppid"), arch: auditX86_64}, errno},
		{"x32 only numbers", specs.ArchX86_64, []specs.Arch{specs.ArchX32}, input{nr: x32SyscallBit | 512, arch: auditX86_64}, allow},
		{"nr -1 without x32", specs.ArchX86_64, nil, input{nr: 0xffffffff, arch: auditX86_64}, kill},
		{"aarch64 native", specs.ArchAARCH64, nil, input{nr: tableAARCH64["getppid"], arch: auditAARCH64}, errno},
		{"aarch64 native, x86_64 call", specs.ArchAARCH64, nil, input{nr: x86("getppid"), arch: auditX86_64}, kill},
		{"aarch64 native, arm not listed", specs.ArchAARCH64, nil, input{nr: tableARM["getppid"], arch: auditARM}, kill},
		{"aarch64 native, arm listed", specs.ArchAARCH64, []specs.Arch{specs.ArchARM}, input{nr: tableARM["getppid"], arch: auditARM}, errno},
		{"arm private call", specs.ArchAARCH64, []specs.Arch{specs.ArchARM}, input{nr: tableARM["cacheflush"], arch: auditARM}, allow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: tc.arches, Syscalls: rules}
			f := mustCompile(t, s, tc.native)
			check(t, f, tc.in, tc.want)
			if o := oracle(t, s, tc.native, tc.in); o != tc.want {
				t.Errorf("oracle says %#x, want %#x", o, tc.want)
			}
		})
	}
}

func TestArgumentOps(t *testing.T) {
	const big = 0x1_0000_0005
	for _, tc := range []struct {
		op       specs.LinuxSeccompOperator
		value    uint64
		valueTwo uint64
		arg      uint64
		match    bool
		match32  bool // on i386, where only the low halves count
	}{
		{specs.OpEqualTo, 5, 0, 5, true, true},
		{specs.OpEqualTo, 5, 0, big, false, true},
		{specs.OpEqualTo, big, 0, big, true, true},
		{specs.OpNotEqual, 5, 0, 5, false, false},
		{specs.OpNotEqual, 5, 0, big, true, false},
		{specs.OpNotEqual, 5, 0, 6, true, true},
		{specs.OpLessThan, 5, 0, 4, true, true},
		{specs.OpLessThan, 5, 0, 5, false, false},
		{specs.OpLessThan, big, 0, 0xffffffff, true, false},
		{specs.OpLessThan, 0xffffffff, 0, big, false, true},
		{specs.OpLessEqual, 5, 0, 5, true, true},
		{specs.OpLessEqual, 5, 0, 6, false, false},
		{specs.OpLessEqual, big, 0, big + 1, false, false},
		{specs.OpLessEqual, big, 0, 4, true, true},
		{specs.OpGreaterThan, 5, 0, 6, true, true},
		{specs.OpGreaterThan, 5, 0, 5, false, false},
		{specs.OpGreaterThan, 0xffffffff, 0, big, true, false},
		{specs.OpGreaterThan, big, 0, 0xffffffff, false, true},
		{specs.OpGreaterEqual, 5, 0, 5, true, true},
		{specs.OpGreaterEqual, 5, 0, 4, false, false},
		{specs.OpGreaterEqual, big, 0, big, true, true},
		{specs.OpGreaterEqual, big, 0, 6, false, true},
		// value is the mask, valueTwo the datum: Docker's clone rule.
		{specs.OpMaskedEqual, 0x7e020000, 0, 0x11, true, true},
		{specs.OpMaskedEqual, 0x7e020000, 0, 0x10000000, false, false},
		{specs.OpMaskedEqual, 0xff, 0x05, 0x1_0000_0105, true, true},
		{specs.OpMaskedEqual, 0xffffffff_00000000, 0x1_00000000, 0x1_00000005, true, true},
		{specs.OpMaskedEqual, 0xffffffff_00000000, 0x1_00000000, 0x2_00000005, false, true},
	} {
		t.Run(string(tc.op), func(t *testing.T) {
			s := &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Architectures: []specs.Arch{specs.ArchX86},
				Syscalls: []specs.LinuxSyscall{{
					Names:  []string{"personality"},
					Action: specs.ActErrno,
					Args:   []specs.LinuxSeccompArg{{Index: 3, Value: tc.value, ValueTwo: tc.valueTwo, Op: tc.op}},
				}},
			}
			f := mustCompile(t, s, specs.ArchX86_64)
			want := func(m bool) uint32 {
				if m {
					return unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
				}
				return unix.SECCOMP_RET_ALLOW
			}
			in := input{nr: x86("personality"), arch: auditX86_64, args: [6]uint64{3: tc.arg}}
			check(t, f, in, want(tc.match))
			in32 := input{nr: tableX86["personality"], arch: auditI386, args: [6]uint64{3: tc.arg}}
			check(t, f, in32, want(tc.match32))
			for _, in := range []input{in, in32} {
				if o := oracle(t, s, specs.ArchX86_64, in); o != runVM(t, newVM(t, f.prog), in) {
					t.Errorf("oracle disagrees for %+v", in)
				}
			}
		})
	}
}

func TestRulesInOrderConditionsAnded(t *testing.T) {
	eq := func(i uint, v uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: i, Value: v, Op: specs.OpEqualTo}
	}
	f := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{eq(0, 1), eq(1, 2)}},
			{Names: []string{"socket"}, Action: specs.ActTrap, Args: []specs.LinuxSeccompArg{eq(0, 1)}},
			{Names: []string{"socket"}, Action: specs.ActLog},
			{Names: []string{"socket"}, Action: specs.ActKillProcess}, // never reached
		},
	}, specs.ArchX86_64)
	nr := x86("socket")
	for _, tc := range []struct {
		name string
		args [6]uint64
		want uint32
	}{
		{"both hold", [6]uint64{1, 2}, unix.SECCOMP_RET_ALLOW},
		{"first only", [6]uint64{1, 3}, unix.SECCOMP_RET_TRAP},
		{"neither", [6]uint64{2, 2}, unix.SECCOMP_RET_LOG},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, f, input{nr: nr, arch: auditX86_64, args: tc.args}, tc.want)
		})
	}
}

func TestUnknownNamesSkipped(t *testing.T) {
	f := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"no_such_syscall", "getppid", "socketcall"}, Action: specs.ActErrno},
		},
	}, specs.ArchX86_64)
	// socketcall exists on i386 only: skipped on x86_64 as libseccomp does.
	if got := f.Unknown(); len(got) != 2 || got[0] != "no_such_syscall" || got[1] != "socketcall" {
		t.Errorf("Unknown() = %v", got)
	}
	check(t, f, input{nr: x86("getppid"), arch: auditX86_64}, unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM))
}

func TestBadInput(t *testing.T) {
	ok := specs.LinuxSyscall{Names: []string{"getppid"}, Action: specs.ActErrno}
	for _, tc := range []struct {
		name string
		s    *specs.LinuxSeccomp
		want string
		cls  error
	}{
		{"nil", nil, "no configuration", errdefs.ErrInvalidArgument},
		{"no default action", &specs.LinuxSeccomp{}, "defaultAction: action: empty", errdefs.ErrInvalidArgument},
		{"unknown default action", &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_PANIC"}, `action "SCMP_ACT_PANIC": unknown`, errdefs.ErrInvalidArgument},
		{"notify default", &specs.LinuxSeccomp{DefaultAction: specs.ActNotify}, "cannot be the default", errdefs.ErrInvalidArgument},
		{"default errno on allow", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, DefaultErrnoRet: uintp(1)}, "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one", errdefs.ErrInvalidArgument},
		{"errno too big", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(5000)}, "errnoRet 5000", errdefs.ErrInvalidArgument},
		{"trace data too big", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActTrace, ErrnoRet: uintp(70000)}}}, "errnoRet 70000", errdefs.ErrInvalidArgument},
		{"unknown action", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{ok, {Names: []string{"read"}, Action: "SCMP_ACT_MAYBE"}}}, `syscalls[1] (read): action "SCMP_ACT_MAYBE": unknown`, errdefs.ErrInvalidArgument},
		{"errno on kill", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActKill, ErrnoRet: uintp(1)}}}, "errnoRet 1: only", errdefs.ErrInvalidArgument},
		{"unknown op", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_ABOUT"}}}}}, `args[0]: op "SCMP_CMP_ABOUT": unknown`, errdefs.ErrInvalidArgument},
		{"empty op", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0}}}}}, `op "": unknown`, errdefs.ErrInvalidArgument},
		{"arg index", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}, "args[0]: index 6: a syscall has arguments 0 to 5", errdefs.ErrInvalidArgument},
		{"no names", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Action: specs.ActErrno}}}, "names: empty", errdefs.ErrInvalidArgument},
		{"unknown arch", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_Z80"}}, `architecture "SCMP_ARCH_Z80": unknown`, errdefs.ErrInvalidArgument},
		{"unknown flag", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FAST"}}, `flag "SECCOMP_FILTER_FLAG_FAST": unknown`, errdefs.ErrInvalidArgument},
		{"metadata without path", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerMetadata: "x"}, "listenerMetadata: set without listenerPath", errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := compile(tc.s, compileOptions{native: specs.ArchX86_64})
			if err == nil {
				t.Fatalf("compile succeeded (%d instructions), want an error", f.Len())
			}
			if !errors.Is(err, tc.cls) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want %q (%v)", err, tc.want, tc.cls)
			}
		})
	}
}

func TestCompatArchWithoutTable(t *testing.T) {
	// Every compat ABI of x86_64 and arm64 has a table; pretend mips runs
	// on arm64 to see what happens to one without. With no numbers no rule
	// can be placed, so its calls are killed (fail closed).
	saved := compat[specs.ArchAARCH64]
	compat[specs.ArchAARCH64] = append(slices.Clone(saved), specs.ArchMIPS)
	t.Cleanup(func() { compat[specs.ArchAARCH64] = saved })
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchMIPS}}
	f := mustCompile(t, s, specs.ArchAARCH64)
	if d := f.DroppedArches(); len(d) != 1 || d[0] != specs.ArchMIPS {
		t.Errorf("DroppedArches() = %v, want [SCMP_ARCH_MIPS]", d)
	}
	check(t, f, input{nr: 20, arch: arches[specs.ArchMIPS].audit}, unix.SECCOMP_RET_KILL_PROCESS)
	check(t, f, input{nr: 20, arch: auditAARCH64}, unix.SECCOMP_RET_ALLOW)
}

func TestFlags(t *testing.T) {
	f := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog,
			specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv},
	}, specs.ArchX86_64)
	// WAIT_KILLABLE_RECV is dropped without a listener: the kernel refuses it.
	if want := uint(unix.SECCOMP_FILTER_FLAG_LOG | unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW); f.flags != want || !f.tsync {
		t.Errorf("flags %#x tsync %v, want %#x and tsync", f.flags, f.tsync, want)
	}
}
