package specgen

import (
	"bytes"
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/seccomp"
)

// dockerProfile is the JSON of `--security-opt seccomp=FILE`: Docker's
// profile format, whose rules carry includes/excludes conditions.
type dockerProfile struct {
	DefaultAction   specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet *uint                    `json:"defaultErrnoRet"`
	Architectures   []specs.Arch             `json:"architectures"`
	ArchMap         []struct {
		Arch      specs.Arch   `json:"architecture"`
		SubArches []specs.Arch `json:"subArchitectures"`
	} `json:"archMap"`
	Syscalls []struct {
		Name     string                   `json:"name"`
		Names    []string                 `json:"names"`
		Action   specs.LinuxSeccompAction `json:"action"`
		ErrnoRet *uint                    `json:"errnoRet"`
		Args     []specs.LinuxSeccompArg  `json:"args"`
		Includes conditions               `json:"includes"`
		Excludes conditions               `json:"excludes"`
	} `json:"syscalls"`
}

type conditions struct {
	Arches    []string `json:"arches"`
	Caps      []string `json:"caps"`
	MinKernel string   `json:"minKernel"`
}

// goArchOf maps Docker profile arch words to Go's, for includes/excludes.
var goArchOf = map[string]string{"amd64": "amd64", "x86_64": "amd64", "x86": "386", "386": "386",
	"arm64": "arm64", "aarch64": "arm64", "arm": "arm", "ppc64le": "ppc64le", "s390x": "s390x",
	"s390": "s390x", "riscv64": "riscv64", "mips64": "mips64", "mips64n32": "mips64", "loong64": "loong64"}

func goArches(words []string) []string {
	var out []string
	for _, w := range words {
		if g, ok := goArchOf[w]; ok {
			out = append(out, g)
		} else {
			out = append(out, w)
		}
	}
	return out
}

// ParseSeccompProfile reads a Docker-format seccomp profile.
func ParseSeccompProfile(b []byte) (*seccomp.Profile, error) {
	var dp dockerProfile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&dp); err != nil {
		return nil, fmt.Errorf("decode seccomp profile: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if dp.DefaultAction == "" {
		return nil, fmt.Errorf("seccomp profile: no defaultAction: %w", errdefs.ErrInvalidArgument)
	}
	p := &seccomp.Profile{DefaultAction: dp.DefaultAction, DefaultErrnoRet: dp.DefaultErrnoRet, Arches: map[specs.Arch][]specs.Arch{}}
	for _, m := range dp.ArchMap {
		p.Arches[m.Arch] = m.SubArches
	}
	for _, a := range dp.Architectures {
		if _, ok := p.Arches[a]; !ok {
			p.Arches[a] = nil
		}
	}
	for _, sc := range dp.Syscalls {
		names := sc.Names
		if sc.Name != "" {
			names = append(names, sc.Name)
		}
		p.Rules = append(p.Rules, seccomp.ProfileRule{
			Names: names, Action: sc.Action, ErrnoRet: sc.ErrnoRet, Args: sc.Args,
			OnlyArches: goArches(sc.Includes.Arches), NotArches: goArches(sc.Excludes.Arches),
			OnlyCaps: sc.Includes.Caps, NotCaps: sc.Excludes.Caps, MinKernel: sc.Includes.MinKernel,
		})
	}
	return p, nil
}
