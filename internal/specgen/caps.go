package specgen

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/caps"
)

// DefaultCaps is docker's default capability set.
var DefaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Capabilities applies --cap-add and --cap-drop (names with or without
// CAP_, any case, or ALL) to docker's default set, or gives every
// capability the kernel knows for --privileged. Drops win over adds except
// that adding a cap after dropping ALL keeps it, as docker does.
func Capabilities(privileged bool, add, drop []string) (*specs.LinuxCapabilities, error) {
	all := caps.Known()
	norm := func(list []string) ([]string, error) {
		var out []string
		for _, c := range list {
			n := strings.ToUpper(c)
			if n != "ALL" && !strings.HasPrefix(n, "CAP_") {
				n = "CAP_" + n
			}
			if n != "ALL" && !slices.Contains(all, n) {
				return nil, fmt.Errorf("unknown capability: %q: %w", c, errdefs.ErrInvalidArgument)
			}
			out = append(out, n)
		}
		return out, nil
	}
	adds, err := norm(add)
	if err != nil {
		return nil, err
	}
	drops, err := norm(drop)
	if err != nil {
		return nil, err
	}
	var set []string
	switch {
	case privileged || slices.Contains(adds, "ALL"):
		set = slices.Clone(grantable())
	case slices.Contains(drops, "ALL"):
		set = nil
	default:
		set = slices.Clone(DefaultCaps)
	}
	if !privileged {
		set = slices.DeleteFunc(set, func(c string) bool { return slices.Contains(drops, c) })
		for _, c := range adds {
			if c != "ALL" && !slices.Contains(set, c) {
				set = append(set, c)
			}
		}
	}
	return &specs.LinuxCapabilities{
		Bounding:  set,
		Effective: slices.Clone(set),
		Permitted: slices.Clone(set),
	}, nil
}

// grantable is every capability the kernel knows that this process can
// hand on: "all capabilities" for --privileged means those in the engine's
// own bounding set, since capset refuses any other (this kind of host runs
// root without CAP_SYS_RESOURCE). Read once: the bounding set only shrinks.
var grantable = sync.OnceValue(func() []string {
	all := caps.Known()
	cur, err := caps.Current()
	if err != nil {
		return all
	}
	var out []string
	for i, name := range all {
		if i < 64 && cur.Bounding&(1<<uint(i)) != 0 {
			out = append(out, name)
		}
	}
	return out
})
