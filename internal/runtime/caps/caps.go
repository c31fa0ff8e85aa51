package caps

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// names is indexed by capability number, as include/uapi/linux/capability.h
// numbers them. A kernel may know fewer (cap_last_cap) or more than this
// table; Last tells which of these the running kernel has.
var names = []string{
	"CAP_CHOWN",              // 0
	"CAP_DAC_OVERRIDE",       // 1
	"CAP_DAC_READ_SEARCH",    // 2
	"CAP_FOWNER",             // 3
	"CAP_FSETID",             // 4
	"CAP_KILL",               // 5
	"CAP_SETGID",             // 6
	"CAP_SETUID",             // 7
	"CAP_SETPCAP",            // 8
	"CAP_LINUX_IMMUTABLE",    // 9
	"CAP_NET_BIND_SERVICE",   // 10
	"CAP_NET_BROADCAST",      // 11
	"CAP_NET_ADMIN",          // 12
	"CAP_NET_RAW",            // 13
	"CAP_IPC_LOCK",           // 14
	"CAP_IPC_OWNER",          // 15
	"CAP_SYS_MODULE",         // 16
	"CAP_SYS_RAWIO",          // 17
	"CAP_SYS_CHROOT",         // 18
	"CAP_SYS_PTRACE",         // 19
	"CAP_SYS_PACCT",          // 20
	"CAP_SYS_ADMIN",          // 21
	"CAP_SYS_BOOT",           // 22
	"CAP_SYS_NICE",           // 23
	"CAP_SYS_RESOURCE",       // 24
	"CAP_SYS_TIME",           // 25
	"CAP_SYS_TTY_CONFIG",     // 26
	"CAP_MKNOD",              // 27
	"CAP_LEASE",              // 28
	"CAP_AUDIT_WRITE",        // 29
	"CAP_AUDIT_CONTROL",      // 30
	"CAP_SETFCAP",            // 31
	"CAP_MAC_OVERRIDE",       // 32
	"CAP_MAC_ADMIN",          // 33
	"CAP_SYSLOG",             // 34
	"CAP_WAKE_ALARM",         // 35
	"CAP_BLOCK_SUSPEND",      // 36
	"CAP_AUDIT_READ",         // 37
	"CAP_PERFMON",            // 38
	"CAP_BPF",                // 39
	"CAP_CHECKPOINT_RESTORE", // 40
}

var byName = func() map[string]uintptr {
	m := make(map[string]uintptr, len(names))
	for i, n := range names {
		m[n] = uintptr(i)
	}
	return m
}()

var last = sync.OnceValue(func() uintptr {
	// The kernel's answer wins over our table: a capability it does not
	// know cannot be held, and PR_CAPBSET_DROP of it fails with EINVAL.
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= 0 {
			return uintptr(n)
		}
	}
	// Without /proc (unusual), assume the kernel knows what we know.
	return uintptr(len(names) - 1)
})

// Last returns the number of the highest capability the running kernel
// supports.
func Last() uintptr { return last() }

// Name returns the CAP_ name of c, or "CAP_<n>" for a number this table
// does not name (a kernel newer than berth).
func Name(c uintptr) string {
	if c < uintptr(len(names)) {
		return names[c]
	}
	return "CAP_" + strconv.FormatUint(uint64(c), 10)
}

// Known returns the names of every capability both this table and the
// running kernel know, in number order.
func Known() []string {
	n := min(int(Last())+1, len(names))
	return slices.Clone(names[:n])
}

// Parse turns capability names into numbers. Names are matched without
// regard to case and must carry the CAP_ prefix, as the OCI spec writes
// them. Every unknown name is reported in one error wrapping
// errdefs.ErrInvalidArgument. A name this table knows but the running
// kernel does not is returned too; Apply skips it (runc does the same, so
// one spec runs on older kernels).
func Parse(list []string) ([]uintptr, error) {
	out := make([]uintptr, 0, len(list))
	var unknown []string
	for _, n := range list {
		c, ok := byName[strings.ToUpper(n)]
		if !ok {
			unknown = append(unknown, strconv.Quote(n))
			continue
		}
		out = append(out, c)
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("parse capabilities: unknown %s: %w", strings.Join(unknown, ", "), errdefs.ErrInvalidArgument)
	}
	return out, nil
}

// Set is one thread's five capability sets as bit masks (bit n is
// capability n), the form /proc/<pid>/status prints.
type Set struct {
	Bounding, Effective, Permitted, Inheritable, Ambient uint64
}

// Mask turns capability numbers into a bit mask.
func Mask(cs []uintptr) uint64 {
	var m uint64
	for _, c := range cs {
		if c < 64 {
			m |= 1 << c
		}
	}
	return m
}

// Current reads the calling thread's capability sets. Lock the OS thread
// around it for a stable answer.
func Current() (Set, error) {
	var s Set
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return s, fmt.Errorf("read capabilities: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		var dst *uint64
		switch k {
		case "CapInh":
			dst = &s.Inheritable
		case "CapPrm":
			dst = &s.Permitted
		case "CapEff":
			dst = &s.Effective
		case "CapBnd":
			dst = &s.Bounding
		case "CapAmb":
			dst = &s.Ambient
		default:
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return s, fmt.Errorf("read capabilities: %s: %w", k, err)
		}
		*dst = n
	}
	return s, nil
}

// SetKeepCaps sets or clears PR_SET_KEEPCAPS on the calling thread: with it
// set, a setuid from root to a non-root uid keeps the permitted set.
func SetKeepCaps(keep bool) error {
	v := uintptr(0)
	if keep {
		v = 1
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, v, 0, 0, 0); err != nil {
		return fmt.Errorf("set keepcaps: %w", err)
	}
	return nil
}

// Apply gives the calling thread exactly the sets in c (nil means all five
// empty): it drops from the bounding set every capability not listed,
// sets effective, permitted and inheritable with capset(2), replaces the
// ambient set, and clears PR_SET_KEEPCAPS. Capabilities the running kernel
// does not know are skipped. The thread needs CAP_SETPCAP in its permitted
// set to drop the bounding set, and the new permitted set must be a subset
// of the old one (the kernel refuses to add to it).
//
// Apply is per thread: see the package documentation.
func Apply(c *specs.LinuxCapabilities) error {
	if c == nil {
		c = &specs.LinuxCapabilities{}
	}
	var want [5][]uintptr
	for i, list := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
		cs, err := Parse(list)
		if err != nil {
			return fmt.Errorf("apply capabilities: %w", err)
		}
		want[i] = slices.DeleteFunc(cs, func(x uintptr) bool { return x > Last() })
	}
	bounding, effective, permitted, inheritable, ambient := want[0], want[1], want[2], want[3], want[4]

	cur, err := get()
	if err != nil {
		return err
	}
	// PR_CAPBSET_DROP needs CAP_SETPCAP in the effective set. A setuid to a
	// non-root user with keepcaps cleared the effective set but kept the
	// permitted one, so raise it back for the drop.
	const setpcap = uint64(1) << unix.CAP_SETPCAP
	if cur.perm&setpcap != 0 && cur.eff&setpcap == 0 {
		cur.eff |= setpcap
		if err := set(cur); err != nil {
			return fmt.Errorf("apply capabilities: raise CAP_SETPCAP: %w", err)
		}
	}
	keep := Mask(bounding)
	for n := uintptr(0); n <= Last(); n++ {
		if n < 64 && keep&(1<<n) != 0 {
			continue
		}
		// Skip what is already gone: every PR_CAPBSET_DROP needs
		// CAP_SETPCAP, even a no-op one, and a process whose bounding set
		// is already narrow enough may not have it.
		if in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, n, 0, 0, 0); err == nil && in == 0 {
			continue
		}
		// Dropping CAP_SETPCAP from the bounding set leaves it in the
		// effective set, so the drops after it still work.
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, n, 0, 0, 0); err != nil {
			return fmt.Errorf("apply capabilities: drop %s from the bounding set: %w", Name(n), err)
		}
	}

	if err := set(sets{eff: Mask(effective), perm: Mask(permitted), inh: Mask(inheritable)}); err != nil {
		return fmt.Errorf("apply capabilities: capset: %w", err)
	}

	// An ambient capability must be both permitted and inheritable, so it
	// is raised after capset (PR_CAP_AMBIENT_RAISE fails with EPERM
	// otherwise).
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("apply capabilities: clear the ambient set: %w", err)
	}
	for _, n := range ambient {
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, n, 0, 0); err != nil {
			return fmt.Errorf("apply capabilities: raise ambient %s (it must be permitted and inheritable): %w", Name(n), err)
		}
	}
	return SetKeepCaps(false)
}

type sets struct{ eff, perm, inh uint64 }

func get() (sets, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return sets{}, fmt.Errorf("capget: %w", err)
	}
	return sets{
		eff:  uint64(data[0].Effective) | uint64(data[1].Effective)<<32,
		perm: uint64(data[0].Permitted) | uint64(data[1].Permitted)<<32,
		inh:  uint64(data[0].Inheritable) | uint64(data[1].Inheritable)<<32,
	}, nil
}

// set calls capset(2) version 3 (64 capability bits in two 32-bit words)
// for the calling thread (pid 0).
func set(s sets) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(s.eff), Permitted: uint32(s.perm), Inheritable: uint32(s.inh)},
		{Effective: uint32(s.eff >> 32), Permitted: uint32(s.perm >> 32), Inheritable: uint32(s.inh >> 32)},
	}
	return unix.Capset(&hdr, &data[0])
}
