package devicefilter

import (
	"fmt"
	"slices"

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

// Compile builds the filter for rules, which mean what they would mean
// written in order to a v1 cgroup's devices.allow and devices.deny
// (Documentation/admin-guide/cgroup-v1/devices.rst), so a spec limits the
// same devices on either version:
//
//   - a rule for every type, device and access sets the default (allow or
//     deny) and clears every exception;
//   - a rule of the other kind than the default adds an exception, merging
//     its access into an existing exception for the same device;
//   - a rule of the default's kind removes access bits from the exception
//     for exactly that device (not from wider or narrower ones).
//
// With no such "all" rule the default is to deny, as the OCI runtimes do.
// Under a deny default an exception allows an access when it grants every
// bit asked for; under an allow default it denies an access when it
// forbids any bit asked for.
func Compile(rules []specs.LinuxDeviceCgroup) (*Program, error) {
	defaultAllow, ex, err := emulate(rules)
	if err != nil {
		return nil, err
	}
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
	for _, e := range ex {
		insns = append(insns, block(e)...)
	}
	insns = append(insns, mov64(0, boolImm(defaultAllow)), exit())
	return &Program{insns: insns}, nil
}

// emulate runs the rules through the v1 devices controller's state
// machine and returns the default and the exceptions left, all of which
// are of the opposite kind to the default.
func emulate(rules []specs.LinuxDeviceCgroup) (bool, []rule, error) {
	defaultAllow := false
	var ex []rule
	for _, r := range rules {
		p, err := parse(r)
		if err != nil {
			return false, nil, err
		}
		if p.isReset() {
			defaultAllow, ex = p.allow, nil
			continue
		}
		// v1 has no type "a" exception: such a rule stands for one on
		// character devices and one on block devices.
		var each []rule
		if p.typ == 0 {
			c, b := p, p
			c.typ, b.typ = devChar, devBlock
			each = []rule{c, b}
		} else {
			each = []rule{p}
		}
		for _, q := range each {
			i := slices.IndexFunc(ex, func(e rule) bool {
				return e.typ == q.typ && e.major == q.major && e.minor == q.minor
			})
			switch {
			case q.allow != defaultAllow && i >= 0:
				ex[i].access |= q.access
			case q.allow != defaultAllow:
				ex = append(ex, q)
			case i >= 0:
				ex[i].access &^= q.access
				if ex[i].access == 0 {
					ex = slices.Delete(ex, i, i+1)
				}
			}
		}
	}
	return defaultAllow, ex, nil
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

// Effective returns what rules leave in force, in the form of a v1
// cgroup's devices.list: with a deny default, one line per allowed
// exception ("c 1:3 rwm", "*" for any number); with an allow default,
// "a *:* rwm" (the kernel lists no more than that either). Tests use it to
// check the emulation against a real v1 devices cgroup.
func Effective(rules []specs.LinuxDeviceCgroup) ([]string, error) {
	defaultAllow, ex, err := emulate(rules)
	if err != nil {
		return nil, err
	}
	if defaultAllow {
		return []string{"a *:* rwm"}, nil
	}
	out := make([]string, 0, len(ex))
	for _, e := range ex {
		t := "c"
		if e.typ == devBlock {
			t = "b"
		}
		n := func(v int64) string {
			if v == -1 {
				return "*"
			}
			return fmt.Sprint(v)
		}
		acc := ""
		for _, a := range []struct {
			bit int
			c   string
		}{{accRead, "r"}, {accWrite, "w"}, {accMknod, "m"}} {
			if e.access&a.bit != 0 {
				acc += a.c
			}
		}
		out = append(out, fmt.Sprintf("%s %s:%s %s", t, n(e.major), n(e.minor), acc))
	}
	return out, nil
}
