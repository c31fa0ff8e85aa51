package image

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

// normalizePlatform maps the aliases found in image configs and on command
// lines to the OCI names (x86_64 → amd64, aarch64 → arm64), and drops the
// arm64 variant v8, which is the only one and often omitted.
func normalizePlatform(p ocispec.Platform) ocispec.Platform {
	p.OS = strings.ToLower(p.OS)
	switch strings.ToLower(p.Architecture) {
	case "x86_64", "x86-64", "amd64":
		p.Architecture = "amd64"
	case "aarch64", "arm64":
		p.Architecture = "arm64"
		if p.Variant == "v8" || p.Variant == "8" {
			p.Variant = ""
		}
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	case "i386", "i686":
		p.Architecture = "386"
	default:
		p.Architecture = strings.ToLower(p.Architecture)
	}
	if p.Architecture == "arm" && p.Variant == "" {
		p.Variant = "v7"
	}
	if p.Variant != "" && !strings.HasPrefix(p.Variant, "v") && p.Architecture == "arm" {
		p.Variant = "v" + p.Variant
	}
	return p
}

// DefaultPlatform is what berth runs: linux on this machine's architecture.
func DefaultPlatform() ocispec.Platform {
	return normalizePlatform(ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH})
}

// ParsePlatform parses docker's --platform value: os[/arch[/variant]], or
// an architecture alone, or the JSON object the Engine API carries in its
// platform query parameters since 1.48 ({"os":"linux","architecture":…}).
func ParsePlatform(s string) (ocispec.Platform, error) {
	if s == "" {
		return DefaultPlatform(), nil
	}
	if strings.HasPrefix(s, "{") {
		var p ocispec.Platform
		if err := json.Unmarshal([]byte(s), &p); err != nil {
			return ocispec.Platform{}, fmt.Errorf("platform %q: %v: %w", s, err, errdefs.ErrInvalidArgument)
		}
		if p.OS == "" {
			p.OS = "linux"
		}
		if p.Architecture == "" {
			p.Architecture = runtime.GOARCH
		}
		return normalizePlatform(p), nil
	}
	parts := strings.Split(s, "/")
	var p ocispec.Platform
	switch len(parts) {
	case 1:
		if parts[0] == "linux" {
			p = ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
		} else {
			p = ocispec.Platform{OS: "linux", Architecture: parts[0]}
		}
	case 2:
		p = ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	case 3:
		p = ocispec.Platform{OS: parts[0], Architecture: parts[1], Variant: parts[2]}
	default:
		return ocispec.Platform{}, fmt.Errorf("platform %q: want os[/arch[/variant]]: %w", s, errdefs.ErrInvalidArgument)
	}
	for _, x := range parts {
		if x == "" {
			return ocispec.Platform{}, fmt.Errorf("platform %q: empty component: %w", s, errdefs.ErrInvalidArgument)
		}
	}
	return normalizePlatform(p), nil
}

// FormatPlatform is os/arch[/variant].
func FormatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// platformScore says how well have serves want: 0 is no match, higher is
// better. An arm/v7 machine also runs v6 and v5 code, preferring the
// newest; a request without variant takes any.
func platformScore(want, have ocispec.Platform) int {
	want, have = normalizePlatform(want), normalizePlatform(have)
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return 0
	}
	if want.Variant == have.Variant {
		return 10
	}
	if want.Architecture == "arm" && len(want.Variant) == 2 && len(have.Variant) == 2 && have.Variant < want.Variant {
		return 1 + int(have.Variant[1]-'0')
	}
	if want.Variant == "" {
		return 1
	}
	return 0
}
