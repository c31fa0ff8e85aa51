package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	buildtypes "github.com/moby/moby/api/types/build"
	containertypes "github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/version"
)

// DaemonConfig is what `berth daemon` was started with that the Engine
// reports but does not act on itself (info shows it).
type DaemonConfig struct {
	ExecRoot           string
	Debug              bool
	InsecureRegistries []string
	Labels             []string
	// Warnings are shown by docker info (an API served without TLS).
	Warnings []string
}

// daemonConfigs holds each Engine's DaemonConfig. ConfigureDaemon may
// come after the API started serving Info, so it is kept where a store
// and a load need no lock of Engine's; Engines are few and long-lived.
var daemonConfigs sync.Map // *Engine → DaemonConfig

// ConfigureDaemon records how the daemon serving e was started. Call it
// once after New.
func (e *Engine) ConfigureDaemon(c DaemonConfig) { daemonConfigs.Store(e, c) }

func (e *Engine) daemonConfig() DaemonConfig {
	c, _ := daemonConfigs.Load(e)
	dc, _ := c.(DaemonConfig)
	return dc
}

// ID is the engine's identity, made once and kept in <root>/engine-id so
// it survives restarts (docker info's ID).
func (e *Engine) ID() (string, error) {
	p := filepath.Join(e.root, "engine-id")
	b, err := os.ReadFile(p)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("engine id: %w", err)
	}
	var rnd [16]byte
	rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:])
	// Atomic: a crash leaves either no file or the whole ID.
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return "", fmt.Errorf("engine id: %w", err)
	}
	_, werr := f.WriteString(id + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("engine id: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return "", fmt.Errorf("engine id: %w", err)
	}
	return id, nil
}

// Info is docker info's document. Container counts are zero on an Engine
// whose containers are not initialised (InitContainers not called).
func (e *Engine) Info(ctx context.Context) (system.Info, error) {
	id, err := e.ID()
	if err != nil {
		return system.Info{}, err
	}
	recs, err := e.images.List(ctx)
	if err != nil {
		return system.Info{}, fmt.Errorf("info: %w", err)
	}
	dc := e.daemonConfig()
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	var si unix.Sysinfo_t
	_ = unix.Sysinfo(&si)
	host, _ := os.Hostname()
	insecure := append([]string{"::1/128", "127.0.0.0/8"}, e.cfg.InsecureRegistries...)
	for _, r := range dc.InsecureRegistries {
		if !slices.Contains(insecure, r) {
			insecure = append(insecure, r)
		}
	}
	info := system.Info{
		ID:                 id,
		Images:             len(recs),
		Driver:             e.driver,
		DriverStatus:       [][2]string{{"Backing Filesystem", backingFS(e.root)}},
		MemoryLimit:        true,
		SwapLimit:          fileExists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
		CPUCfsPeriod:       true,
		CPUCfsQuota:        true,
		CPUShares:          true,
		CPUSet:             true,
		PidsLimit:          true,
		IPv4Forwarding:     readSysctl("/proc/sys/net/ipv4/ip_forward") == "1",
		Debug:              dc.Debug,
		NFd:                openFDs(),
		NGoroutines:        runtime.NumGoroutine(),
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		LoggingDriver:      "json-file",
		CgroupDriver:       "cgroupfs",
		CgroupVersion:      cgroupVersion(),
		NEventsListener:    e.Events().Listeners(),
		KernelVersion:      unix.ByteSliceToString(uts.Release[:]),
		OperatingSystem:    osName(),
		OSVersion:          osRelease("VERSION_ID"),
		OSType:             "linux",
		Architecture:       unix.ByteSliceToString(uts.Machine[:]),
		IndexServerAddress: distribution.IndexServer,
		RegistryConfig:     &registry.ServiceConfig{InsecureRegistryCIDRs: nil, IndexConfigs: map[string]*registry.IndexInfo{}},
		NCPU:               runtime.NumCPU(),
		MemTotal:           int64(si.Totalram) * int64(si.Unit),
		DockerRootDir:      e.root,
		Name:               host,
		Labels:             dc.Labels,
		ServerVersion:      version.Version,
		Runtimes:           map[string]system.RuntimeWithStatus{"berth": {Runtime: system.Runtime{Path: "berth-runtime"}}},
		DefaultRuntime:     "berth",
		LiveRestoreEnabled: true,
		Isolation:          "",
		InitBinary:         "",
		SecurityOptions:    []string{"name=seccomp,profile=builtin"},
		Warnings:           append([]string{}, dc.Warnings...),
	}
	for _, r := range insecure {
		info.RegistryConfig.IndexConfigs[r] = &registry.IndexInfo{Name: r, Secure: false}
	}
	if list, err := e.ContainerList(ctx, ContainerListOptions{All: true}); err == nil {
		for _, c := range list {
			info.Containers++
			switch c.State {
			case containertypes.StateRunning, containertypes.StateRestarting:
				info.ContainersRunning++
			case containertypes.StatePaused:
				info.ContainersPaused++
			default:
				info.ContainersStopped++
			}
		}
	} else if !errors.Is(err, errdefs.ErrUnavailable) {
		return system.Info{}, fmt.Errorf("info: %w", err)
	}
	return info, nil
}

// Version is the Engine's part of /version: what berth is and runs
// on. The API adds ApiVersion and MinAPIVersion, which are its own.
func (e *Engine) Version(ctx context.Context) (system.VersionResponse, error) {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	v := version.Version
	return system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "berth"},
		Version:       v,
		Os:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		GoVersion:     runtime.Version(),
		KernelVersion: unix.ByteSliceToString(uts.Release[:]),
		Components: []system.ComponentVersion{
			{Name: "Engine", Version: v, Details: map[string]string{"GoVersion": runtime.Version(), "Os": runtime.GOOS, "Arch": runtime.GOARCH, "KernelVersion": unix.ByteSliceToString(uts.Release[:])}},
			{Name: "berth-runtime", Version: v},
		},
	}, nil
}

// DiskUsageOptions says which object kinds to report (docker's type=
// query); none means all.
type DiskUsageOptions struct {
	Images, Containers, Volumes, BuildCache bool
}

// DiskUsage is `docker system df`: images with their unpacked sizes, the
// total of distinct layers (shared layers counted once) and what removing
// unused images would free; containers with their writable layers;
// volumes with their sizes and users. The build cache reports empty until
// berth has one.
func (e *Engine) DiskUsage(ctx context.Context, opts DiskUsageOptions) (system.DiskUsage, error) {
	if !opts.Images && !opts.Containers && !opts.Volumes && !opts.BuildCache {
		opts = DiskUsageOptions{Images: true, Containers: true, Volumes: true, BuildCache: true}
	}
	var du system.DiskUsage
	if opts.Images {
		list, err := e.ImageList(ctx, ImageListOptions{})
		if err != nil {
			return du, fmt.Errorf("disk usage: %w", err)
		}
		recs, err := e.images.List(ctx)
		if err != nil {
			return du, fmt.Errorf("disk usage: %w", err)
		}
		// Which images share which layers, so each image's SharedSize
		// counts the layers another image also has.
		users := map[string]int{}
		layerSize := map[string]int64{}
		for _, r := range recs {
			for _, l := range r.Layers {
				users[l.ChainID.String()]++
				layerSize[l.ChainID.String()] = l.Size
			}
		}
		shared := map[string]int64{}
		for _, r := range recs {
			for _, l := range r.Layers {
				if users[l.ChainID.String()] > 1 {
					shared[r.ID.String()] += l.Size
				}
			}
		}
		iu := &imagetypes.DiskUsage{Items: []imagetypes.Summary{}}
		for _, s := range layerSize {
			iu.TotalSize += s
		}
		for _, im := range list.Images {
			refs, err := e.imageUsers(ctx, digest.Digest(im.ID))
			if err != nil {
				return du, fmt.Errorf("disk usage: %w", err)
			}
			im.Containers = int64(len(refs))
			im.SharedSize = shared[im.ID]
			iu.TotalCount++
			if len(refs) > 0 {
				iu.ActiveCount++
			} else {
				iu.Reclaimable += im.Size - im.SharedSize
			}
			iu.Items = append(iu.Items, im)
		}
		du.ImageUsage = iu
	}
	if opts.Containers {
		cu := &containertypes.DiskUsage{Items: []containertypes.Summary{}}
		list, err := e.ContainerList(ctx, ContainerListOptions{All: true, Size: true})
		if err != nil && !errors.Is(err, errdefs.ErrUnavailable) {
			return du, fmt.Errorf("disk usage: %w", err)
		}
		for _, c := range list {
			cu.TotalCount++
			cu.TotalSize += c.SizeRw
			if c.State == containertypes.StateRunning || c.State == containertypes.StatePaused || c.State == containertypes.StateRestarting {
				cu.ActiveCount++
			} else {
				cu.Reclaimable += c.SizeRw
			}
			cu.Items = append(cu.Items, c)
		}
		du.ContainerUsage = cu
	}
	if opts.Volumes {
		vu, err := e.volumesDiskUsage(ctx)
		if err != nil {
			return du, fmt.Errorf("disk usage: %w", err)
		}
		du.VolumeUsage = vu
	}
	// Build cache: nothing yet, reported as empty rather than left out so
	// clients print its zero row.
	if opts.BuildCache {
		du.BuildCacheUsage = &buildtypes.DiskUsage{Items: []buildtypes.CacheRecord{}}
	}
	return du, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func readSysctl(p string) string {
	b, _ := os.ReadFile(p)
	return strings.TrimSpace(string(b))
}

func openFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// cgroupVersion is "2" on a unified-only host and "1" otherwise (hybrid
// hosts run their controllers on v1).
func cgroupVersion() string {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "2"
	}
	return "1"
}

func backingFS(p string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return "unknown"
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "extfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return fmt.Sprintf("0x%x", st.Type)
}

func osRelease(key string) string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

func osName() string {
	if n := osRelease("PRETTY_NAME"); n != "" {
		return n
	}
	return runtime.GOOS
}
