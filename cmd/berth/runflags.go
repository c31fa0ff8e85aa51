package main

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

// createFlags are docker run's and create's flags.
type createFlags struct {
	name, workdir, user, entrypoint, hostname, stopSignal, restart, netMode string
	platform, pull, memory, memorySwap, shmSize, cpus, cpusetCpus           string
	healthCmd                                                               string
	healthInterval, healthTimeout, healthStartPeriod                        time.Duration
	healthRetries, stopTimeout                                              int
	noHealthcheck                                                           bool
	env, envFile, labels, volumes, mounts, tmpfs, capAdd, capDrop           []string
	securityOpt, ulimits, sysctls, groupAdd, devices, publish, dns          []string
	dnsSearch, dnsOption, addHost, logOpt, expose                           []string
	logDriver                                                               string
	interactive, tty, readOnly, privileged, init, publishAll                bool
	cpuShares, cpuQuota, cpuPeriod, pidsLimit                               int64
	blkioWeight                                                             uint16
}

func (f *createFlags) register(fl *pflag.FlagSet) {
	fl.SetInterspersed(false) // flags after the image belong to the command
	// -h is --hostname, as docker's; help is --help only.
	fl.Bool("help", false, "print usage")
	fl.StringVar(&f.name, "name", "", "assign a name to the container")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVarP(&f.user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "overwrite the default ENTRYPOINT of the image")
	fl.StringVarP(&f.hostname, "hostname", "h", "", "container host name")
	fl.StringVar(&f.stopSignal, "stop-signal", "", "signal to stop the container")
	fl.IntVar(&f.stopTimeout, "stop-timeout", -1, "timeout (in seconds) to stop a container")
	fl.StringVar(&f.restart, "restart", "no", "restart policy to apply when a container exits")
	fl.StringVar(&f.netMode, "network", "", "connect a container to a network")
	fl.StringVar(&f.netMode, "net", "", "connect a container to a network")
	_ = fl.MarkHidden("net")
	fl.StringVar(&f.platform, "platform", "", "set platform if server is multi-platform capable")
	fl.StringVar(&f.pull, "pull", "missing", `pull image before running ("always", "missing", "never")`)
	fl.StringVarP(&f.memory, "memory", "m", "", "memory limit")
	fl.StringVar(&f.memorySwap, "memory-swap", "", "swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fl.StringVar(&f.shmSize, "shm-size", "", "size of /dev/shm")
	fl.StringVar(&f.cpus, "cpus", "", "number of CPUs")
	fl.StringVar(&f.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fl.Int64VarP(&f.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fl.Int64Var(&f.cpuQuota, "cpu-quota", 0, "limit CPU CFS (Completely Fair Scheduler) quota")
	fl.Int64Var(&f.cpuPeriod, "cpu-period", 0, "limit CPU CFS (Completely Fair Scheduler) period")
	fl.Int64Var(&f.pidsLimit, "pids-limit", 0, "tune container pids limit (set -1 for unlimited)")
	fl.Uint16Var(&f.blkioWeight, "blkio-weight", 0, "block IO (relative weight), between 10 and 1000, or 0 to disable")
	fl.StringVar(&f.healthCmd, "health-cmd", "", "command to run to check health")
	fl.DurationVar(&f.healthInterval, "health-interval", 0, "time between running the check (ms|s|m|h)")
	fl.DurationVar(&f.healthTimeout, "health-timeout", 0, "maximum time to allow one check to run (ms|s|m|h)")
	fl.DurationVar(&f.healthStartPeriod, "health-start-period", 0, "start period for the container to initialize before starting health-retries countdown (ms|s|m|h)")
	fl.IntVar(&f.healthRetries, "health-retries", 0, "consecutive failures needed to report unhealthy")
	fl.BoolVar(&f.noHealthcheck, "no-healthcheck", false, "disable any container-specified HEALTHCHECK")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set environment variables")
	fl.StringArrayVar(&f.envFile, "env-file", nil, "read in a file of environment variables")
	fl.StringArrayVarP(&f.labels, "label", "l", nil, "set meta data on a container")
	fl.StringArrayVarP(&f.volumes, "volume", "v", nil, "bind mount a volume")
	fl.StringArrayVar(&f.mounts, "mount", nil, "attach a filesystem mount to the container")
	fl.StringArrayVar(&f.tmpfs, "tmpfs", nil, "mount a tmpfs directory")
	fl.StringArrayVar(&f.capAdd, "cap-add", nil, "add Linux capabilities")
	fl.StringArrayVar(&f.capDrop, "cap-drop", nil, "drop Linux capabilities")
	fl.StringArrayVar(&f.securityOpt, "security-opt", nil, "security options")
	fl.StringArrayVar(&f.ulimits, "ulimit", nil, "ulimit options")
	fl.StringArrayVar(&f.sysctls, "sysctl", nil, "sysctl options")
	fl.StringArrayVar(&f.groupAdd, "group-add", nil, "add additional groups to join")
	fl.StringArrayVar(&f.devices, "device", nil, "add a host device to the container")
	fl.StringArrayVarP(&f.publish, "publish", "p", nil, "publish a container's port(s) to the host")
	fl.StringArrayVar(&f.expose, "expose", nil, "expose a port or a range of ports")
	fl.StringArrayVar(&f.dns, "dns", nil, "set custom DNS servers")
	fl.StringArrayVar(&f.dnsSearch, "dns-search", nil, "set custom DNS search domains")
	fl.StringArrayVar(&f.dnsOption, "dns-option", nil, "set DNS options")
	fl.StringArrayVar(&f.addHost, "add-host", nil, "add a custom host-to-IP mapping (host:ip)")
	fl.StringVar(&f.logDriver, "log-driver", "", "logging driver for the container")
	fl.StringArrayVar(&f.logOpt, "log-opt", nil, "log driver options")
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	fl.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-TTY")
	fl.BoolVar(&f.readOnly, "read-only", false, "mount the container's root filesystem as read only")
	fl.BoolVar(&f.privileged, "privileged", false, "give extended privileges to this container")
	fl.BoolVar(&f.init, "init", false, "run an init inside the container that forwards signals and reaps processes")
	fl.BoolVarP(&f.publishAll, "publish-all", "P", false, "publish all exposed ports to random ports")
}

// request builds the create request for image and command. Every
// malformed value is refused here, before the daemon sees anything.
func (f *createFlags) request(fl *pflag.FlagSet, image string, cmd []string) (container.CreateRequest, error) {
	cfg := &container.Config{
		Image: image, Cmd: cmd, Hostname: f.hostname, User: f.user, WorkingDir: f.workdir,
		Tty: f.tty, OpenStdin: f.interactive, StdinOnce: f.interactive, StopSignal: f.stopSignal,
		AttachStdin: f.interactive,
	}
	hc := &container.HostConfig{
		ReadonlyRootfs: f.readOnly, Privileged: f.privileged, CapAdd: f.capAdd, CapDrop: f.capDrop,
		SecurityOpt: f.securityOpt, GroupAdd: f.groupAdd, PublishAllPorts: f.publishAll,
		DNSSearch: f.dnsSearch, DNSOptions: f.dnsOption, ExtraHosts: f.addHost,
		NetworkMode: container.NetworkMode(f.netMode),
	}
	if f.init {
		t := true
		hc.Init = &t
	}
	if fl.Changed("stop-timeout") {
		t := f.stopTimeout
		cfg.StopTimeout = &t
	}
	if fl.Changed("entrypoint") {
		cfg.Entrypoint = []string{}
		if f.entrypoint != "" {
			cfg.Entrypoint = []string{f.entrypoint}
		}
	}
	// Environment: files first, then -e, as docker merges them.
	for _, path := range f.envFile {
		vars, err := readEnvFile(path)
		if err != nil {
			return container.CreateRequest{}, err
		}
		cfg.Env = append(cfg.Env, vars...)
	}
	for _, e := range f.env {
		cfg.Env = append(cfg.Env, expandEnv(e)...)
	}
	if len(f.labels) > 0 {
		cfg.Labels = map[string]string{}
		for _, l := range f.labels {
			k, v, _ := strings.Cut(l, "=")
			cfg.Labels[k] = v
		}
	}
	for _, v := range f.volumes {
		parts := strings.Split(v, ":")
		if len(parts) == 1 {
			if !strings.HasPrefix(v, "/") {
				return container.CreateRequest{}, usageErr("invalid volume specification: %q", v)
			}
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[v] = struct{}{}
			continue
		}
		if len(parts) > 3 || parts[0] == "" || !strings.HasPrefix(parts[1], "/") {
			return container.CreateRequest{}, usageErr("invalid volume specification: %q", v)
		}
		hc.Binds = append(hc.Binds, v)
	}
	for _, m := range f.mounts {
		mt, err := parseMount(m)
		if err != nil {
			return container.CreateRequest{}, err
		}
		hc.Mounts = append(hc.Mounts, mt)
	}
	for _, t := range f.tmpfs {
		if hc.Tmpfs == nil {
			hc.Tmpfs = map[string]string{}
		}
		dst, opts, _ := strings.Cut(t, ":")
		if !strings.HasPrefix(dst, "/") {
			return container.CreateRequest{}, usageErr("invalid tmpfs mount: %q: the path must be absolute", t)
		}
		hc.Tmpfs[dst] = opts
	}
	for _, u := range f.ulimits {
		ul, err := units.ParseUlimit(u)
		if err != nil {
			return container.CreateRequest{}, usageErr("invalid argument %q for \"--ulimit\" flag: %v", u, err)
		}
		hc.Ulimits = append(hc.Ulimits, ul)
	}
	for _, s := range f.sysctls {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return container.CreateRequest{}, usageErr("invalid argument %q for \"--sysctl\" flag: want key=value", s)
		}
		if hc.Sysctls == nil {
			hc.Sysctls = map[string]string{}
		}
		hc.Sysctls[k] = v
	}
	var err error
	size := func(flag, v string, allowNeg bool) int64 {
		if v == "" || err != nil {
			return 0
		}
		if allowNeg && v == "-1" {
			return -1
		}
		n, perr := units.RAMInBytes(v)
		if perr != nil {
			err = usageErr("invalid argument %q for %q flag: %v", v, "--"+flag, perr)
		}
		return n
	}
	hc.Memory = size("memory", f.memory, false)
	hc.MemorySwap = size("memory-swap", f.memorySwap, true)
	hc.ShmSize = size("shm-size", f.shmSize, false)
	if err != nil {
		return container.CreateRequest{}, err
	}
	if f.cpus != "" {
		c, perr := strconv.ParseFloat(f.cpus, 64)
		if perr != nil || c < 0 {
			return container.CreateRequest{}, usageErr("invalid argument %q for \"--cpus\" flag: want a number of CPUs", f.cpus)
		}
		hc.NanoCPUs = int64(c * 1e9)
	}
	hc.CPUShares, hc.CPUQuota, hc.CPUPeriod, hc.CpusetCpus, hc.BlkioWeight = f.cpuShares, f.cpuQuota, f.cpuPeriod, f.cpusetCpus, f.blkioWeight
	if fl.Changed("pids-limit") {
		p := f.pidsLimit
		hc.PidsLimit = &p
	}
	for _, d := range f.devices {
		parts := strings.Split(d, ":")
		dm := container.DeviceMapping{PathOnHost: parts[0], PathInContainer: parts[0], CgroupPermissions: "rwm"}
		switch len(parts) {
		case 1:
		case 2:
			if strings.HasPrefix(parts[1], "/") {
				dm.PathInContainer = parts[1]
			} else {
				dm.CgroupPermissions = parts[1]
			}
		case 3:
			dm.PathInContainer, dm.CgroupPermissions = parts[1], parts[2]
		default:
			return container.CreateRequest{}, usageErr("invalid device specification: %s", d)
		}
		hc.Devices = append(hc.Devices, dm)
	}
	for _, d := range f.dns {
		a, perr := netip.ParseAddr(d)
		if perr != nil {
			return container.CreateRequest{}, usageErr("%s is not an ip address", d)
		}
		hc.DNS = append(hc.DNS, a)
	}
	if err := f.ports(cfg, hc); err != nil {
		return container.CreateRequest{}, err
	}
	if f.logDriver != "" || len(f.logOpt) > 0 {
		hc.LogConfig.Type = f.logDriver
		hc.LogConfig.Config = map[string]string{}
		for _, o := range f.logOpt {
			k, v, ok := strings.Cut(o, "=")
			if !ok {
				return container.CreateRequest{}, usageErr("invalid key/value pair format in logging opts: %s", o)
			}
			hc.LogConfig.Config[k] = v
		}
	}
	rp, err := parseRestart(f.restart)
	if err != nil {
		return container.CreateRequest{}, err
	}
	hc.RestartPolicy = rp
	if hc.RestartPolicy.Name != container.RestartPolicyDisabled && hc.RestartPolicy.Name != "" && fl.Changed("rm") {
		if rm, _ := fl.GetBool("rm"); rm {
			return container.CreateRequest{}, usageErr("conflicting options: cannot specify both --restart and --rm")
		}
	}
	if f.noHealthcheck {
		cfg.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
	} else if f.healthCmd != "" || f.healthInterval != 0 || f.healthTimeout != 0 || f.healthRetries != 0 || f.healthStartPeriod != 0 {
		hcfg := &container.HealthConfig{Interval: f.healthInterval, Timeout: f.healthTimeout, StartPeriod: f.healthStartPeriod, Retries: f.healthRetries}
		if f.healthCmd != "" {
			hcfg.Test = []string{"CMD-SHELL", f.healthCmd}
		}
		cfg.Healthcheck = hcfg
	}
	return container.CreateRequest{Config: cfg, HostConfig: hc, NetworkingConfig: &network.NetworkingConfig{}}, nil
}

// ports turns -p and --expose into exposed ports and bindings:
// [ip:][hostPort:]containerPort[/proto], ranges included.
func (f *createFlags) ports(cfg *container.Config, hc *container.HostConfig) error {
	expose := func(p network.Port) {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		cfg.ExposedPorts[p] = struct{}{}
	}
	for _, e := range f.expose {
		r, err := network.ParsePortRange(withProto(e))
		if err != nil {
			return usageErr("invalid range format for --expose: %s", e)
		}
		for p := range r.All() {
			expose(p)
		}
	}
	for _, spec := range f.publish {
		ip, hostPort, ctrPort := "", "", spec
		if i := strings.LastIndex(spec, ":"); i >= 0 {
			ctrPort = spec[i+1:]
			rest := spec[:i]
			if j := strings.LastIndex(rest, ":"); j >= 0 {
				ip, hostPort = strings.Trim(rest[:j], "[]"), rest[j+1:]
			} else {
				hostPort = rest
			}
		}
		r, err := network.ParsePortRange(withProto(ctrPort))
		if err != nil {
			return usageErr("invalid containerPort: %s", ctrPort)
		}
		var addr netip.Addr
		if ip != "" {
			if addr, err = netip.ParseAddr(ip); err != nil {
				return usageErr("invalid IP address: %s", ip)
			}
		}
		if hc.PortBindings == nil {
			hc.PortBindings = network.PortMap{}
		}
		var hostStart, hostEnd int
		if hostPort != "" {
			lo, hi, isRange := strings.Cut(hostPort, "-")
			if hostStart, err = strconv.Atoi(lo); err != nil {
				return usageErr("invalid hostPort: %s", hostPort)
			}
			hostEnd = hostStart
			if isRange {
				if hostEnd, err = strconv.Atoi(hi); err != nil {
					return usageErr("invalid hostPort: %s", hostPort)
				}
			}
		}
		i := 0
		for p := range r.All() {
			expose(p)
			b := network.PortBinding{HostIP: addr}
			switch {
			case hostPort == "":
			case hostEnd > hostStart && int(r.End()-r.Start()) == hostEnd-hostStart:
				b.HostPort = strconv.Itoa(hostStart + i)
			default:
				b.HostPort = hostPort
			}
			hc.PortBindings[p] = append(hc.PortBindings[p], b)
			i++
		}
	}
	return nil
}

func withProto(p string) string {
	if !strings.Contains(p, "/") {
		return p + "/tcp"
	}
	return p
}

func parseRestart(s string) (container.RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	rp := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	switch rp.Name {
	case "", container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if hasCount {
			return rp, usageErr("maximum retry count cannot be used with restart policy '%s'", name)
		}
	case container.RestartPolicyOnFailure:
		if hasCount {
			n, err := strconv.Atoi(count)
			if err != nil || n < 0 {
				return rp, usageErr("invalid restart policy format: maximum retry count must be a positive integer")
			}
			rp.MaximumRetryCount = n
		}
	default:
		return rp, usageErr("invalid restart policy format: %s", s)
	}
	return rp, nil
}

// parseMount reads --mount's comma-separated key=value list.
func parseMount(s string) (mount.Mount, error) {
	m := mount.Mount{Type: mount.TypeVolume}
	for _, field := range strings.Split(s, ",") {
		k, v, hasValue := strings.Cut(field, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		switch k {
		case "type":
			m.Type = mount.Type(v)
		case "source", "src":
			m.Source = v
		case "target", "destination", "dst":
			m.Target = v
		case "readonly", "ro":
			m.ReadOnly = !hasValue || v == "true" || v == "1"
		case "bind-propagation":
			if m.BindOptions == nil {
				m.BindOptions = &mount.BindOptions{}
			}
			m.BindOptions.Propagation = mount.Propagation(v)
		case "tmpfs-size":
			n, err := units.RAMInBytes(v)
			if err != nil {
				return m, usageErr("invalid value for %s: %s", k, v)
			}
			if m.TmpfsOptions == nil {
				m.TmpfsOptions = &mount.TmpfsOptions{}
			}
			m.TmpfsOptions.SizeBytes = n
		case "tmpfs-mode":
			n, err := strconv.ParseUint(v, 8, 32)
			if err != nil {
				return m, usageErr("invalid value for %s: %s", k, v)
			}
			if m.TmpfsOptions == nil {
				m.TmpfsOptions = &mount.TmpfsOptions{}
			}
			m.TmpfsOptions.Mode = os.FileMode(n)
		default:
			return m, usageErr("invalid field %q in --mount %s", k, s)
		}
	}
	if m.Target == "" {
		return m, usageErr("invalid argument %q for \"--mount\" flag: target is required", s)
	}
	return m, nil
}

// readEnvFile reads docker's env file: KEY=value lines, # comments, and
// bare KEY taken from our environment.
func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, localError{fmt.Errorf("env file: %w", err)}
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, expandEnv(line)...)
	}
	return out, sc.Err()
}

// expandEnv gives KEY=value as is, and a bare KEY the value it has here
// (nothing when unset), as docker does.
func expandEnv(e string) []string {
	if strings.Contains(e, "=") {
		return []string{e}
	}
	if v, ok := os.LookupEnv(e); ok {
		return []string{e + "=" + v}
	}
	return nil
}
