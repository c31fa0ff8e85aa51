package specgen

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// mounts returns docker's default mounts, then the caller's (a caller's
// destination replaces a default one), then --tmpfs ones, then the init.
func mounts(in Input, host *container.HostConfig) []specs.Mount {
	shm := host.ShmSize
	if shm <= 0 {
		shm = defaultShmSize
	}
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	cgroupOpts := []string{"nosuid", "noexec", "nodev", "relatime", "ro"}
	if host.Privileged {
		sysOpts, cgroupOpts = sysOpts[:3], cgroupOpts[:4]
	}
	defaults := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: cgroupOpts},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(shm, 10)}},
	}
	taken := map[string]bool{}
	for _, m := range in.Mounts {
		taken[m.Destination] = true
	}
	for dst := range host.Tmpfs {
		taken[dst] = true
	}
	var out []specs.Mount
	for _, m := range defaults {
		if !taken[m.Destination] {
			out = append(out, m)
		}
	}
	out = append(out, in.Mounts...)
	dsts := make([]string, 0, len(host.Tmpfs))
	for dst := range host.Tmpfs {
		dsts = append(dsts, dst)
	}
	slices.Sort(dsts)
	for _, dst := range dsts {
		out = append(out, specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: tmpfsOptions(host.Tmpfs[dst])})
	}
	if host.Init != nil && *host.Init && in.InitBinary != "" {
		out = append(out, specs.Mount{Destination: InitPath, Type: "bind", Source: in.InitBinary, Options: []string{"rbind", "ro", "nosuid", "nodev"}})
	}
	return out
}

// tmpfsOptions is docker's --tmpfs default (noexec, nosuid, nodev) with the
// user's comma-separated options added; later options win in the kernel.
func tmpfsOptions(opts string) []string {
	out := []string{"noexec", "nosuid", "nodev"}
	return append(out, splitComma(opts)...)
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

// TmpfsMount is the spec mount for one --mount type=tmpfs.
func TmpfsMount(dst string, size int64, mode uint32) specs.Mount {
	opts := []string{"noexec", "nosuid", "nodev"}
	if size > 0 {
		opts = append(opts, "size="+strconv.FormatInt(size, 10))
	}
	if mode != 0 {
		opts = append(opts, fmt.Sprintf("mode=%o", mode))
	}
	return specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: opts}
}

// BindMount is the spec mount for a bind of src at dst, read-only or not,
// with the given propagation ("" for rprivate, docker's default).
func BindMount(src, dst string, readonly bool, propagation string) specs.Mount {
	opts := []string{"rbind"}
	if readonly {
		opts = append(opts, "ro")
	}
	if propagation == "" {
		propagation = "rprivate"
	}
	opts = append(opts, propagation)
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts}
}
