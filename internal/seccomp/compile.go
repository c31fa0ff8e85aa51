package seccomp

import (
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Offsets into struct seccomp_data (include/uapi/linux/seccomp.h), the
// input of every filter: int nr; __u32 arch; __u64 instruction_pointer;
// __u64 args[6]. Values are in the kernel's byte order; every ABI with a
// table here is little-endian, so an argument's low half comes first.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
	maxArgs = 6
)

// maxErrno is the largest errno a filter may return: the kernel clamps
// SECCOMP_RET_ERRNO data to MAX_ERRNO (include/linux/err.h).
const maxErrno = 4095

// retKillProcess is what a syscall from an ABI the filter does not cover
// gets. libseccomp kills too; the whole process rather than one thread, so
// a multithreaded program never runs on with a thread silently gone.
const retKillProcess = unix.SECCOMP_RET_KILL_PROCESS

// Filter is a compiled seccomp program with the flags to load it with.
// It is immutable, so safe for concurrent use; Load may be called in as
// many processes as need it.
type Filter struct {
	prog    []unix.SockFilter
	flags   uint // SECCOMP_FILTER_FLAG_* the spec asked for
	tsync   bool // the spec listed SECCOMP_FILTER_FLAG_TSYNC itself
	notify  bool // some action is SCMP_ACT_NOTIFY
	unknown []string
	dropped []specs.Arch
}

// Len is the number of BPF instructions in the program.
func (f *Filter) Len() int { return len(f.prog) }

// Notify reports whether Load returns a listener fd.
func (f *Filter) Notify() bool { return f.notify }

// Unknown lists the syscall names of the spec that no ABI of the filter
// has. They were skipped, as libseccomp skips them, so a profile written
// for newer kernels still loads; callers may log them.
func (f *Filter) Unknown() []string { return slices.Clone(f.unknown) }

// DroppedArches lists the compat arches the spec allowed that berth has
// no syscall table for (none today: every compat ABI of x86_64 and arm64
// has one). The filter kills their
// calls as if they were not listed; callers may warn that 32-bit programs
// of that ABI cannot run.
func (f *Filter) DroppedArches() []specs.Arch { return slices.Clone(f.dropped) }

// rule is one syscalls[] entry for one syscall number.
type rule struct {
	action uint32
	conds  []specs.LinuxSeccompArg
}

// compileOptions are for tests: the ABI to compile for, and the linear
// layout the binary search is checked against.
type compileOptions struct {
	native specs.Arch
	linear bool
}

// Compile turns a spec's seccomp section into a filter for the native ABI
// and the compat ABIs the spec lists. Invalid input fails with
// errdefs.ErrInvalidArgument naming the field; a native arch berth has no
// syscall table for fails with errdefs.ErrNotImplemented.
//
// Several entries may name one syscall: they are tried in spec order and
// the first whose conditions all hold decides. (runc, through libseccomp,
// drops entries whose action equals defaultAction; here such an entry
// still decides when it matches, so it can shadow a later one.)
func Compile(s *specs.LinuxSeccomp) (*Filter, error) {
	native, err := nativeArch()
	if err != nil {
		return nil, err
	}
	return compile(s, compileOptions{native: native})
}

func compile(s *specs.LinuxSeccomp, o compileOptions) (*Filter, error) {
	if s == nil {
		return nil, fmt.Errorf("seccomp: no configuration: %w", errdefs.ErrInvalidArgument)
	}
	if s.DefaultAction == specs.ActNotify {
		// The runtime's own calls between Load and execve would wait for an
		// agent that cannot yet have the listener fd.
		return nil, fmt.Errorf("seccomp defaultAction %s: cannot be the default: %w", s.DefaultAction, errdefs.ErrInvalidArgument)
	}
	def, err := actionOf(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("seccomp defaultAction: %w", err)
	}
	f := &Filter{}
	for _, fl := range s.Flags {
		switch fl {
		case "SECCOMP_FILTER_FLAG_TSYNC":
			f.tsync = true
		case specs.LinuxSeccompFlagLog:
			f.flags |= unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			f.flags |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case specs.LinuxSeccompFlagWaitKillableRecv:
			f.flags |= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
		default:
			return nil, fmt.Errorf("seccomp flag %q: unknown: %w", fl, errdefs.ErrInvalidArgument)
		}
	}
	if s.ListenerMetadata != "" && s.ListenerPath == "" {
		return nil, fmt.Errorf("seccomp listenerMetadata: set without listenerPath: %w", errdefs.ErrInvalidArgument)
	}
	abis, dropped, err := abisFor(o.native, s.Architectures)
	if err != nil {
		return nil, err
	}
	f.dropped = dropped

	// Per ABI, syscall number → its rules in spec order.
	byABI := make([]map[uint32][]rule, len(abis))
	for i := range byABI {
		byABI[i] = map[uint32][]rule{}
	}
	known := map[string]bool{}
	for i, sc := range s.Syscalls {
		r, err := ruleOf(sc)
		if err != nil {
			return nil, fmt.Errorf("seccomp syscalls[%d] (%s): %w", i, strings.Join(sc.Names, ","), err)
		}
		for _, name := range sc.Names {
			for j, a := range abis {
				if nr, ok := a.table[name]; ok {
					byABI[j][nr] = append(byABI[j][nr], r)
					known[name] = true
					// A listener only for a rule that made it in.
					f.notify = f.notify || sc.Action == specs.ActNotify
				}
			}
		}
	}
	for _, sc := range s.Syscalls {
		for _, name := range sc.Names {
			if !known[name] && !slices.Contains(f.unknown, name) {
				f.unknown = append(f.unknown, name)
			}
		}
	}
	if !f.notify {
		// The flag only changes how a notifying syscall waits; the kernel
		// refuses it without a listener.
		f.flags &^= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	}

	var a asm
	// The arch check comes first, as everything after it reads numbers
	// that mean different syscalls in different ABIs.
	a.loadAbs(offArch)
	type group struct {
		audit uint32
		entry label
		segs  []segment
	}
	var groups []*group
	for i, ab := range abis {
		var g *group
		for _, x := range groups {
			if x.audit == ab.audit {
				g = x
			}
		}
		if g == nil {
			g = &group{audit: ab.audit, entry: a.newLabel()}
			groups = append(groups, g)
		}
		g.segs = append(g.segs, segment{abi: ab, rules: byABI[i]})
	}
	for _, g := range groups {
		a.jcond(unix.BPF_JEQ, g.audit, g.entry, fallthru)
	}
	a.ret(retKillProcess)
	for _, g := range groups {
		a.bind(g.entry)
		a.loadAbs(offNr)
		emitGroup(&a, splitX32(g.segs), def, o.linear)
	}
	f.prog, err = a.link()
	if err != nil {
		return nil, err
	}
	return f, nil
}

// segment is the range [lo, hi) of syscall numbers that belongs to one
// ABI, or to none (abi nil: killed as an unlisted arch).
type segment struct {
	lo, hi uint64
	abi    *arch
	rules  map[uint32][]rule
}

// splitX32 gives each ABI of one audit arch its range of numbers. x86_64
// and x32 share AUDIT_ARCH_X86_64 and differ by the x32 bit; when only one
// of them is allowed, the other's half is killed, as libseccomp does (a
// filter for x86_64 alone must not let x32 calls reach the same handlers).
func splitX32(segs []segment) []segment {
	if segs[0].abi.audit != arches[specs.ArchX86_64].audit {
		segs[0].lo, segs[0].hi = 0, 1<<32
		return segs[:1]
	}
	low := segment{lo: 0, hi: x32SyscallBit}
	high := segment{lo: x32SyscallBit, hi: 1 << 32}
	for _, s := range segs {
		if s.abi.name == specs.ArchX32 {
			high.abi, high.rules = s.abi, s.rules
		} else {
			low.abi, low.rules = s.abi, s.rules
		}
	}
	return []segment{low, high}
}

// outcome is what the search decides for a range of numbers: a return
// value, or the rule block of one syscall whose rules test arguments.
type outcome struct {
	ret   uint32
	block label // 0: ret
}

type interval struct {
	lo  uint64
	out outcome
}

// emitGroup emits the code for one audit arch, with A holding the number.
func emitGroup(a *asm, segs []segment, def uint32, linear bool) {
	type block struct {
		l      label
		rules  []rule
		args32 bool
	}
	var blocks []block
	// Syscalls named in the same entries get the same rule block: emit
	// it once (a profile's one rule for the *chown family, say).
	shared := map[string]label{}
	outcomeOf := func(s segment, nr uint32) outcome {
		rs := s.rules[nr]
		if len(rs[0].conds) == 0 {
			return outcome{ret: rs[0].action}
		}
		key := fmt.Sprint(s.abi.args32, rs)
		if l, ok := shared[key]; ok {
			return outcome{block: l}
		}
		b := block{l: a.newLabel(), rules: rs, args32: s.abi.args32}
		shared[key] = b.l
		blocks = append(blocks, b)
		return outcome{block: b.l}
	}
	if linear {
		emitLinear(a, segs, def, outcomeOf)
	} else {
		// Cover all numbers with intervals, merge neighbours with the same
		// return, then binary-search the boundaries: Docker's default
		// profile becomes about ninety intervals per ABI, so a syscall
		// costs seven or eight compares instead of one per listed name.
		var ivs []interval
		add := func(lo uint64, out outcome) {
			if n := len(ivs); n > 0 && ivs[n-1].out == out {
				return
			}
			ivs = append(ivs, interval{lo: lo, out: out})
		}
		for _, s := range segs {
			if s.abi == nil {
				add(s.lo, outcome{ret: retKillProcess})
				continue
			}
			nrs := sortedNrs(s.rules)
			cur := s.lo
			for _, nr := range nrs {
				if uint64(nr) < s.lo || uint64(nr) >= s.hi {
					continue // cannot happen with the kernel's tables
				}
				if uint64(nr) > cur {
					add(cur, outcome{ret: def})
				}
				add(uint64(nr), outcomeOf(s, nr))
				cur = uint64(nr) + 1
			}
			if cur < s.hi {
				add(cur, outcome{ret: def})
			}
		}
		emitSearch(a, ivs)
	}
	for _, b := range blocks {
		a.bind(b.l)
		emitRules(a, b.rules, def, b.args32)
	}
}

func sortedNrs(m map[uint32][]rule) []uint32 {
	nrs := make([]uint32, 0, len(m))
	for nr := range m {
		nrs = append(nrs, nr)
	}
	slices.Sort(nrs)
	return nrs
}

func emitLeaf(a *asm, out outcome) {
	if out.block != 0 {
		a.jump(out.block)
		return
	}
	a.ret(out.ret)
}

// emitSearch emits a balanced tree of "A >= boundary" tests over ivs.
func emitSearch(a *asm, ivs []interval) {
	if len(ivs) == 1 {
		emitLeaf(a, ivs[0].out)
		return
	}
	mid := len(ivs) / 2
	right := a.newLabel()
	a.jcond(unix.BPF_JGE, uint32(ivs[mid].lo), right, fallthru)
	emitSearch(a, ivs[:mid])
	a.bind(right)
	emitSearch(a, ivs[mid:])
}

// emitLinear is the naive layout, one compare per syscall: the reference
// the search is tested against.
func emitLinear(a *asm, segs []segment, def uint32, outcomeOf func(segment, uint32) outcome) {
	for _, s := range segs {
		skip := a.newLabel()
		if s.lo > 0 {
			a.jcond(unix.BPF_JGE, uint32(s.lo), fallthru, skip)
		}
		if s.hi < 1<<32 {
			a.jcond(unix.BPF_JGE, uint32(s.hi), skip, fallthru)
		}
		if s.abi == nil {
			a.ret(retKillProcess)
		} else {
			var leaves []func()
			for _, nr := range sortedNrs(s.rules) {
				l := a.newLabel()
				a.jcond(unix.BPF_JEQ, nr, l, fallthru)
				out := outcomeOf(s, nr)
				leaves = append(leaves, func() { a.bind(l); emitLeaf(a, out) })
			}
			a.ret(def)
			for _, leaf := range leaves {
				leaf()
			}
		}
		a.bind(skip)
	}
	a.ret(retKillProcess) // not reached: the segments cover every number
}

// emitRules tries one syscall's rules in spec order; the first whose
// conditions all hold decides, and none holding means the default.
func emitRules(a *asm, rules []rule, def uint32, args32 bool) {
	for _, r := range rules {
		if len(r.conds) == 0 {
			a.ret(r.action) // later rules cannot be reached
			return
		}
		fail := a.newLabel()
		for _, c := range r.conds {
			emitCond(a, c, fail, args32)
		}
		a.ret(r.action)
		a.bind(fail)
	}
	a.ret(def)
}

// emitCond falls through when the condition holds and jumps to fail
// otherwise. BPF registers are 32 bits, so a 64-bit argument is compared
// as its high half, then its low half when the high halves are equal; all
// comparisons are unsigned, as in libseccomp.
func emitCond(a *asm, c specs.LinuxSeccompArg, fail label, args32 bool) {
	lo := uint32(offArgs + 8*c.Index)
	hi := lo + 4
	v, vHi := uint32(c.Value), uint32(c.Value>>32)
	if args32 {
		a.loadAbs(lo)
		switch c.Op {
		case specs.OpEqualTo:
			a.jcond(unix.BPF_JEQ, v, fallthru, fail)
		case specs.OpNotEqual:
			a.jcond(unix.BPF_JEQ, v, fail, fallthru)
		case specs.OpGreaterThan:
			a.jcond(unix.BPF_JGT, v, fallthru, fail)
		case specs.OpGreaterEqual:
			a.jcond(unix.BPF_JGE, v, fallthru, fail)
		case specs.OpLessThan:
			a.jcond(unix.BPF_JGE, v, fail, fallthru)
		case specs.OpLessEqual:
			a.jcond(unix.BPF_JGT, v, fail, fallthru)
		case specs.OpMaskedEqual:
			a.and(v)
			a.jcond(unix.BPF_JEQ, uint32(c.ValueTwo), fallthru, fail)
		}
		return
	}
	ok := a.newLabel()
	a.loadAbs(hi)
	switch c.Op {
	case specs.OpEqualTo:
		a.jcond(unix.BPF_JEQ, vHi, fallthru, fail)
		a.loadAbs(lo)
		a.jcond(unix.BPF_JEQ, v, fallthru, fail)
	case specs.OpNotEqual:
		a.jcond(unix.BPF_JEQ, vHi, fallthru, ok)
		a.loadAbs(lo)
		a.jcond(unix.BPF_JEQ, v, fail, fallthru)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		a.jcond(unix.BPF_JGT, vHi, ok, fallthru)
		a.jcond(unix.BPF_JEQ, vHi, fallthru, fail)
		a.loadAbs(lo)
		op := uint16(unix.BPF_JGT)
		if c.Op == specs.OpGreaterEqual {
			op = unix.BPF_JGE
		}
		a.jcond(op, v, fallthru, fail)
	case specs.OpLessThan, specs.OpLessEqual:
		a.jcond(unix.BPF_JGT, vHi, fail, fallthru)
		a.jcond(unix.BPF_JEQ, vHi, fallthru, ok)
		a.loadAbs(lo)
		op := uint16(unix.BPF_JGE)
		if c.Op == specs.OpLessEqual {
			op = unix.BPF_JGT
		}
		a.jcond(op, v, fail, fallthru)
	case specs.OpMaskedEqual:
		// value is the mask and valueTwo the datum, as in libseccomp.
		a.and(vHi)
		a.jcond(unix.BPF_JEQ, uint32(c.ValueTwo>>32), fallthru, fail)
		a.loadAbs(lo)
		a.and(v)
		a.jcond(unix.BPF_JEQ, uint32(c.ValueTwo), fallthru, fail)
	}
	a.bind(ok)
}

// ruleOf checks one syscalls[] entry and returns its rule.
func ruleOf(sc specs.LinuxSyscall) (rule, error) {
	if len(sc.Names) == 0 {
		return rule{}, fmt.Errorf("names: empty: %w", errdefs.ErrInvalidArgument)
	}
	for _, n := range sc.Names {
		if n == "" {
			return rule{}, fmt.Errorf("names: empty name: %w", errdefs.ErrInvalidArgument)
		}
	}
	act, err := actionOf(sc.Action, sc.ErrnoRet)
	if err != nil {
		return rule{}, err
	}
	for i, c := range sc.Args {
		if c.Index >= maxArgs {
			return rule{}, fmt.Errorf("args[%d]: index %d: a syscall has arguments 0 to %d: %w", i, c.Index, maxArgs-1, errdefs.ErrInvalidArgument)
		}
		switch c.Op {
		case specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
			specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual:
		default:
			return rule{}, fmt.Errorf("args[%d]: op %q: unknown (want one of the SCMP_CMP_* names of the runtime spec): %w", i, c.Op, errdefs.ErrInvalidArgument)
		}
	}
	return rule{action: act, conds: sc.Args}, nil
}

// actionOf returns the filter return value for an action. Only ERRNO and
// TRACE carry data; the runtime spec says an errnoRet on any other action
// must be an error.
func actionOf(act specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	var ret uint32
	switch act {
	case specs.ActKill, specs.ActKillThread:
		ret = unix.SECCOMP_RET_KILL_THREAD
	case specs.ActKillProcess:
		ret = unix.SECCOMP_RET_KILL_PROCESS
	case specs.ActTrap:
		ret = unix.SECCOMP_RET_TRAP
	case specs.ActAllow:
		ret = unix.SECCOMP_RET_ALLOW
	case specs.ActLog:
		ret = unix.SECCOMP_RET_LOG
	case specs.ActNotify:
		ret = unix.SECCOMP_RET_USER_NOTIF
	case specs.ActErrno, specs.ActTrace:
		data := uint(unix.EPERM)
		if errnoRet != nil {
			data = *errnoRet
		}
		if act == specs.ActErrno {
			if data > maxErrno {
				return 0, fmt.Errorf("action %s: errnoRet %d: above the largest errno %d: %w", act, data, maxErrno, errdefs.ErrInvalidArgument)
			}
			return unix.SECCOMP_RET_ERRNO | uint32(data), nil
		}
		if data > unix.SECCOMP_RET_DATA {
			return 0, fmt.Errorf("action %s: errnoRet %d: above the 16 bits a tracer gets: %w", act, data, errdefs.ErrInvalidArgument)
		}
		return unix.SECCOMP_RET_TRACE | uint32(data), nil
	case "":
		return 0, fmt.Errorf("action: empty: %w", errdefs.ErrInvalidArgument)
	default:
		return 0, fmt.Errorf("action %q: unknown (want one of the SCMP_ACT_* names of the runtime spec): %w", act, errdefs.ErrInvalidArgument)
	}
	if errnoRet != nil {
		return 0, fmt.Errorf("action %s: errnoRet %d: only %s and %s take one: %w", act, *errnoRet, specs.ActErrno, specs.ActTrace, errdefs.ErrInvalidArgument)
	}
	return ret, nil
}
