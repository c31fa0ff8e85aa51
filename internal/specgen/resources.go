package specgen

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// cpuPeriod is the CFS period docker uses to express --cpus.
const cpuPeriod = 100000

func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

// resources maps docker's Resources to the spec's, checking what docker
// checks before the kernel would.
func resources(host *container.HostConfig) (*specs.LinuxResources, error) {
	r := host.Resources
	out := &specs.LinuxResources{}
	if r.Memory != 0 && r.Memory < 6<<20 {
		return nil, invalid("Minimum memory limit allowed is 6MB")
	}
	if r.MemorySwap > 0 && r.Memory > 0 && r.MemorySwap < r.Memory {
		return nil, invalid("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if r.MemorySwap > 0 && r.Memory == 0 {
		return nil, invalid("You should always set the Memory limit when using Memoryswap limit, see usage")
	}
	if r.MemorySwappiness != nil && (*r.MemorySwappiness < -1 || *r.MemorySwappiness > 100) {
		return nil, invalid("Invalid value: %d, valid memory swappiness range is 0-100", *r.MemorySwappiness)
	}
	if r.Memory != 0 || r.MemoryReservation != 0 || r.MemorySwap != 0 || r.OomKillDisable != nil || r.MemorySwappiness != nil {
		m := &specs.LinuxMemory{DisableOOMKiller: r.OomKillDisable}
		if r.Memory > 0 {
			m.Limit = ptr(r.Memory)
			swap := r.MemorySwap
			if swap == 0 {
				swap = 2 * r.Memory // docker: swap defaults to the memory limit again
			}
			m.Swap = ptr(swap)
		}
		if r.MemoryReservation > 0 {
			m.Reservation = ptr(r.MemoryReservation)
		}
		if r.MemorySwappiness != nil && *r.MemorySwappiness >= 0 {
			m.Swappiness = ptr(uint64(*r.MemorySwappiness))
		}
		out.Memory = m
	}
	if r.NanoCPUs != 0 && (r.CPUQuota != 0 || r.CPUPeriod != 0) {
		return nil, invalid("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if r.NanoCPUs < 0 {
		return nil, invalid("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", numCPU(), numCPU())
	}
	if r.CPUShares != 0 || r.CPUQuota != 0 || r.CPUPeriod != 0 || r.NanoCPUs != 0 || r.CpusetCpus != "" || r.CpusetMems != "" ||
		r.CPURealtimePeriod != 0 || r.CPURealtimeRuntime != 0 {
		c := &specs.LinuxCPU{Cpus: r.CpusetCpus, Mems: r.CpusetMems}
		if r.CPUShares > 0 {
			c.Shares = ptr(uint64(r.CPUShares))
		}
		if r.NanoCPUs > 0 {
			c.Period = ptr(uint64(cpuPeriod))
			c.Quota = ptr(r.NanoCPUs * cpuPeriod / 1e9)
		}
		if r.CPUQuota != 0 {
			c.Quota = ptr(r.CPUQuota)
		}
		if r.CPUPeriod != 0 {
			c.Period = ptr(uint64(r.CPUPeriod))
		}
		if r.CPURealtimePeriod != 0 {
			c.RealtimePeriod = ptr(uint64(r.CPURealtimePeriod))
		}
		if r.CPURealtimeRuntime != 0 {
			c.RealtimeRuntime = ptr(r.CPURealtimeRuntime)
		}
		out.CPU = c
	}
	if r.PidsLimit != nil && *r.PidsLimit != 0 {
		limit := *r.PidsLimit
		if limit < 0 {
			limit = -1 // unlimited ("max")
		}
		out.Pids = &specs.LinuxPids{Limit: ptr(limit)}
	}
	if r.BlkioWeight != 0 && (r.BlkioWeight < 10 || r.BlkioWeight > 1000) {
		return nil, invalid("Range of blkio weight is from 10 to 1000")
	}
	if r.BlkioWeight != 0 || len(r.BlkioWeightDevice)+len(r.BlkioDeviceReadBps)+len(r.BlkioDeviceWriteBps)+len(r.BlkioDeviceReadIOps)+len(r.BlkioDeviceWriteIOps) > 0 {
		b := &specs.LinuxBlockIO{}
		if r.BlkioWeight != 0 {
			b.Weight = ptr(r.BlkioWeight)
		}
		for _, d := range r.BlkioWeightDevice {
			maj, min, err := blockDevice(d.Path)
			if err != nil {
				return nil, err
			}
			wd := specs.LinuxWeightDevice{Weight: ptr(d.Weight)}
			wd.Major, wd.Minor = maj, min
			b.WeightDevice = append(b.WeightDevice, wd)
		}
		var err error
		if b.ThrottleReadBpsDevice, err = throttles(r.BlkioDeviceReadBps); err != nil {
			return nil, err
		}
		if b.ThrottleWriteBpsDevice, err = throttles(r.BlkioDeviceWriteBps); err != nil {
			return nil, err
		}
		if b.ThrottleReadIOPSDevice, err = throttles(r.BlkioDeviceReadIOps); err != nil {
			return nil, err
		}
		if b.ThrottleWriteIOPSDevice, err = throttles(r.BlkioDeviceWriteIOps); err != nil {
			return nil, err
		}
		out.BlockIO = b
	}
	return out, nil
}

func throttles(list []*blkiodev.ThrottleDevice) ([]specs.LinuxThrottleDevice, error) {
	var out []specs.LinuxThrottleDevice
	for _, d := range list {
		maj, min, err := blockDevice(d.Path)
		if err != nil {
			return nil, err
		}
		td := specs.LinuxThrottleDevice{Rate: d.Rate}
		td.Major, td.Minor = maj, min
		out = append(out, td)
	}
	return out, nil
}

// blockDevice stats a host block device for its numbers: the one place
// resources reads the host, because docker's API names devices by path.
func blockDevice(path string) (int64, int64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, invalid("device %s: %v", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, 0, invalid("device %s is not a block device", path)
	}
	return int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev)), nil
}

func numCPU() int {
	b, err := readFile("/sys/devices/system/cpu/online")
	if err != nil {
		return 1
	}
	n := 0
	for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, found := strings.Cut(part, "-")
		a, _ := strconv.Atoi(lo)
		z := a
		if found {
			z, _ = strconv.Atoi(hi)
		}
		n += z - a + 1
	}
	return n
}

func ptr[T any](v T) *T { return &v }
