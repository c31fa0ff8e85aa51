package seccomp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Profile is a seccomp policy whose rules depend on the host's arch, the
// container's capabilities and the kernel: the shape of Docker's profiles
// (`docker run --security-opt seccomp=profile.json` sends one as JSON, read
// by ParseProfile). Spec resolves it into the runtime spec's seccomp
// section for one container; specgen does that with DefaultProfile unless
// the user asked for another profile or none.
type Profile struct {
	DefaultAction   specs.LinuxSeccompAction
	DefaultErrnoRet *uint
	// Architectures, when set, is used as it is on every host (the older
	// form of Docker's profiles); Arches maps a native arch to the compat
	// arches allowed beside it (archMap). Docker refuses both in one file.
	Architectures    []specs.Arch
	Arches           map[specs.Arch][]specs.Arch
	Flags            []specs.LinuxSeccompFlag
	ListenerPath     string
	ListenerMetadata string
	Rules            []ProfileRule
}

// ProfileRule is one syscalls[] entry and when it applies: only if every
// condition set holds.
type ProfileRule struct {
	Names    []string
	Action   specs.LinuxSeccompAction
	ErrnoRet *uint
	Args     []specs.LinuxSeccompArg
	Comment  string

	OnlyArches   []string // Go arch names (amd64, arm64, ...): the host's must be one
	NotArches    []string // ... and must not be one of these
	OnlyCaps     []string // the container must have every one of these
	NotCaps      []string // ... and none of these
	MinKernel    string   // "major.minor": the kernel is at least this
	BeforeKernel string   // "major.minor": the kernel is older than this
}

// ProfileOptions describe the container a profile is resolved for.
type ProfileOptions struct {
	Arch   string   // Go arch name of the host; "" means runtime.GOARCH
	Caps   []string // the container's capabilities (its bounding set), CAP_ names
	Kernel string   // "major.minor[...]"; "" means the running kernel
}

var goArches = map[string]specs.Arch{
	"amd64": specs.ArchX86_64, "386": specs.ArchX86, "arm64": specs.ArchAARCH64, "arm": specs.ArchARM,
	"mips": specs.ArchMIPS, "mipsle": specs.ArchMIPSEL, "mips64": specs.ArchMIPS64, "mips64le": specs.ArchMIPSEL64,
	"ppc64": specs.ArchPPC64, "ppc64le": specs.ArchPPC64LE, "s390x": specs.ArchS390X,
	"riscv64": specs.ArchRISCV64, "loong64": specs.ArchLOONGARCH64,
}

// Spec returns the seccomp section for a container. The rules keep their
// order; those whose conditions fail are left out.
func (p *Profile) Spec(o ProfileOptions) (*specs.LinuxSeccomp, error) {
	goArch := o.Arch
	if goArch == "" {
		goArch = runtime.GOARCH
	}
	native, ok := goArches[goArch]
	if !ok {
		return nil, fmt.Errorf("seccomp profile for %s: unknown architecture: %w", goArch, errdefs.ErrInvalidArgument)
	}
	kernel := o.Kernel
	if kernel == "" {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return nil, fmt.Errorf("seccomp profile: uname: %w", err)
		}
		kernel = unix.ByteSliceToString(u.Release[:])
	}
	kv, err := parseKernel(kernel)
	if err != nil {
		return nil, err
	}
	s := &specs.LinuxSeccomp{
		DefaultAction: p.DefaultAction, DefaultErrnoRet: p.DefaultErrnoRet,
		Architectures: slices.Clone(p.Architectures), Flags: slices.Clone(p.Flags),
		ListenerPath: p.ListenerPath, ListenerMetadata: p.ListenerMetadata,
	}
	if sub, ok := p.Arches[native]; ok {
		s.Architectures = append(append(s.Architectures, native), sub...)
	}
	for i, r := range p.Rules {
		if len(r.OnlyArches) > 0 && !slices.Contains(r.OnlyArches, goArch) || slices.Contains(r.NotArches, goArch) {
			continue
		}
		if !allIn(r.OnlyCaps, o.Caps) || anyIn(r.NotCaps, o.Caps) {
			continue
		}
		if r.MinKernel != "" || r.BeforeKernel != "" {
			newEnough, oldEnough := true, true
			if r.MinKernel != "" {
				min, err := parseKernel(r.MinKernel)
				if err != nil {
					return nil, fmt.Errorf("seccomp profile rule %d: %w", i, err)
				}
				newEnough = !kernelBefore(kv, min)
			}
			if r.BeforeKernel != "" {
				max, err := parseKernel(r.BeforeKernel)
				if err != nil {
					return nil, fmt.Errorf("seccomp profile rule %d: %w", i, err)
				}
				oldEnough = kernelBefore(kv, max)
			}
			if !newEnough || !oldEnough {
				continue
			}
		}
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{
			Names: slices.Clone(r.Names), Action: r.Action, ErrnoRet: r.ErrnoRet, Args: slices.Clone(r.Args),
		})
	}
	return s, nil
}

func kernelBefore(v, than [2]int) bool {
	return v[0] < than[0] || v[0] == than[0] && v[1] < than[1]
}

func allIn(want, have []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func anyIn(want, have []string) bool {
	for _, w := range want {
		if slices.Contains(have, w) {
			return true
		}
	}
	return false
}

// parseKernel reads "6.1.0-13-amd64" as {6, 1}.
func parseKernel(v string) ([2]int, error) {
	var out [2]int
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return out, fmt.Errorf("kernel version %q: want major.minor: %w", v, errdefs.ErrInvalidArgument)
	}
	for i := range 2 {
		digits := strings.TrimRightFunc(parts[i], func(r rune) bool { return r < '0' || r > '9' })
		n, err := strconv.Atoi(digits)
		if err != nil {
			return out, fmt.Errorf("kernel version %q: want major.minor: %w", v, errdefs.ErrInvalidArgument)
		}
		out[i] = n
	}
	return out, nil
}

// The JSON form of a profile, as Docker reads and writes it
// (profiles/seccomp in moby).
type profileJSON struct {
	DefaultAction    specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet  *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures    []specs.Arch             `json:"architectures,omitempty"`
	ArchMap          []archMapJSON            `json:"archMap,omitempty"`
	Flags            []specs.LinuxSeccompFlag `json:"flags,omitempty"`
	ListenerPath     string                   `json:"listenerPath,omitempty"`
	ListenerMetadata string                   `json:"listenerMetadata,omitempty"`
	Syscalls         []syscallJSON            `json:"syscalls"`
}

type archMapJSON struct {
	Arch      specs.Arch   `json:"architecture"`
	SubArches []specs.Arch `json:"subArchitectures"`
}

type syscallJSON struct {
	Name     string                   `json:"name,omitempty"` // older profiles: one name
	Names    []string                 `json:"names,omitempty"`
	Action   specs.LinuxSeccompAction `json:"action"`
	ErrnoRet *uint                    `json:"errnoRet,omitempty"`
	Args     []specs.LinuxSeccompArg  `json:"args,omitempty"`
	Comment  string                   `json:"comment,omitempty"`
	Includes *filterJSON              `json:"includes,omitempty"`
	Excludes *filterJSON              `json:"excludes,omitempty"`
}

type filterJSON struct {
	Arches    []string `json:"arches,omitempty"`
	Caps      []string `json:"caps,omitempty"`
	MinKernel string   `json:"minKernel,omitempty"`
}

// ParseProfile reads a profile in Docker's JSON form. Malformed input
// fails with errdefs.ErrInvalidArgument; actions, arches and names are
// checked later, by Compile.
func ParseProfile(data []byte) (*Profile, error) {
	var j profileJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("seccomp profile: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	if j.DefaultAction == "" {
		return nil, fmt.Errorf("seccomp profile: defaultAction: empty: %w", errdefs.ErrInvalidArgument)
	}
	if len(j.Architectures) > 0 && len(j.ArchMap) > 0 {
		return nil, fmt.Errorf("seccomp profile: both architectures and archMap are set, use one: %w", errdefs.ErrInvalidArgument)
	}
	p := &Profile{
		DefaultAction: j.DefaultAction, DefaultErrnoRet: j.DefaultErrnoRet,
		Architectures: j.Architectures, Flags: j.Flags,
		ListenerPath: j.ListenerPath, ListenerMetadata: j.ListenerMetadata,
	}
	if len(j.ArchMap) > 0 {
		p.Arches = map[specs.Arch][]specs.Arch{}
		for _, m := range j.ArchMap {
			p.Arches[m.Arch] = append(p.Arches[m.Arch], m.SubArches...)
		}
	}
	for i, sc := range j.Syscalls {
		r := ProfileRule{Names: sc.Names, Action: sc.Action, ErrnoRet: sc.ErrnoRet, Args: sc.Args, Comment: sc.Comment}
		if sc.Name != "" {
			if len(sc.Names) > 0 {
				return nil, fmt.Errorf("seccomp profile syscalls[%d]: both name and names are set, use one: %w", i, errdefs.ErrInvalidArgument)
			}
			r.Names = []string{sc.Name}
		}
		if inc := sc.Includes; inc != nil {
			r.OnlyArches, r.OnlyCaps, r.MinKernel = inc.Arches, inc.Caps, inc.MinKernel
		}
		if exc := sc.Excludes; exc != nil {
			r.NotArches, r.NotCaps, r.BeforeKernel = exc.Arches, exc.Caps, exc.MinKernel
		}
		for _, k := range []string{r.MinKernel, r.BeforeKernel} {
			if k == "" {
				continue
			}
			if _, err := parseKernel(k); err != nil {
				return nil, fmt.Errorf("seccomp profile syscalls[%d]: minKernel: %w", i, err)
			}
		}
		p.Rules = append(p.Rules, r)
	}
	return p, nil
}

// MarshalJSON writes p in Docker's JSON form, which ParseProfile reads.
func (p *Profile) MarshalJSON() ([]byte, error) {
	j := profileJSON{
		DefaultAction: p.DefaultAction, DefaultErrnoRet: p.DefaultErrnoRet,
		Architectures: p.Architectures, Flags: p.Flags,
		ListenerPath: p.ListenerPath, ListenerMetadata: p.ListenerMetadata,
		Syscalls: []syscallJSON{},
	}
	natives := make([]specs.Arch, 0, len(p.Arches))
	for a := range p.Arches {
		natives = append(natives, a)
	}
	slices.Sort(natives) // a stable file
	for _, a := range natives {
		j.ArchMap = append(j.ArchMap, archMapJSON{Arch: a, SubArches: p.Arches[a]})
	}
	for _, r := range p.Rules {
		sc := syscallJSON{Names: r.Names, Action: r.Action, ErrnoRet: r.ErrnoRet, Args: r.Args, Comment: r.Comment}
		if len(r.OnlyArches)+len(r.OnlyCaps) > 0 || r.MinKernel != "" {
			sc.Includes = &filterJSON{Arches: r.OnlyArches, Caps: r.OnlyCaps, MinKernel: r.MinKernel}
		}
		if len(r.NotArches)+len(r.NotCaps) > 0 || r.BeforeKernel != "" {
			sc.Excludes = &filterJSON{Arches: r.NotArches, Caps: r.NotCaps, MinKernel: r.BeforeKernel}
		}
		j.Syscalls = append(j.Syscalls, sc)
	}
	return json.Marshal(j)
}
