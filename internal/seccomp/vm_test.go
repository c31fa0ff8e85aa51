package seccomp

import (
	"encoding/binary"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// input is a struct seccomp_data as the kernel fills it.
type input struct {
	nr   uint32
	arch uint32
	ip   uint64
	args [maxArgs]uint64
}

// words lays in out as the little-endian kernel does, in 32-bit words.
func (in input) words() [16]uint32 {
	w := [16]uint32{in.nr, in.arch, uint32(in.ip), uint32(in.ip >> 32)}
	for i, a := range in.args {
		w[4+2*i] = uint32(a)
		w[5+2*i] = uint32(a >> 32)
	}
	return w
}

// bytes encodes in for x/net/bpf's VM, which loads words big-endian: each
// word is stored big-endian at the offset where the kernel has it, so a
// load sees the value the kernel's load would.
func (in input) bytes() []byte {
	b := make([]byte, 64)
	for i, w := range in.words() {
		binary.BigEndian.PutUint32(b[4*i:], w)
	}
	return b
}

// newVM loads a program into x/net/bpf's VM.
func newVM(t testing.TB, prog []unix.SockFilter) *bpf.VM {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(prog))
	for i, f := range prog {
		raw[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("program has instructions x/net/bpf cannot decode")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("new VM: %v", err)
	}
	return vm
}

func runVM(t testing.TB, vm *bpf.VM, in input) uint32 {
	t.Helper()
	r, err := vm.Run(in.bytes())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return uint32(r)
}

// step runs prog on in and also counts the instructions executed, which
// x/net/bpf's VM does not report. It knows only what the compiler emits;
// the property test checks it agrees with the VM.
func step(prog []unix.SockFilter, in input) (ret uint32, n int) {
	w := in.words()
	var a uint32
	for pc := 0; pc < len(prog); pc++ {
		n++
		f := prog[pc]
		switch f.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			a = w[f.K/4]
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			a &= f.K
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(f.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			var c bool
			switch f.Code &^ (unix.BPF_JMP | unix.BPF_K) {
			case unix.BPF_JEQ:
				c = a == f.K
			case unix.BPF_JGT:
				c = a > f.K
			case unix.BPF_JGE:
				c = a >= f.K
			}
			if c {
				pc += int(f.Jt)
			} else {
				pc += int(f.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return f.K, n
		default:
			panic("step: unexpected instruction")
		}
	}
	panic("step: ran off the end")
}

// oracle says what a filter must return, from the spec alone, written as
// plainly as possible: the reference for the compiled programs.
func oracle(t testing.TB, s *specs.LinuxSeccomp, native specs.Arch, in input) uint32 {
	t.Helper()
	abis, _, err := abisFor(native, s.Architectures)
	if err != nil {
		t.Fatal(err)
	}
	var abi *arch
	for _, a := range abis {
		if a.audit != in.arch {
			continue
		}
		if a.audit == arches[specs.ArchX86_64].audit && (in.nr >= x32SyscallBit) != (a.name == specs.ArchX32) {
			continue
		}
		abi = a
	}
	if abi == nil {
		return unix.SECCOMP_RET_KILL_PROCESS
	}
	for _, sc := range s.Syscalls {
		named := false
		for _, n := range sc.Names {
			if nr, ok := abi.table[n]; ok && nr == in.nr {
				named = true
			}
		}
		if !named {
			continue
		}
		all := true
		for _, c := range sc.Args {
			v, k, k2 := in.args[c.Index], c.Value, c.ValueTwo
			if abi.args32 {
				v, k, k2 = uint64(uint32(v)), uint64(uint32(k)), uint64(uint32(k2))
			}
			var ok bool
			switch c.Op {
			case specs.OpEqualTo:
				ok = v == k
			case specs.OpNotEqual:
				ok = v != k
			case specs.OpLessThan:
				ok = v < k
			case specs.OpLessEqual:
				ok = v <= k
			case specs.OpGreaterThan:
				ok = v > k
			case specs.OpGreaterEqual:
				ok = v >= k
			case specs.OpMaskedEqual:
				ok = v&k == k2
			}
			all = all && ok
		}
		if all {
			r, err := actionOf(sc.Action, sc.ErrnoRet)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
	}
	r, err := actionOf(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// check runs in on f in the VM and in step, and compares both with want.
func check(t *testing.T, f *Filter, in input, want uint32) {
	t.Helper()
	got := runVM(t, newVM(t, f.prog), in)
	if got != want {
		t.Errorf("nr %#x arch %#x args %x: VM returns %#x, want %#x", in.nr, in.arch, in.args, got, want)
	}
	if s, _ := step(f.prog, in); s != got {
		t.Errorf("nr %#x: step returns %#x, VM %#x", in.nr, s, got)
	}
}
