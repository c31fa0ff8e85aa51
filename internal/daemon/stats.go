package daemon

import (
	"bufio"
	"context"
	"math"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	containertypes "github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/cgroups"
	"github.com/berth-dev/berth/internal/container"
)

// ContainerStatsOptions are GET /containers/{id}/stats's.
type ContainerStatsOptions struct {
	// Stream sends a sample every second until ctx ends or the container
	// stops. Without it one sample is sent: after a second, so that
	// precpu_stats is filled (docker's default), or at once with OneShot.
	Stream, OneShot bool
}

// statsInterval is docker's sampling period.
const statsInterval = time.Second

// ContainerStats yields docker's StatsResponse samples of the container's
// cgroups, closing the channel at the end or when ctx ends. A container
// that is not running gives zeroed samples, as docker's does.
func (e *Engine) ContainerStats(ctx context.Context, ref string, opts ContainerStatsOptions) (<-chan containertypes.StatsResponse, error) {
	ct, c, err := e.lookup(ref)
	if err != nil {
		return nil, err
	}
	id := ct.ID()
	out := make(chan containertypes.StatsResponse, 1)
	go func() {
		defer close(out)
		var prev containertypes.StatsResponse
		first := true
		for {
			r := ct.Snapshot()
			s := containertypes.StatsResponse{ID: id, Name: "/" + r.Name, OSType: "linux", Read: time.Now().UTC()}
			if r.State.Status == container.Running || r.State.Status == container.Paused {
				if rc, err := c.rt.Load(ctx, id); err == nil {
					if st, err := rc.Stats(ctx); err == nil {
						fillStats(&s, st)
					}
				}
				s.Networks = e.networkStats(id)
			}
			if !first {
				s.PreRead, s.PreCPUStats = prev.Read, prev.CPUStats
			}
			send := opts.Stream || opts.OneShot || !first
			if send {
				select {
				case out <- s:
				case <-ctx.Done():
					return
				}
				if !opts.Stream {
					return
				}
			}
			// A stopped container streams zeroes until the client goes,
			// as docker's does.
			prev, first = s, false
			t := time.NewTimer(statsInterval)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
	return out, nil
}

// networkStats are the counters of the container's interfaces (eth0,
// ...) read in its namespace; nil, so that docker omits "networks", for a
// container without a namespace of ours (none, host, container:<x>).
func (e *Engine) networkStats(id string) map[string]containertypes.NetworkStats {
	m, err := e.netManager()
	if err != nil {
		return nil
	}
	links, err := m.Stats(id)
	if err != nil || len(links) == 0 {
		return nil
	}
	out := make(map[string]containertypes.NetworkStats, len(links))
	for name, l := range links {
		out[name] = containertypes.NetworkStats{RxBytes: l.RxBytes, RxPackets: l.RxPackets, RxErrors: l.RxErrors, RxDropped: l.RxDropped,
			TxBytes: l.TxBytes, TxPackets: l.TxPackets, TxErrors: l.TxErrors, TxDropped: l.TxDropped}
	}
	return out
}

// fillStats converts the cgroup statistics to docker's shape.
func fillStats(s *containertypes.StatsResponse, st *cgroups.Stats) {
	cpu := &s.CPUStats
	cpu.CPUUsage.TotalUsage = st.CPU.Usage
	cpu.CPUUsage.PercpuUsage = st.CPU.PerCPU
	cpu.CPUUsage.UsageInKernelmode = st.CPU.System
	cpu.CPUUsage.UsageInUsermode = st.CPU.User
	cpu.ThrottlingData = containertypes.ThrottlingData{
		Periods: st.CPU.Periods, ThrottledPeriods: st.CPU.ThrottledPeriods, ThrottledTime: st.CPU.ThrottledTime,
	}
	cpu.SystemUsage = systemCPUUsage()
	cpu.OnlineCPUs = uint32(goruntime.NumCPU())
	if n := len(st.CPU.PerCPU); n > 0 {
		cpu.OnlineCPUs = uint32(n)
	}

	mem := &s.MemoryStats
	mem.Usage, mem.MaxUsage, mem.Failcnt, mem.Stats = st.Memory.Usage, st.Memory.MaxUsage, st.Memory.Failcnt, st.Memory.Stat
	mem.Limit = st.Memory.Limit
	// No limit: docker reports the host's memory, which the CLI divides by.
	if total := hostMemory(); total > 0 && (mem.Limit == 0 || mem.Limit == math.MaxUint64 || mem.Limit > total) {
		mem.Limit = total
	}

	s.PidsStats.Current = st.Pids.Current
	if st.Pids.Limit != math.MaxUint64 {
		s.PidsStats.Limit = st.Pids.Limit
	}
	s.NumProcs = 0 // Windows only
	conv := func(in []cgroups.BlkIOEntry) []containertypes.BlkioStatEntry {
		out := make([]containertypes.BlkioStatEntry, 0, len(in))
		for _, e := range in {
			out = append(out, containertypes.BlkioStatEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value})
		}
		return out
	}
	s.BlkioStats.IoServiceBytesRecursive = conv(st.BlkIO.ServiceBytes)
	s.BlkioStats.IoServicedRecursive = conv(st.BlkIO.Serviced)
}

// systemCPUUsage is the host's CPU time in nanoseconds: the sum of the
// first line of /proc/stat, in USER_HZ ticks (100 per second on Linux,
// which the kernel keeps fixed for user space whatever CONFIG_HZ is).
func systemCPUUsage() uint64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0
	}
	fs := strings.Fields(sc.Text())
	if len(fs) < 8 || fs[0] != "cpu" {
		return 0
	}
	var ticks uint64
	for _, v := range fs[1:8] { // user nice system idle iowait irq softirq
		n, _ := strconv.ParseUint(v, 10, 64)
		ticks += n
	}
	const userHZ = 100
	return ticks * (1e9 / userHZ)
}

// hostMemory is MemTotal from /proc/meminfo, in bytes.
func hostMemory() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			fs := strings.Fields(v)
			if len(fs) > 0 {
				n, _ := strconv.ParseUint(fs[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}
