package seccomp

import (
	"errors"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// dockerCaps is Docker's default capability set.
var dockerCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

func defaultFilter(t testing.TB, caps []string, linear bool) (*specs.LinuxSeccomp, *Filter) {
	t.Helper()
	s, err := DefaultProfile().Spec(ProfileOptions{Arch: "amd64", Caps: caps, Kernel: "6.1.0-13-amd64"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := compile(s, compileOptions{native: specs.ArchX86_64, linear: linear})
	if err != nil {
		t.Fatal(err)
	}
	return s, f
}

func TestDefaultProfile(t *testing.T) {
	eperm := unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	enosys := unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	allow := uint32(unix.SECCOMP_RET_ALLOW)
	kill := uint32(unix.SECCOMP_RET_KILL_PROCESS)
	x := func(name string, args ...uint64) input {
		in := input{nr: tableX86_64[name], arch: auditX86_64}
		copy(in.args[:], args)
		return in
	}
	for _, tc := range []struct {
		name string
		caps []string
		in   input
		want uint32
	}{
		{"getpid", dockerCaps, x("getpid"), allow},
		{"mount without SYS_ADMIN", dockerCaps, x("mount"), eperm},
		{"mount with SYS_ADMIN", append(dockerCaps, "CAP_SYS_ADMIN"), x("mount"), allow},
		{"thread clone", dockerCaps, x("clone", unix.CLONE_VM|unix.CLONE_THREAD|unix.CLONE_SIGHAND), allow},
		{"clone new user ns", dockerCaps, x("clone", unix.CLONE_NEWUSER), eperm},
		{"clone3 without SYS_ADMIN", dockerCaps, x("clone3"), enosys},
		{"clone3 with SYS_ADMIN", append(dockerCaps, "CAP_SYS_ADMIN"), x("clone3"), allow},
		{"chroot with SYS_CHROOT", dockerCaps, x("chroot"), allow},
		{"reboot", dockerCaps, x("reboot"), eperm},
		{"socket inet", dockerCaps, x("socket", unix.AF_INET), allow},
		{"socket vsock", dockerCaps, x("socket", unix.AF_VSOCK), eperm},
		{"personality linux32", dockerCaps, x("personality", 8), allow},
		{"personality other", dockerCaps, x("personality", 0x0400000), eperm},
		{"arch_prctl", dockerCaps, x("arch_prctl"), allow},
		{"ptrace on a new kernel", dockerCaps, x("ptrace"), allow},
		{"i386 getpid", dockerCaps, input{nr: tableX86["getpid"], arch: auditI386}, allow},
		{"i386 socketcall", dockerCaps, input{nr: tableX86["socketcall"], arch: auditI386}, allow},
		{"x32 read", dockerCaps, input{nr: tableX32["read"], arch: auditX86_64}, allow},
		{"x32 mount", dockerCaps, input{nr: tableX32["mount"], arch: auditX86_64}, eperm},
		{"arm", dockerCaps, input{nr: 20, arch: arches[specs.ArchARM].audit}, kill},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f := defaultFilter(t, tc.caps, false)
			check(t, f, tc.in, tc.want)
			if o := oracle(t, s, specs.ArchX86_64, tc.in); o != tc.want {
				t.Errorf("oracle says %#x", o)
			}
		})
	}
}

func TestDefaultProfileOldKernel(t *testing.T) {
	s, err := DefaultProfile().Spec(ProfileOptions{Arch: "amd64", Caps: dockerCaps, Kernel: "4.4.0"})
	if err != nil {
		t.Fatal(err)
	}
	f := mustCompile(t, s, specs.ArchX86_64)
	// Before 4.8 a tracer could rewrite a call after seccomp checked it.
	check(t, f, input{nr: tableX86_64["ptrace"], arch: auditX86_64}, unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM))
}

func TestDefaultProfileArm64(t *testing.T) {
	s, err := DefaultProfile().Spec(ProfileOptions{Arch: "arm64", Caps: dockerCaps, Kernel: "6.1"})
	if err != nil {
		t.Fatal(err)
	}
	f := mustCompile(t, s, specs.ArchAARCH64)
	eperm := unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	check(t, f, input{nr: tableAARCH64["getpid"], arch: auditAARCH64}, unix.SECCOMP_RET_ALLOW)
	check(t, f, input{nr: tableAARCH64["mount"], arch: auditAARCH64}, eperm)
	// 32-bit arm programs on the arm64 host, with arm's private calls.
	check(t, f, input{nr: tableARM["getpid"], arch: auditARM}, unix.SECCOMP_RET_ALLOW)
	check(t, f, input{nr: tableARM["cacheflush"], arch: auditARM}, unix.SECCOMP_RET_ALLOW)
	check(t, f, input{nr: tableARM["mount"], arch: auditARM}, eperm)
	check(t, f, input{nr: tableX86_64["getpid"], arch: auditX86_64}, unix.SECCOMP_RET_KILL_PROCESS)
	if d := f.DroppedArches(); len(d) != 0 {
		t.Errorf("DroppedArches() = %v", d)
	}
}

func TestProfileBadInput(t *testing.T) {
	for _, o := range []ProfileOptions{{Arch: "z80", Kernel: "6.1"}, {Arch: "amd64", Kernel: "six"}} {
		if _, err := DefaultProfile().Spec(o); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Spec(%+v): %v, want ErrInvalidArgument", o, err)
		}
	}
}

// TestDefaultProfileNames catches typos when the profile is updated: every
// name must be in one of the tables, or be a call of an arch berth has no
// table for.
func TestDefaultProfileNames(t *testing.T) {
	foreign := map[string]bool{"swapcontext": true, "s390_pci_mmio_read": true,
		"s390_pci_mmio_write": true, "s390_runtime_instr": true, "riscv_flush_icache": true}
	for _, r := range DefaultProfile().Rules {
		for _, n := range r.Names {
			_, a := tableX86_64[n]
			_, b := tableX86[n]
			_, c := tableX32[n]
			_, d := tableAARCH64[n]
			_, e := tableARM[n]
			if !a && !b && !c && !d && !e && !foreign[n] {
				t.Errorf("%s: no table has it", n)
			}
		}
	}
}

func TestDefaultProfileIsFresh(t *testing.T) {
	p := DefaultProfile()
	p.Rules[0].Names[0] = "changed"
	if DefaultProfile().Rules[0].Names[0] == "changed" {
		t.Error("DefaultProfile returns shared state")
	}
}

// BenchmarkDefaultProfile runs Docker's default profile in x/net/bpf's VM
// over every x86_64 syscall it allows (what a container mostly calls), in
// the search layout and the linear one, and reports the instructions run
// per syscall.
func BenchmarkDefaultProfile(b *testing.B) {
	for _, layout := range []struct {
		name   string
		linear bool
	}{{"search", false}, {"linear", true}} {
		b.Run(layout.name, func(b *testing.B) {
			s, f := defaultFilter(b, dockerCaps, layout.linear)
			var ins []input
			for _, n := range s.Syscalls[0].Names {
				if nr, ok := tableX86_64[n]; ok {
					ins = append(ins, input{nr: nr, arch: auditX86_64})
				}
			}
			total, most := 0, 0
			for _, in := range ins {
				_, n := step(f.prog, in)
				total += n
				most = max(most, n)
			}
			vm := newVM(b, f.prog)
			data := make([][]byte, len(ins))
			for i, in := range ins {
				data[i] = in.bytes()
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := vm.Run(data[i%len(data)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(total)/float64(len(ins)), "insns/syscall")
			b.ReportMetric(float64(most), "max-insns")
			b.ReportMetric(float64(f.Len()), "prog-insns")
		})
	}
}

// BenchmarkCompileDefault is the cost Compile adds to a container start
// with Docker's default profile.
func BenchmarkCompileDefault(b *testing.B) {
	s, err := DefaultProfile().Spec(ProfileOptions{Arch: "amd64", Caps: dockerCaps, Kernel: "6.1"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := compile(s, compileOptions{native: specs.ArchX86_64}); err != nil {
			b.Fatal(err)
		}
	}
}
