package seccomp

import (
	"math/rand/v2"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// allNames is every syscall name of the tables, sorted.
func allNames() []string {
	seen := map[string]bool{}
	for _, t := range []map[string]uint32{tableX86_64, tableX86, tableX32, tableAARCH64, tableARM} {
		for n := range t {
			seen[n] = true
		}
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

var interesting = []uint64{0, 1, 2, 5, 0x7e020000, 0xffffffff, 1 << 32, 0x1_0000_0005, 0xffffffff_ffffffff, 0x8000_0000_0000_0000}

func randValue(r *rand.Rand) uint64 {
	if r.IntN(3) == 0 {
		return r.Uint64()
	}
	return interesting[r.IntN(len(interesting))]
}

func randAction(r *rand.Rand) (specs.LinuxSeccompAction, *uint) {
	acts := []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno, specs.ActKillProcess, specs.ActKill,
		specs.ActTrap, specs.ActLog, specs.ActTrace, specs.ActNotify}
	a := acts[r.IntN(len(acts))]
	if (a == specs.ActErrno || a == specs.ActTrace) && r.IntN(2) == 0 {
		return a, uintp(uint(r.IntN(200)))
	}
	return a, nil
}

func randSpec(r *rand.Rand, names []string) *specs.LinuxSeccomp {
	s := &specs.LinuxSeccomp{}
	for {
		s.DefaultAction, s.DefaultErrnoRet = randAction(r)
		if s.DefaultAction != specs.ActNotify {
			break
		}
	}
	for _, a := range []specs.Arch{specs.ArchX86, specs.ArchX32, specs.ArchARM} {
		if r.IntN(2) == 0 {
			s.Architectures = append(s.Architectures, a)
		}
	}
	ops := []specs.LinuxSeccompOperator{specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
		specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual}
	for range 1 + r.IntN(40) {
		var sc specs.LinuxSyscall
		for range 1 + r.IntN(15) {
			sc.Names = append(sc.Names, names[r.IntN(len(names))])
		}
		sc.Action, sc.ErrnoRet = randAction(r)
		if r.IntN(5) < 2 {
			for range 1 + r.IntN(3) {
				sc.Args = append(sc.Args, specs.LinuxSeccompArg{
					Index: uint(r.IntN(maxArgs)), Value: randValue(r), ValueTwo: randValue(r), Op: ops[r.IntN(len(ops))],
				})
			}
		}
		s.Syscalls = append(s.Syscalls, sc)
	}
	return s
}

// bigSpec is an allow-list of every x86_64 syscall but a few, with
// argument rules: long enough that jumps need trampolines.
func bigSpec() *specs.LinuxSeccomp {
	var names []string
	for n := range tableX86_64 {
		if n != "mkdir" && n != "ptrace" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX32}}
	for _, n := range names[:40] {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{n}, Action: specs.ActTrace,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: 7, Op: specs.OpGreaterThan}, {Index: 0, Value: 0xff, ValueTwo: 3, Op: specs.OpMaskedEqual}}})
	}
	s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: names, Action: specs.ActAllow})
	return s
}

func randInput(r *rand.Rand, names []string) input {
	in := input{ip: r.Uint64()}
	switch r.IntN(7) {
	case 0, 1:
		in.arch = auditX86_64
	case 2:
		in.arch = auditI386
	case 3:
		in.arch = auditARM
	case 4:
		in.arch = auditAARCH64
	default:
		in.arch = r.Uint32()
	}
	n := names[r.IntN(len(names))]
	switch r.IntN(8) {
	case 6:
		in.nr = tableAARCH64[n]
	case 7:
		in.nr = tableARM[n]
	case 0:
		in.nr = tableX86_64[n]
	case 1:
		in.nr = tableX86[n]
	case 2:
		in.nr = tableX32[n]
	case 3:
		in.nr = uint32(r.IntN(600))
	case 4:
		in.nr = x32SyscallBit | uint32(r.IntN(600))
	default:
		in.nr = r.Uint32()
	}
	for i := range in.args {
		in.args[i] = randValue(r)
	}
	return in
}

// TestSearchMatchesLinearAndOracle compiles random specs both ways and
// checks that, on random inputs, the search, the linear chain and the
// plain Go reading of the spec agree.
func TestSearchMatchesLinearAndOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	names := allNames()
	names = append(names, "no_such_syscall")
	const specsN, inputsN = 200, 300
	for i := range specsN {
		s := randSpec(r, names)
		if i == 0 {
			s = bigSpec()
		}
		// Every other spec on an arm64 host, where arm is the compat ABI.
		native := specs.ArchX86_64
		if i%2 == 1 {
			native = specs.ArchAARCH64
		}
		search, err := compile(s, compileOptions{native: native})
		if err != nil {
			t.Fatalf("spec %d: %v", i, err)
		}
		linear, err := compile(s, compileOptions{native: native, linear: true})
		if err != nil {
			t.Fatalf("spec %d linear: %v", i, err)
		}
		if i == 0 && !hasTrampoline(search.prog) {
			t.Errorf("big spec (%d instructions) needed no trampoline: the test lost its point", search.Len())
		}
		vs, vl := newVM(t, search.prog), newVM(t, linear.prog)
		for range inputsN {
			in := randInput(r, names)
			want := oracle(t, s, native, in)
			gs, gl := runVM(t, vs, in), runVM(t, vl, in)
			if gs != want || gl != want {
				t.Fatalf("spec %d %+v\ninput %+v: search %#x, linear %#x, oracle %#x", i, s, in, gs, gl, want)
			}
			if st, _ := step(search.prog, in); st != gs {
				t.Fatalf("spec %d: step %#x, VM %#x", i, st, gs)
			}
		}
	}
}

func hasTrampoline(prog []unix.SockFilter) bool {
	for _, f := range prog {
		if f.Code == unix.BPF_JMP|unix.BPF_JA {
			return true
		}
	}
	return false
}
