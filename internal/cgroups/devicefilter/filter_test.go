package devicefilter

import (
	"errors"
	"os"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// run interprets the program for one access, as the kernel would call it.
func run(t *testing.T, p *Program, typ, access int, major, minor uint32) bool {
	t.Helper()
	var reg [11]uint64
	ctx := [3]uint32{uint32(access<<16 | typ), major, minor}
	insns := p.Instructions()
	for pc := 0; pc < len(insns); pc++ {
		in := insns[pc]
		switch in.Op {
		case unix.BPF_LDX | unix.BPF_W | unix.BPF_MEM:
			reg[in.Dst] = uint64(ctx[in.Off/4])
		case unix.BPF_ALU | unix.BPF_MOV | unix.BPF_X:
			reg[in.Dst] = uint64(uint32(reg[in.Src]))
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			reg[in.Dst] = uint64(uint32(reg[in.Dst]) & uint32(in.Imm))
		case unix.BPF_ALU | unix.BPF_RSH | unix.BPF_K:
			reg[in.Dst] = uint64(uint32(reg[in.Dst]) >> in.Imm)
		case unix.BPF_JMP | unix.BPF_JNE | unix.BPF_K:
			if reg[in.Dst] != uint64(int64(in.Imm)) {
				pc += int(in.Off)
			}
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			if reg[in.Dst] == uint64(int64(in.Imm)) {
				pc += int(in.Off)
			}
		case unix.BPF_ALU64 | unix.BPF_MOV | unix.BPF_K:
			reg[in.Dst] = uint64(int64(in.Imm))
		case unix.BPF_JMP | unix.BPF_EXIT:
			return reg[0] == 1
		default:
			t.Fatalf("unknown op %#x at %d", in.Op, pc)
		}
	}
	t.Fatal("program fell off its end")
	return false
}

func i64(v int64) *int64 { return &v }

func TestCompileDecides(t *testing.T) {
	denyAll := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	allowAll := specs.LinuxDeviceCgroup{Allow: true, Type: "a", Access: "rwm"}
	null := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}
	nullNoWrite := specs.LinuxDeviceCgroup{Allow: false, Type: "c", Major: i64(1), Minor: i64(3), Access: "w"}
	zeroRead := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "r"}
	anyTTY := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(136), Access: "rw"}
	noMknod := specs.LinuxDeviceCgroup{Allow: false, Type: "a", Major: i64(-1), Minor: i64(-1), Access: "m"}

	type probe struct {
		typ, access  int
		major, minor uint32
		want         bool
	}
	tests := []struct {
		name   string
		rules  []specs.LinuxDeviceCgroup
		probes []probe
	}{
		{"empty list denies", nil, []probe{{devChar, accRead, 1, 3, false}}},
		{"allow all", []specs.LinuxDeviceCgroup{allowAll}, []probe{{devBlock, accAll, 8, 0, true}}},
		{"deny all then null", []specs.LinuxDeviceCgroup{denyAll, null}, []probe{
			{devChar, accRead | accWrite, 1, 3, true},
			{devBlock, accRead, 1, 3, false},
			{devChar, accRead, 1, 5, false},
		}},
		{"later deny of one bit wins", []specs.LinuxDeviceCgroup{denyAll, null, nullNoWrite}, []probe{
			{devChar, accRead, 1, 3, true},
			{devChar, accRead | accWrite, 1, 3, false},
			{devChar, accWrite, 1, 3, false},
		}},
		{"allow needs every bit", []specs.LinuxDeviceCgroup{denyAll, zeroRead}, []probe{
			{devChar, accRead, 1, 5, true},
			{devChar, accRead | accWrite, 1, 5, false},
		}},
		{"minor wildcard", []specs.LinuxDeviceCgroup{denyAll, anyTTY}, []probe{
			{devChar, accRead, 136, 7, true},
			{devChar, accMknod, 136, 7, false},
		}},
		{"reset drops earlier rules", []specs.LinuxDeviceCgroup{null, denyAll}, []probe{{devChar, accRead, 1, 3, false}}},
		{"allows for one device merge", []specs.LinuxDeviceCgroup{denyAll, zeroRead,
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "w"}}, []probe{
			{devChar, accRead | accWrite, 1, 5, true},
			{devChar, accMknod, 1, 5, false},
		}},
		{"allow removes only the exact exception", []specs.LinuxDeviceCgroup{allowAll,
			{Allow: false, Type: "c", Major: i64(1), Access: "rwm"}, null}, []probe{
			{devChar, accRead, 1, 3, false},
			{devChar, accRead, 2, 3, true},
		}},
		{"allow all then deny mknod", []specs.LinuxDeviceCgroup{allowAll, noMknod}, []probe{
			{devBlock, accRead, 8, 0, true},
			{devChar, accMknod, 1, 3, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			for _, pr := range tt.probes {
				if got := run(t, p, pr.typ, pr.access, pr.major, pr.minor); got != pr.want {
					t.Errorf("type %d access %d %d:%d: allowed %t, want %t", pr.typ, pr.access, pr.major, pr.minor, got, pr.want)
				}
			}
		})
	}
}

func TestCompileRejectsBadRules(t *testing.T) {
	tests := []struct {
		name string
		rule specs.LinuxDeviceCgroup
	}{
		{"type", specs.LinuxDeviceCgroup{Type: "x"}},
		{"access", specs.LinuxDeviceCgroup{Type: "c", Access: "rwx"}},
		{"major", specs.LinuxDeviceCgroup{Type: "c", Major: i64(-2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Compile([]specs.LinuxDeviceCgroup{tt.rule}); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("got %v, want invalid argument", err)
			}
		})
	}
}

// TestLoadPassesVerifier hands a program with every kind of test to the
// kernel's verifier; loading attaches nothing, so it leaves nothing behind.
func TestLoadPassesVerifier(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads an eBPF program")
	}
	p, err := Compile([]specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
		{Allow: false, Type: "c", Major: i64(1), Minor: i64(3), Access: "w"},
		{Allow: true, Type: "b", Major: i64(8), Access: "r"},
	})
	if err != nil {
		t.Fatal(err)
	}
	fd, err := p.load()
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
}
