package seccomp

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParseProfile(t *testing.T) {
	data, err := os.ReadFile("testdata/profile.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseProfile(data)
	if err != nil {
		t.Fatal(err)
	}
	allow := func(names ...string) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: names, Action: specs.ActAllow}
	}
	common := []specs.LinuxSyscall{
		allow("read", "write", "exit_group"),
		{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uintp(38)},
	}
	clone := allow("clone")
	clone.Args = []specs.LinuxSeccompArg{{Index: 0, Value: 0x7e020000, Op: specs.OpMaskedEqual}}
	for _, tc := range []struct {
		name   string
		o      ProfileOptions
		arches []specs.Arch
		rest   []specs.LinuxSyscall
	}{
		{"amd64, no caps, 4.4", ProfileOptions{Arch: "amd64", Kernel: "4.4.0"},
			[]specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
			[]specs.LinuxSyscall{allow("arch_prctl"), clone, {Names: []string{"old_thing"}, Action: specs.ActLog}}},
		{"amd64, SYS_ADMIN, 6.1", ProfileOptions{Arch: "amd64", Kernel: "6.1.0-13-amd64", Caps: []string{"CAP_SYS_ADMIN"}},
			[]specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
			[]specs.LinuxSyscall{allow("arch_prctl"), allow("mount"), allow("ptrace")}},
		{"arm64, 5.10", ProfileOptions{Arch: "arm64", Kernel: "5.10"},
			[]specs.Arch{specs.ArchAARCH64, specs.ArchARM},
			[]specs.LinuxSyscall{clone, allow("ptrace")}},
		{"s390x", ProfileOptions{Arch: "s390x", Kernel: "6.1"}, nil,
			[]specs.LinuxSyscall{allow("ptrace")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.Spec(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			want := &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1), Architectures: tc.arches,
				Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}, Syscalls: append(common[:2:2], tc.rest...),
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestProfileJSONRoundTrip(t *testing.T) {
	data, err := json.Marshal(DefaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseProfile(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []ProfileOptions{
		{Arch: "amd64", Kernel: "6.1", Caps: dockerCaps},
		{Arch: "amd64", Kernel: "4.4", Caps: append(dockerCaps, "CAP_SYS_ADMIN", "CAP_SYS_PTRACE")},
		{Arch: "arm64", Kernel: "5.15", Caps: dockerCaps},
		{Arch: "s390x", Kernel: "6.1"},
	} {
		want, err := DefaultProfile().Spec(o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := back.Spec(o)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%+v: the profile changed through JSON:\ngot  %+v\nwant %+v", o, got, want)
		}
	}
}

func TestProfileLegacyArchitectures(t *testing.T) {
	p, err := ParseProfile([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],"syscalls":null}`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Spec(ProfileOptions{Arch: "amd64", Kernel: "6.1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []specs.Arch{specs.ArchX86_64, specs.ArchX86}; !reflect.DeepEqual(s.Architectures, want) {
		t.Errorf("architectures %v, want %v", s.Architectures, want)
	}
}

func TestParseProfileBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string
	}{
		{"not json", `{"defaultAction":`, "unexpected EOF"},
		{"no default", `{"syscalls":[]}`, "defaultAction: empty"},
		{"both arch forms", `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}`, "both architectures and archMap"},
		{"name and names", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"read","names":["write"],"action":"SCMP_ACT_ALLOW"}]}`, "syscalls[0]: both name and names"},
		{"bad minKernel", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"four"}}]}`, `syscalls[0]: minKernel: kernel version "four"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseProfile([]byte(tc.json))
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q (invalid argument)", err, tc.want)
			}
		})
	}
}
