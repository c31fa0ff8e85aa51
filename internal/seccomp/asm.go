package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// The kernel refuses longer classic BPF programs (BPF_MAXINSNS,
// include/uapi/linux/bpf_common.h).
const maxInsns = 4096

// label names a position in a program under construction.
type label int

// node is an instruction or, when isLabel, the position of lbl.
type node struct {
	isLabel bool
	lbl     label
	code    uint16
	k       uint32
	jt, jf  label // conditional jumps
	to      label // BPF_JA
}

// asm builds a classic BPF program whose jumps name labels. Conditional
// jumps in classic BPF reach at most 255 instructions ahead; link puts a
// BPF_JA (32-bit offset) trampoline after any jump that reaches further,
// so callers never count instructions.
type asm struct {
	nodes  []node
	labels int
}

func (a *asm) newLabel() label {
	a.labels++
	return label(a.labels)
}

// bind places l before the next instruction emitted.
func (a *asm) bind(l label) { a.nodes = append(a.nodes, node{isLabel: true, lbl: l}) }

func (a *asm) loadAbs(off uint32) {
	a.nodes = append(a.nodes, node{code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, k: off})
}

func (a *asm) and(k uint32) {
	a.nodes = append(a.nodes, node{code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, k: k})
}

func (a *asm) ret(k uint32) {
	a.nodes = append(a.nodes, node{code: unix.BPF_RET | unix.BPF_K, k: k})
}

func (a *asm) jump(to label) {
	a.nodes = append(a.nodes, node{code: unix.BPF_JMP | unix.BPF_JA, to: to})
}

// fallthru is the jt or jf of jcond meaning "the next instruction".
const fallthru label = 0

// jcond emits "if A <op> k goto jt else goto jf", op one of BPF_JEQ,
// BPF_JGT, BPF_JGE. Either target may be fallthru.
func (a *asm) jcond(op uint16, k uint32, jt, jf label) {
	var next label
	if jt == fallthru || jf == fallthru {
		next = a.newLabel()
		if jt == fallthru {
			jt = next
		}
		if jf == fallthru {
			jf = next
		}
	}
	a.nodes = append(a.nodes, node{code: unix.BPF_JMP | op | unix.BPF_K, k: k, jt: jt, jf: jf})
	if next != 0 {
		a.bind(next)
	}
}

func isCond(n node) bool {
	return !n.isLabel && n.code&0x07 == unix.BPF_JMP && n.code&0xf0 != unix.BPF_JA
}

// positions returns the instruction index of each label and of each node,
// and the instruction count.
func (a *asm) positions() ([]int, []int, int) {
	lpos := make([]int, a.labels+1) // labels are 1..a.labels
	for i := range lpos {
		lpos[i] = -1 // unbound
	}
	ipos := make([]int, len(a.nodes))
	n := 0
	for i, nd := range a.nodes {
		ipos[i] = n
		if nd.isLabel {
			lpos[nd.lbl] = n
			continue
		}
		n++
	}
	return lpos, ipos, n
}

// link resolves labels into offsets, adding trampolines where needed.
func (a *asm) link() ([]unix.SockFilter, error) {
	far := func(lpos, ipos []int, i int, l label) bool { return lpos[l]-ipos[i]-1 > 255 }
	for {
		lpos, ipos, _ := a.positions()
		need := false
		for i, n := range a.nodes {
			if isCond(n) && (far(lpos, ipos, i, n.jt) || far(lpos, ipos, i, n.jf)) {
				need = true
				break
			}
		}
		if !need {
			break
		}
		// Add every trampoline needed now in one pass; they lengthen other
		// jumps, so look again until none is needed. Jumps only go
		// forward, so distances only grow and this ends.
		grown := make([]node, 0, len(a.nodes)+16)
		for i, n := range a.nodes {
			if !isCond(n) {
				grown = append(grown, n)
				continue
			}
			farT, farF := far(lpos, ipos, i, n.jt), far(lpos, ipos, i, n.jf)
			orig := n
			var tramps []node
			if farT {
				t := a.newLabel()
				tramps = append(tramps, node{isLabel: true, lbl: t}, node{code: unix.BPF_JMP | unix.BPF_JA, to: orig.jt})
				n.jt = t
				if orig.jf == orig.jt {
					n.jf, farF = t, false
				}
			}
			if farF {
				t := a.newLabel()
				tramps = append(tramps, node{isLabel: true, lbl: t}, node{code: unix.BPF_JMP | unix.BPF_JA, to: orig.jf})
				n.jf = t
			}
			grown = append(grown, n)
			grown = append(grown, tramps...)
		}
		a.nodes = grown
	}
	lpos, ipos, count := a.positions()
	if count > maxInsns {
		return nil, fmt.Errorf("seccomp program: %d instructions, the kernel takes at most %d: %w", count, maxInsns, errdefs.ErrInvalidArgument)
	}
	off := func(i int, l label) (int, error) {
		p := lpos[l]
		if p <= ipos[i] {
			// A bug in the compiler, never in the input.
			return 0, fmt.Errorf("seccomp program: instruction %d jumps to unbound or earlier label %d", ipos[i], l)
		}
		return p - ipos[i] - 1, nil
	}
	prog := make([]unix.SockFilter, 0, count)
	for i, n := range a.nodes {
		if n.isLabel {
			continue
		}
		f := unix.SockFilter{Code: n.code, K: n.k}
		switch {
		case isCond(n):
			jt, err := off(i, n.jt)
			if err != nil {
				return nil, err
			}
			jf, err := off(i, n.jf)
			if err != nil {
				return nil, err
			}
			f.Jt, f.Jf = uint8(jt), uint8(jf)
		case n.code == unix.BPF_JMP|unix.BPF_JA:
			k, err := off(i, n.to)
			if err != nil {
				return nil, err
			}
			f.K = uint32(k)
		}
		prog = append(prog, f)
	}
	return prog, nil
}
