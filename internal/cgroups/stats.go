package cgroups

import (
	"strconv"
	"strings"
)

// Stats is a cgroup's usage and limits. A limit of math.MaxUint64 means
// none. Fields a host cannot report stay zero.
type Stats struct {
	Memory  MemoryStats
	CPU     CPUStats
	Pids    PidsStats
	BlkIO   BlkIOStats
	Hugetlb map[string]HugetlbStats // by page size, e.g. "2MB"
}

// MemoryStats: v1 memory.* or v2 memory.* files.
type MemoryStats struct {
	Usage    uint64
	MaxUsage uint64 // v1 max_usage_in_bytes, v2 memory.peak where present
	Limit    uint64
	Failcnt  uint64 // v1 failcnt, v2 the "max" count of memory.events
	// SwapUsage and SwapLimit are memory+swap on v1 and swap alone on v2,
	// as the kernel reports them.
	SwapUsage uint64
	SwapLimit uint64
	OOM       uint64 // times the cgroup hit its limit and the OOM path ran (v2 "oom"; v1 under_oom is a state, so 0)
	OOMKill   uint64 // processes the OOM killer killed in the cgroup
	Stat      map[string]uint64
}

// CPUStats: times in nanoseconds.
type CPUStats struct {
	Usage            uint64
	User             uint64
	System           uint64
	PerCPU           []uint64 // v1 only: v2 has no per-CPU accounting file
	Periods          uint64
	ThrottledPeriods uint64
	ThrottledTime    uint64
}

// PidsStats: Limit is math.MaxUint64 when unlimited.
type PidsStats struct {
	Current uint64
	Limit   uint64
}

// BlkIOStats lists per-device counters.
type BlkIOStats struct {
	ServiceBytes []BlkIOEntry
	Serviced     []BlkIOEntry
}

// BlkIOEntry is one device's counter for one operation ("Read", "Write").
type BlkIOEntry struct {
	Major, Minor uint64
	Op           string
	Value        uint64
}

// HugetlbStats is one page size's usage.
type HugetlbStats struct {
	Usage    uint64
	MaxUsage uint64
	Failcnt  uint64
}

// parseBlkioV1 reads "8:0 Read 4096" lines, skipping the totals.
func parseBlkioV1(s string) []BlkIOEntry {
	var out []BlkIOEntry
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		maj, min, ok := parseDev(f[0])
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, BlkIOEntry{Major: maj, Minor: min, Op: f[1], Value: v})
	}
	return out
}

// parseIOStatV2 reads io.stat lines ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...").
func parseIOStatV2(s string) (bytes, ios []BlkIOEntry) {
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		maj, min, ok := parseDev(f[0])
		if !ok {
			continue
		}
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			e := BlkIOEntry{Major: maj, Minor: min, Value: n}
			switch k {
			case "rbytes":
				e.Op = "Read"
				bytes = append(bytes, e)
			case "wbytes":
				e.Op = "Write"
				bytes = append(bytes, e)
			case "rios":
				e.Op = "Read"
				ios = append(ios, e)
			case "wios":
				e.Op = "Write"
				ios = append(ios, e)
			}
		}
	}
	return bytes, ios
}

func parseDev(s string) (uint64, uint64, bool) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, false
	}
	maj, err1 := strconv.ParseUint(a, 10, 64)
	min, err2 := strconv.ParseUint(b, 10, 64)
	return maj, min, err1 == nil && err2 == nil
}
