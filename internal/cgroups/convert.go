package cgroups

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/cgroups/devicefilter"
	"github.com/berth-dev/berth/internal/errdefs"
)

// SharesToWeight maps v1 cpu.shares [2, 262144] linearly onto v2 cpu.weight
// [1, 10000], so the default 1024 shares lands near the default weight 100
// (it gives 39: the two scales' defaults do not line up linearly, and every
// runtime that converts accepts that, so containers compare the same way
// under either runtime).
func SharesToWeight(shares uint64) uint64 {
	shares = max(2, min(shares, 262144))
	return 1 + (shares-2)*9999/262142
}

// BlkioToIOWeight maps v1 blkio.weight [10, 1000] onto v2 io.weight
// [1, 10000].
func BlkioToIOWeight(w uint16) uint64 {
	v := uint64(max(10, min(w, 1000)))
	return 1 + (v-10)*9999/990
}

// deviceLines turns OCI device rules into the lines to write, in order, to
// devices.allow or devices.deny on v1. A rule that covers every device and
// access becomes "a", which on v1 resets the whole list to allow-all or
// deny-all (Documentation/admin-guide/cgroup-v1/devices.rst).
func deviceLines(rules []specs.LinuxDeviceCgroup) (files, lines []string, err error) {
	for _, r := range rules {
		if err := devicefilter.Validate(r); err != nil {
			return nil, nil, err
		}
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		typ := r.Type
		if typ == "" {
			typ = "a"
		}
		access := r.Access
		if access == "" {
			access = "rwm"
		}
		major, minor := num(r.Major), num(r.Minor)
		switch {
		case typ == "a" && major == "*" && minor == "*" && hasAll(access):
			files, lines = append(files, file), append(lines, "a")
		case typ == "a":
			// The kernel reads any line starting with "a" as "everything",
			// whatever follows; a narrower rule for all types must be
			// written once for character and once for block devices.
			for _, t := range []string{"c", "b"} {
				files = append(files, file)
				lines = append(lines, fmt.Sprintf("%s %s:%s %s", t, major, minor, access))
			}
		default:
			files = append(files, file)
			lines = append(lines, fmt.Sprintf("%s %s:%s %s", typ, major, minor, access))
		}
	}
	return files, lines, nil
}

func num(p *int64) string {
	if p == nil || *p == -1 {
		return "*"
	}
	return strconv.FormatInt(*p, 10)
}

func hasAll(access string) bool {
	return strings.Contains(access, "r") && strings.Contains(access, "w") && strings.Contains(access, "m")
}

// checkPagesize accepts an OCI hugepage size ("2MB", "1GB", "64KB"); the
// kernel's file names use the same spelling.
func checkPagesize(s string) error {
	n := strings.TrimSuffix(s, "B")
	if n == s || len(n) < 2 || !strings.ContainsAny(n[len(n)-1:], "KMG") {
		return fmt.Errorf("hugepage size %q: want a number and KB, MB or GB: %w", s, errdefs.ErrInvalidArgument)
	}
	if _, err := strconv.ParseUint(n[:len(n)-1], 10, 32); err != nil {
		return fmt.Errorf("hugepage size %q: want a number and KB, MB or GB: %w", s, errdefs.ErrInvalidArgument)
	}
	return nil
}

// checkUnifiedKey refuses keys that are not a plain control file name of
// the container's own cgroup: a separator or ".." would write outside it,
// and the process and kill files are the runtime's, not limits.
func checkUnifiedKey(key string) error {
	switch {
	case key == "" || key == "." || key == "..":
	case strings.ContainsAny(key, "/\x00"):
	case !strings.Contains(key, "."):
	case key == "cgroup.procs" || key == "cgroup.threads" || key == "cgroup.kill" ||
		key == "cgroup.subtree_control" || key == "cgroup.freeze":
		return fmt.Errorf("unified key %q: managed by the runtime, not a limit: %w", key, errdefs.ErrInvalidArgument)
	default:
		return nil
	}
	return fmt.Errorf("unified key %q: want a control file name such as memory.high: %w", key, errdefs.ErrInvalidArgument)
}

// rdmaLine renders one device's limits for rdma.max (same syntax on v1
// and v2).
func rdmaLine(dev string, l specs.LinuxRdma) string {
	parts := []string{dev}
	if l.HcaHandles != nil {
		parts = append(parts, "hca_handle="+strconv.FormatUint(uint64(*l.HcaHandles), 10))
	}
	if l.HcaObjects != nil {
		parts = append(parts, "hca_object="+strconv.FormatUint(uint64(*l.HcaObjects), 10))
	}
	return strings.Join(parts, " ")
}

func limitString(v int64) string {
	if v < 0 {
		return "-1"
	}
	return strconv.FormatInt(v, 10)
}

func maxString(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// checkBeforeUpdate refuses a memory limit below the current usage when
// the spec asks (memory.checkBeforeUpdate, runtime-spec 1.2): the kernel
// would otherwise reclaim hard or OOM-kill to get under it.
func checkBeforeUpdate(mem *specs.LinuxMemory, dir, usageFile string) error {
	if mem.CheckBeforeUpdate == nil || !*mem.CheckBeforeUpdate || mem.Limit == nil || *mem.Limit <= 0 {
		return nil
	}
	usage, err := readUint(dir, usageFile)
	if err != nil {
		return err
	}
	if uint64(*mem.Limit) < usage {
		return fmt.Errorf("memory limit %d: below current usage %d: %w", *mem.Limit, usage, errdefs.ErrConflict)
	}
	return nil
}
