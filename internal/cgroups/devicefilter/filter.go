package devicefilter

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Access bits and device types as the kernel hands them to the program in
// struct bpf_cgroup_dev_ctx (include/uapi/linux/bpf.h): access_type holds
// the access in its high 16 bits and the device type in its low 16.
const (
	accMknod = 1
	accRead  = 2
	accWrite = 4
	accAll   = accMknod | accRead | accWrite

	devBlock = 1
	devChar  = 2
)

// Instruction is one eBPF instruction (struct bpf_insn).
type Instruction struct {
	Op       uint8
	Dst, Src uint8
	Off      int16
	Imm      int32
}

// Program is a compiled device filter, ready to load.
type Program struct {
	insns []Instruction
}

// Instructions returns the program's instructions, for tests and debugging.
func (p *Program) Instructions() []Instruction { return p.insns }

// rule is a validated device rule: wildcards are -1, access is a bit set.
type rule struct {
	allow        bool
	typ          int // 0 for any
	major, minor int64
	access       int
}

// Validate checks one OCI device rule the way both cgroup versions need it:
// type a, b or c (empty means a), access made of r, w and m (empty means
// all), and non-negative device numbers unless -1 for "any".
func Validate(r specs.LinuxDeviceCgroup) error {
	_, err := parse(r)
	return err
}

func parse(r specs.LinuxDeviceCgroup) (rule, error) {
	out := rule{allow: r.Allow, major: -1, minor: -1}
	switch r.Type {
	case "", "a":
	case "b":
		out.typ = devBlock
	case "c":
		out.typ = devChar
	default:
		return rule{}, fmt.Errorf("device rule type %q: want a, b or c: %w", r.Type, errdefs.ErrInvalidArgument)
	}
	for _, n := range []struct {
		name string
		v    *int64
		dst  *int64
	}{{"major", r.Major, &out.major}, {"minor", r.Minor, &out.minor}} {
		if n.v == nil {
			continue
		}
		// Device numbers are 32-bit in the kernel's dev ctx; -1 means any.
		if *n.v < -1 || *n.v > 1<<31-1 {
			return rule{}, fmt.Errorf("device rule %s %d: out of range: %w", n.name, *n.v, errdefs.ErrInvalidArgument)
		}
		*n.dst = *n.v
	}
	for _, c := range r.Access {
		switch c {
		case 'r':
			out.access |= accRead
		case 'w':
			out.access |= accWrite
		case 'm':
			out.access |= accMknod
		default:
			return rule{}, fmt.Errorf("device rule access %q: want letters of rwm: %w", r.Access, errdefs.ErrInvalidArgument)
		}
	}
	if out.access == 0 {
		out.access = accAll
	}
	return out, nil
}

// isReset tells whether r matches every access to every device: such a
// rule sets the default and makes every earlier rule irrelevant, as writing
// "a" to devices.allow or devices.deny does on v1.
func (r rule) isReset() bool {
	return r.typ == 0 && r.major == -1 && r.minor == -1 && r.access == accAll
}

// Compile builds the filter for rules, which apply in order with the last
// matching rule deciding, as on the v1 devices controller. With no rule
// that matches everything, the default is to deny: that is what OCI
// runtimes do when the list starts without one.
//
// An allow rule matches an access when it grants every bit asked for; a
// deny rule matches when it forbids any bit asked for. So "allow c 1:3 rwm"
// followed by "deny c 1:3 w" still lets a reader open /dev/null but refuses
// an open for reading and writing.
func Compile(rules []specs.LinuxDeviceCgroup) (*Program, error) {
	defaultAllow := false
	var rs []rule
	for _, r := range rules {
		p, err := parse(r)
		if err != nil {
			return nil, err
		}
		if p.isReset() {
			defaultAllow = p.allow
			rs = rs[:0]
			continue
		}
		rs = append(rs, p)
	}
	// Rules that agree with the default change nothing unless a later rule
	// of the opposite kind overlaps them; keeping them is harmless, so keep
	// the program a plain reverse walk.
	var insns []Instruction
	insns = append(insns,
		ldxw(2, 1, 0),    // r2 = ctx->access_type
		mov32(3, 2),      // r3 = r2
		and32(3, 0xffff), // r3 = device type
		mov32(4, 2),      // r4 = r2
		rsh32(4, 16),     // r4 = access requested
		ldxw(5, 1, 4),    // r5 = ctx->major
		ldxw(6, 1, 8),    // r6 = ctx->minor
	)
	for i := len(rs) - 1; i >= 0; i-- {
		insns = append(insns, block(rs[i])...)
	}
	insns = append(insns, mov64(0, boolImm(defaultAllow)), exit())
	return &Program{insns: insns}, nil
}

// block is the code for one rule: a run of tests that each jump past the
// block when the rule does not match, then "return allow".
func block(r rule) []Instruction {
	var b []Instruction
	var jumps []int
	jmp := func(in Instruction) {
		jumps = append(jumps, len(b))
		b = append(b, in)
	}
	if r.typ != 0 {
		jmp(jne(3, int32(r.typ)))
	}
	if r.access != accAll {
		b = append(b, mov32(7, 4))
		if r.allow {
			// Not a match unless every requested bit is granted.
			b = append(b, and32(7, int32(^r.access&accAll)))
			jmp(jne(7, 0))
		} else {
			// A match as soon as one requested bit is denied.
			b = append(b, and32(7, int32(r.access)))
			jmp(jeq(7, 0))
		}
	}
	if r.major != -1 {
		jmp(jne(5, int32(r.major)))
	}
	if r.minor != -1 {
		jmp(jne(6, int32(r.minor)))
	}
	b = append(b, mov64(0, boolImm(r.allow)), exit())
	for _, j := range jumps {
		// A jump lands at pc+1+off; the next block starts at len(b).
		b[j].Off = int16(len(b) - j - 1)
	}
	return b
}

func boolImm(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

func ldxw(dst, src uint8, off int16) Instruction {
	return Instruction{Op: unix.BPF_LDX | unix.BPF_W | unix.BPF_MEM, Dst: dst, Src: src, Off: off}
}
func mov32(dst, src uint8) Instruction {
	return Instruction{Op: unix.BPF_ALU | unix.BPF_MOV | unix.BPF_X, Dst: dst, Src: src}
}
func and32(dst uint8, imm int32) Instruction {
	return Instruction{Op: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, Dst: dst, Imm: imm}
}
func rsh32(dst uint8, imm int32) Instruction {
	return Instruction{Op: unix.BPF_ALU | unix.BPF_RSH | unix.BPF_K, Dst: dst, Imm: imm}
}
func jne(dst uint8, imm int32) Instruction {
	return Instruction{Op: unix.BPF_JMP | unix.BPF_JNE | unix.BPF_K, Dst: dst, Imm: imm}
}
func jeq(dst uint8, imm int32) Instruction {
	return Instruction{Op: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Dst: dst, Imm: imm}
}
func mov64(dst uint8, imm int32) Instruction {
	return Instruction{Op: unix.BPF_ALU64 | unix.BPF_MOV | unix.BPF_K, Dst: dst, Imm: imm}
}
func exit() Instruction { return Instruction{Op: unix.BPF_JMP | unix.BPF_EXIT} }
