package specgen

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/seccomp"
)

// DefaultPath is the PATH a container gets when neither image nor run
// options set one, as docker does.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultShmSize is docker's /dev/shm size.
const defaultShmSize = 64 << 20

// InitPath is where --init's init binary appears inside the container.
const InitPath = "/sbin/berth-init"

// Input is what Generate needs; see the package doc for what the caller
// resolves first.
type Input struct {
	ID     string
	Image  ocispec.ImageConfig
	Config *container.Config
	Host   *container.HostConfig
	// Rootfs is the absolute path of the container's mounted root.
	Rootfs string
	// User is the resolved process user (LookupUser).
	User specs.User
	// Home is the user's home directory, set as HOME unless the
	// environment already has one.
	Home string
	// Namespaces lists the namespaces the container gets: an empty path
	// makes a new one, a path joins it. A type left out is the host's.
	// Nil means docker's default set (see DefaultNamespaces).
	Namespaces []specs.LinuxNamespace
	// Mounts are the caller's resolved mounts (volumes, binds, tmpfs,
	// /etc/hosts, /etc/resolv.conf, /etc/hostname), added after the
	// default ones; a destination here replaces a default one.
	Mounts []specs.Mount
	// Devices are the --device mappings resolved with HostDevice.
	Devices []specs.LinuxDevice
	// HostDevices is every device of the host, for --privileged.
	HostDevices []specs.LinuxDevice
	// CgroupsPath is where the container's cgroup goes.
	CgroupsPath string
	// InitBinary is the host path of the --init binary, mounted read-only
	// at InitPath when Host.Init is true.
	InitBinary string
	// Kernel is the host's kernel release, for the seccomp profile's
	// kernel-gated rules.
	Kernel string
}

// DefaultNamespaces is docker's default: new pid, ipc, uts, mount and
// network namespaces, and a cgroup namespace when cgroupns is private.
func DefaultNamespaces(privateCgroupns bool) []specs.LinuxNamespace {
	ns := []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace},
		{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.NetworkNamespace}}
	if privateCgroupns {
		ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	return ns
}

// Generate builds the OCI spec for in. Invalid options are
// errdefs.ErrInvalidArgument with docker's wording where it has one.
func Generate(in Input) (*specs.Spec, error) {
	cfg, host := in.Config, in.Host
	if cfg == nil {
		cfg = &container.Config{}
	}
	if host == nil {
		host = &container.HostConfig{}
	}
	args, err := Args(in.Image, cfg)
	if err != nil {
		return nil, err
	}
	if host.Init != nil && *host.Init {
		if in.InitBinary == "" {
			return nil, fmt.Errorf("--init: no init binary configured: %w", errdefs.ErrInvalidArgument)
		}
		args = append([]string{InitPath, "--"}, args...)
	}
	s := &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: in.Rootfs, Readonly: host.ReadonlyRootfs},
		Hostname: cfg.Hostname,
		Process: &specs.Process{
			Terminal: cfg.Tty,
			Args:     args,
			Env:      Env(in.Image, cfg),
			Cwd:      WorkingDir(in.Image, cfg),
			User:     in.User,
			// docker sets only the soft/hard nofile the daemon inherits;
			// containers get exactly what --ulimit says.
			OOMScoreAdj: &host.OomScoreAdj,
		},
		Annotations: maps.Clone(host.Annotations),
		Linux: &specs.Linux{
			CgroupsPath: in.CgroupsPath,
			Sysctl:      maps.Clone(host.Sysctls),
			Namespaces:  in.Namespaces,
		},
	}
	if in.Home != "" && !slices.ContainsFunc(s.Process.Env, func(kv string) bool { return strings.HasPrefix(kv, "HOME=") }) {
		s.Process.Env = append(s.Process.Env, "HOME="+in.Home)
	}
	if cfg.Domainname != "" {
		s.Domainname = cfg.Domainname
	}
	if s.Linux.Namespaces == nil {
		s.Linux.Namespaces = DefaultNamespaces(false)
	}
	// The docker CLI sends the terminal's size at create (API 1.42+), and
	// resizes only after the start: with it in the spec the runtime sizes
	// the pty before the process runs, so `stty size` is right at once.
	// Without a terminal runtimes ignore it (OCI), and a size missing a
	// dimension would give a 0-row or 0-column terminal.
	if cfg.Tty && host.ConsoleSize[0] > 0 && host.ConsoleSize[1] > 0 {
		s.Process.ConsoleSize = &specs.Box{Height: host.ConsoleSize[0], Width: host.ConsoleSize[1]}
	}
	if host.Umask != nil {
		s.Process.User.Umask = host.Umask
	}
	if s.Process.Capabilities, err = Capabilities(host.Privileged, host.CapAdd, host.CapDrop); err != nil {
		return nil, err
	}
	if s.Process.Rlimits, err = rlimits(host.Ulimits); err != nil {
		return nil, err
	}
	if err := security(s, in, host); err != nil {
		return nil, err
	}
	s.Mounts = mounts(in, host)
	if s.Linux.Resources, err = resources(host); err != nil {
		return nil, err
	}
	devices(s, in, host)
	if host.Privileged {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	} else {
		s.Linux.MaskedPaths = pick(host.MaskedPaths, defaultMaskedPaths)
		s.Linux.ReadonlyPaths = pick(host.ReadonlyPaths, defaultReadonlyPaths)
	}
	return s, nil
}

func pick(set, def []string) []string {
	if set != nil {
		return slices.Clone(set)
	}
	return slices.Clone(def)
}

var defaultMaskedPaths = []string{
	"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
	"/sys/devices/virtual/powercap",
}

var defaultReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

// Args is the process's argv as docker computes it: an entrypoint given at
// run time replaces the image's and drops the image's Cmd; otherwise the
// image's entrypoint is followed by the run-time Cmd or else the image's.
func Args(img ocispec.ImageConfig, cfg *container.Config) ([]string, error) {
	var args []string
	switch {
	case cfg.Entrypoint != nil:
		args = append(slices.Clone(cfg.Entrypoint), cfg.Cmd...)
	case len(cfg.Cmd) > 0:
		args = append(slices.Clone(img.Entrypoint), cfg.Cmd...)
	default:
		args = append(slices.Clone(img.Entrypoint), img.Cmd...)
	}
	if len(args) == 0 || args[0] == "" {
		return nil, fmt.Errorf("no command specified: %w", errdefs.ErrInvalidArgument)
	}
	return args, nil
}

// Env merges the image's environment with the run-time one (which wins,
// key by key), adds HOSTNAME, TERM for a tty, and PATH if none is set.
func Env(img ocispec.ImageConfig, cfg *container.Config) []string {
	var keys []string
	vals := map[string]string{}
	set := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = kv
	}
	set("PATH=" + DefaultPath)
	if cfg.Hostname != "" {
		set("HOSTNAME=" + cfg.Hostname)
	}
	if cfg.Tty {
		set("TERM=xterm")
	}
	for _, kv := range img.Env {
		set(kv)
	}
	for _, kv := range cfg.Env {
		if !strings.Contains(kv, "=") {
			continue // "-e NAME" with NAME unset on the client: docker drops it
		}
		set(kv)
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, vals[k])
	}
	return out
}

// WorkingDir is the run-time working dir, else the image's, else "/".
func WorkingDir(img ocispec.ImageConfig, cfg *container.Config) string {
	for _, d := range []string{cfg.WorkingDir, img.WorkingDir} {
		if d != "" {
			return d
		}
	}
	return "/"
}

// User is the user spec to resolve: the run-time one, else the image's.
func User(img ocispec.ImageConfig, cfg *container.Config) string {
	if cfg.User != "" {
		return cfg.User
	}
	return img.User
}

func rlimits(ulimits []*container.Ulimit) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	for _, u := range ulimits {
		name := "RLIMIT_" + strings.ToUpper(u.Name)
		if !slices.Contains(rlimitNames, name) {
			return nil, fmt.Errorf("invalid ulimit type: %s: %w", u.Name, errdefs.ErrInvalidArgument)
		}
		if u.Soft > u.Hard {
			return nil, fmt.Errorf("ulimit soft limit must be less than or equal to hard limit: %d > %d: %w", u.Soft, u.Hard, errdefs.ErrInvalidArgument)
		}
		out = append(out, specs.POSIXRlimit{Type: name, Hard: uint64(u.Hard), Soft: uint64(u.Soft)})
	}
	return out, nil
}

var rlimitNames = []string{"RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS",
	"RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_RSS",
	"RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK"}

// security applies --security-opt and --privileged: no-new-privileges,
// seccomp=unconfined|<profile JSON>, and a clear refusal of LSM labels this
// host cannot enforce.
func security(s *specs.Spec, in Input, host *container.HostConfig) error {
	profile := ""
	for _, opt := range host.SecurityOpt {
		k, v, hasValue := strings.Cut(opt, "=")
		if !hasValue {
			k, v, _ = strings.Cut(opt, ":") // docker's older "key:value" form
		}
		switch k {
		case "no-new-privileges":
			b := true
			if v != "" {
				var err error
				if b, err = strconv.ParseBool(v); err != nil {
					return fmt.Errorf("invalid --security-opt %q: %w", opt, errdefs.ErrInvalidArgument)
				}
			}
			s.Process.NoNewPrivileges = b
		case "seccomp":
			profile = v
		case "apparmor":
			if v != "unconfined" {
				return fmt.Errorf("--security-opt %s: AppArmor is not supported by berth on this host: %w", opt, errdefs.ErrInvalidArgument)
			}
		case "label":
			if v != "disable" {
				return fmt.Errorf("--security-opt %s: SELinux labels are not supported by berth on this host: %w", opt, errdefs.ErrInvalidArgument)
			}
		case "systempaths":
			if v != "unconfined" {
				return fmt.Errorf("invalid --security-opt %q: %w", opt, errdefs.ErrInvalidArgument)
			}
			host.MaskedPaths, host.ReadonlyPaths = []string{}, []string{}
		default:
			return fmt.Errorf("invalid --security-opt %q: %w", opt, errdefs.ErrInvalidArgument)
		}
	}
	if host.Privileged || profile == "unconfined" {
		return nil
	}
	if profile != "" && profile != "builtin" {
		p, err := seccomp.ParseProfile([]byte(profile))
		if err != nil {
			return fmt.Errorf("--security-opt seccomp: %w", err)
		}
		return useProfile(s, p, in.Kernel)
	}
	return useProfile(s, seccomp.DefaultProfile(), in.Kernel)
}

func useProfile(s *specs.Spec, p *seccomp.Profile, kernel string) error {
	var caps []string
	if c := s.Process.Capabilities; c != nil {
		caps = c.Bounding
	}
	sc, err := p.Spec(seccomp.ProfileOptions{Caps: caps, Kernel: kernel})
	if err != nil {
		return fmt.Errorf("seccomp profile: %w", err)
	}
	s.Linux.Seccomp = sc
	return nil
}
