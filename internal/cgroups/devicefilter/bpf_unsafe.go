package devicefilter

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// The bpf(2) attribute layouts below follow union bpf_attr in
// include/uapi/linux/bpf.h; the kernel accepts a shorter attr than its own
// as long as the bytes it does not get are zero.

type progLoadAttr struct {
	progType    uint32
	insnCnt     uint32
	insns       uint64
	license     uint64
	logLevel    uint32
	logSize     uint32
	logBuf      uint64
	kernVersion uint32
	progFlags   uint32
	progName    [16]byte
}

type progAttachAttr struct {
	targetFD    uint32
	attachBPFFD uint32
	attachType  uint32
	attachFlags uint32
}

type progQueryAttr struct {
	targetFD    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32
	progIDs     uint64
	progCnt     uint32
	_           uint32
}

type getFDByIDAttr struct {
	id        uint32
	nextID    uint32
	openFlags uint32
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}

// encode lays the instructions out as struct bpf_insn: the destination
// register in the low nibble of the second byte, the source in the high.
func encode(insns []Instruction) []byte {
	out := make([]byte, 0, 8*len(insns))
	for _, in := range insns {
		out = append(out, in.Op, in.Dst&0xf|in.Src<<4,
			byte(uint16(in.Off)), byte(uint16(in.Off)>>8),
			byte(uint32(in.Imm)), byte(uint32(in.Imm)>>8), byte(uint32(in.Imm)>>16), byte(uint32(in.Imm)>>24))
	}
	return out
}

// load hands the program to the kernel's verifier and returns its fd.
func (p *Program) load() (int, error) {
	code := encode(p.insns)
	license := []byte("Apache-2.0\x00")
	logBuf := make([]byte, 64<<10)
	attr := progLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(p.insns)),
		insns:    uint64(uintptr(unsafe.Pointer(&code[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
		logLevel: 1,
		logSize:  uint32(len(logBuf)),
		logBuf:   uint64(uintptr(unsafe.Pointer(&logBuf[0]))),
	}
	copy(attr.progName[:], "berth_devices")
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	runtime.KeepAlive(logBuf)
	if err != nil {
		msg := string(logBuf)
		if i := indexNul(logBuf); i >= 0 {
			msg = string(logBuf[:i])
		}
		if msg != "" {
			return -1, fmt.Errorf("load device filter: %w (verifier: %s)", err, msg)
		}
		return -1, fmt.Errorf("load device filter: %w", err)
	}
	return int(fd), nil
}

func indexNul(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

// attachedIDs lists the ids of the device programs attached to the cgroup
// open at cgfd.
func attachedIDs(cgfd int) ([]uint32, error) {
	ids := make([]uint32, 64)
	attr := progQueryAttr{
		targetFD:   uint32(cgfd),
		attachType: unix.BPF_CGROUP_DEVICE,
		progIDs:    uint64(uintptr(unsafe.Pointer(&ids[0]))),
		progCnt:    uint32(len(ids)),
	}
	_, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(ids)
	if err != nil {
		return nil, err
	}
	return ids[:attr.progCnt], nil
}

// Attach loads p and attaches it to the cgroup v2 directory dir, then
// detaches the device programs that were attached there before, so an
// update replaces the rules rather than adding a second filter that would
// still deny what the new rules allow. It attaches with BPF_F_ALLOW_MULTI so
// that a nested engine can still attach its own filters below dir.
//
// Between the attach and the detach both filters are in force, so the
// change only ever narrows access for that instant.
func Attach(dir string, p *Program) error {
	cgfd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("attach device filter %s: %w", dir, err)
	}
	defer unix.Close(cgfd)
	old, err := attachedIDs(cgfd)
	if err != nil {
		return fmt.Errorf("attach device filter %s: query: %w", dir, err)
	}
	fd, err := p.load()
	if err != nil {
		return fmt.Errorf("attach device filter %s: %w", dir, err)
	}
	// The cgroup holds its own reference on an attached program; our fd
	// is not needed after the attach.
	defer unix.Close(fd)
	attr := progAttachAttr{
		targetFD:    uint32(cgfd),
		attachBPFFD: uint32(fd),
		attachType:  unix.BPF_CGROUP_DEVICE,
		attachFlags: unix.BPF_F_ALLOW_MULTI,
	}
	if _, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err != nil {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("attach device filter %s: %w: %w", dir, errdefs.ErrForbidden, err)
		}
		return fmt.Errorf("attach device filter %s: %w", dir, err)
	}
	for _, id := range old {
		if err := detachID(cgfd, id); err != nil {
			return fmt.Errorf("attach device filter %s: detach old program %d: %w", dir, id, err)
		}
	}
	return nil
}

// Detach removes every device program attached directly to dir. Removing
// the cgroup does the same, so only an update to "no rules" needs this.
func Detach(dir string) error {
	cgfd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("detach device filters %s: %w", dir, err)
	}
	defer unix.Close(cgfd)
	ids, err := attachedIDs(cgfd)
	if err != nil {
		return fmt.Errorf("detach device filters %s: query: %w", dir, err)
	}
	for _, id := range ids {
		if err := detachID(cgfd, id); err != nil {
			return fmt.Errorf("detach device filters %s: program %d: %w", dir, id, err)
		}
	}
	return nil
}

func detachID(cgfd int, id uint32) error {
	ga := getFDByIDAttr{id: id}
	pfd, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&ga), unsafe.Sizeof(ga))
	if err != nil {
		return err
	}
	defer unix.Close(int(pfd))
	attr := progAttachAttr{
		targetFD:    uint32(cgfd),
		attachBPFFD: uint32(pfd),
		attachType:  unix.BPF_CGROUP_DEVICE,
	}
	_, err = bpf(unix.BPF_PROG_DETACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}
