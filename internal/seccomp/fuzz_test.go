package seccomp

import (
	"encoding/json"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzCompile feeds arbitrary JSON seccomp sections to the compiler: it
// must fail cleanly or produce a program that x/net/bpf accepts and that
// agrees with the oracle on an input built from the fuzz data.
func FuzzCompile(f *testing.F) {
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"],"syscalls":[{"names":["read","clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"op":"SCMP_CMP_MASKED_EQ"}]}]}`), uint32(56), uint64(0x11))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_NOTIFY"},{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}`), uint32(110), uint64(0))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_LOG","syscalls":[{"names":["personality"],"action":"SCMP_ACT_TRACE","args":[{"index":5,"value":4294967296,"op":"SCMP_CMP_GE"},{"index":0,"value":8,"op":"SCMP_CMP_NE"}]}]}`), uint32(135), uint64(1<<32))
	f.Fuzz(func(t *testing.T, data []byte, nr uint32, arg uint64) {
		var s specs.LinuxSeccomp
		if json.Unmarshal(data, &s) != nil {
			return
		}
		fl, err := compile(&s, compileOptions{native: specs.ArchX86_64})
		if err != nil {
			return
		}
		in := input{nr: nr, arch: auditX86_64, args: [6]uint64{arg, arg, arg, arg, arg, arg}}
		if got, want := runVM(t, newVM(t, fl.prog), in), oracle(t, &s, specs.ArchX86_64, in); got != want {
			t.Fatalf("program returns %#x, oracle %#x", got, want)
		}
	})
}

// TestTablesSane spot-checks the generated tables against numbers fixed
// by each ABI for good.
func TestTablesSane(t *testing.T) {
	for _, tc := range []struct {
		table map[string]uint32
		name  string
		nr    uint32
	}{
		{tableX86_64, "read", 0},
		{tableX86_64, "getppid", 110},
		{tableX86_64, "clone3", 435},
		{tableX86, "exit", 1},
		{tableX86, "socketcall", 102},
		{tableX32, "read", x32SyscallBit},
		{tableX32, "execve", x32SyscallBit | 520},
		{tableAARCH64, "openat", 56},
		{tableAARCH64, "getppid", 173},
		{tableARM, "exit", 1},
		{tableARM, "getppid", 64},
		{tableARM, "cacheflush", 0xf0002},
	} {
		if got, ok := tc.table[tc.name]; !ok || got != tc.nr {
			t.Errorf("%s = %d (%v), want %d", tc.name, got, ok, tc.nr)
		}
	}
	if _, ok := tableAARCH64["open"]; ok {
		t.Error("arm64 has no open(2); the generic table was built with the wrong switches")
	}
}
