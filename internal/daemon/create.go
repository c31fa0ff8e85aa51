package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	containertypes "github.com/moby/moby/api/types/container"
	evtypes "github.com/moby/moby/api/types/events"
	mounttypes "github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/cleanup"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/specgen"
	"github.com/berth-dev/berth/internal/volume"
)

// ContainerCreateOptions are docker create's: POST /containers/create.
type ContainerCreateOptions struct {
	Name             string // "" generates one
	Platform         string
	Config           *containertypes.Config
	HostConfig       *containertypes.HostConfig
	NetworkingConfig *network.NetworkingConfig
}

// ContainerCreateResult names the new container.
type ContainerCreateResult struct {
	ID       string
	Warnings []string
}

// ContainerCreate makes a container: it resolves the image (never pulls:
// the client does), prepares a writable layer on it, creates the volumes
// it needs, writes its /etc/hostname, /etc/hosts and /etc/resolv.conf,
// and records it. The OCI spec is built at start, when the root
// filesystem is mounted anyway. Bad options fail here, with nothing left
// behind.
//
// Networking: with networking on (InitNetworks), the default mode is the
// default bridge network, recorded as "bridge" as docker does; without it,
// none.
func (e *Engine) ContainerCreate(ctx context.Context, opts ContainerCreateOptions) (_ ContainerCreateResult, retErr error) {
	c, err := e.ctrs()
	if err != nil {
		return ContainerCreateResult{}, err
	}
	if opts.Config == nil {
		return ContainerCreateResult{}, fmt.Errorf("config cannot be empty in order to create a container: %w", errdefs.ErrInvalidArgument)
	}
	cfg := *opts.Config
	host := containertypes.HostConfig{}
	if opts.HostConfig != nil {
		host = *opts.HostConfig
	}
	var warnings []string
	if err := checkHostConfig(&host, &warnings); err != nil {
		return ContainerCreateResult{}, err
	}
	if err := e.checkNetwork(&host, &warnings); err != nil {
		return ContainerCreateResult{}, err
	}
	if opts.Name != "" {
		if err := container.CheckName(opts.Name); err != nil {
			return ContainerCreateResult{}, err
		}
		if !c.store.FreeName(opts.Name) {
			// Before any work: Add checks again, atomically.
			if other, err := c.store.Get(opts.Name); err == nil {
				return ContainerCreateResult{}, fmt.Errorf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name: %w", opts.Name, other.ID(), errdefs.ErrConflict) //nolint:staticcheck // docker's words
			}
		}
	}
	if cfg.Image == "" {
		return ContainerCreateResult{}, fmt.Errorf("no image specified: %w", errdefs.ErrInvalidArgument)
	}
	img, err := e.images.Lookup(ctx, cfg.Image)
	if err != nil {
		return ContainerCreateResult{}, err
	}
	icfg, err := e.config(ctx, img)
	if err != nil {
		return ContainerCreateResult{}, err
	}
	if opts.Platform != "" {
		p, err := image.ParsePlatform(opts.Platform)
		if err != nil {
			return ContainerCreateResult{}, err
		}
		if p.OS != icfg.OS || p.Architecture != "" && p.Architecture != icfg.Architecture {
			return ContainerCreateResult{}, fmt.Errorf("image with reference %s was found but does not provide the specified platform (%s): %w", cfg.Image, opts.Platform, errdefs.ErrNotFound)
		}
	}
	id := container.NewID()
	mergeImageConfig(&cfg, icfg.Config.ImageConfig)
	mergeHealthcheck(&cfg, icfg.Config.Healthcheck)
	if cfg.Hostname == "" {
		cfg.Hostname = id[:12]
		if netMode(&host) == "host" {
			cfg.Hostname, _ = os.Hostname()
		}
	}
	args, err := specgen.Args(ocispec.ImageConfig{}, &cfg)
	if err != nil {
		return ContainerCreateResult{}, err
	}
	// Check every option specgen checks now rather than at start:
	// docker refuses a bad create.
	probe := host
	if _, err := specgen.Generate(specgen.Input{ID: id, Config: &cfg, Host: &probe, Rootfs: "/", InitBinary: "/probe"}); err != nil {
		return ContainerCreateResult{}, err
	}

	name := opts.Name
	if name == "" {
		for i := 0; ; i++ {
			name = container.GenerateName(i / 3)
			if c.store.FreeName(name) {
				break
			}
		}
	}
	if err := e.checkLinks(&host, name); err != nil {
		return ContainerCreateResult{}, err
	}
	var undo cleanup.Stack
	defer undo.Unwind()
	dir := c.store.Dir(id)
	if err := os.MkdirAll(dir, 0o710); err != nil {
		return ContainerCreateResult{}, fmt.Errorf("create container: %w", err)
	}
	undo.Push(func() { os.RemoveAll(dir) })
	key := snapshotKey(id)
	parent := ""
	if ids := img.ChainIDs(); len(ids) > 0 {
		parent = ids[len(ids)-1].String()
	}
	if _, err := e.snaps.Prepare(ctx, key, parent); err != nil {
		return ContainerCreateResult{}, fmt.Errorf("create container: %w", err)
	}
	undo.Push(func() {
		if err := e.snaps.Remove(context.WithoutCancel(ctx), key); err != nil {
			log.From(ctx).Warn("create: remove snapshot after failure; it may stay", log.KeySnapshot, key, log.KeyErr, err)
		}
	})
	mps, anon, copyUp, err := e.resolveMounts(ctx, c, &cfg, &host)
	for _, v := range anon {
		undo.Push(func() { _ = c.vols.Remove(v) })
	}
	if err != nil {
		return ContainerCreateResult{}, err
	}
	rec := container.Record{
		ID: id, Name: name, Created: time.Now().UTC(),
		Path: args[0], Args: args[1:],
		Image: img.ID.String(), ImageName: cfg.Image, Platform: icfg.OS,
		Config: &cfg, HostConfig: &host,
		State:       container.State{Status: container.Created},
		SnapshotKey: key, Driver: e.driver,
		Mounts: mps, AnonymousVolumes: anon, CopyUp: copyUp,
	}
	if opts.NetworkingConfig != nil {
		rec.Endpoints = opts.NetworkingConfig.EndpointsConfig
	}
	if err := writeEtcFiles(c, &rec); err != nil {
		return ContainerCreateResult{}, err
	}
	if lc := host.LogConfig; lc.Type == "" || lc.Type == "json-file" {
		rec.LogPath = filepath.Join(dir, id+"-json.log")
	}
	if cfg.Healthcheck != nil && len(cfg.Healthcheck.Test) > 0 && cfg.Healthcheck.Test[0] != "NONE" {
		rec.State.Health = &containertypes.Health{Status: containertypes.Starting}
	}
	if _, err := c.store.Add(rec); err != nil {
		return ContainerCreateResult{}, err
	}
	undo.Disarm()
	e.emitContainer(ctx, evtypes.ActionCreate, &rec, nil)
	return ContainerCreateResult{ID: id, Warnings: warnings}, nil
}

// netMode is the container's network mode as far as namespaces and /etc
// files go: host and container:<id> share another's; anything else gets
// a namespace of its own ("none" here; a network of ours, if any, is
// attached at start by prepareNetwork).
func netMode(h *containertypes.HostConfig) string {
	switch m := string(h.NetworkMode); m {
	case "", "default", "bridge", "none":
		return "none"
	default:
		return m
	}
}

// checkNetwork checks the network mode: none, host and container:<x>
// always work; a network name must exist. Without networking on this
// engine (InitNetworks not called) the default mode is none.
func (e *Engine) checkNetwork(h *containertypes.HostConfig, warnings *[]string) error {
	m := string(h.NetworkMode)
	switch {
	case m == "none", m == "host":
		return nil
	case strings.HasPrefix(m, "container:"):
		if strings.TrimPrefix(m, "container:") == "" {
			return fmt.Errorf("invalid network mode %q: %w", m, errdefs.ErrInvalidArgument)
		}
		return nil
	}
	mgr, err := e.netManager()
	if err != nil {
		switch m {
		case "", "default":
			return nil
		case "bridge":
			*warnings = append(*warnings, "networking is not enabled on this daemon: the container gets no network (as --network none)")
			return nil
		}
		return fmt.Errorf("network %s not found: %w", m, errdefs.ErrNotFound)
	}
	if m == "" || m == "default" {
		h.NetworkMode = "bridge"
	}
	name, _ := bridgeMode(h.NetworkMode)
	if _, err := mgr.Inspect(name); err != nil {
		return fmt.Errorf("network %s not found: %w", m, errdefs.ErrNotFound)
	}
	return nil
}

// checkHostConfig refuses what docker refuses at create and fills in
// docker's defaults.
func checkHostConfig(h *containertypes.HostConfig, warnings *[]string) error {
	if err := containertypes.ValidateRestartPolicy(h.RestartPolicy); err != nil {
		return fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
	}
	if h.AutoRemove && !h.RestartPolicy.IsNone() {
		return fmt.Errorf("can't create 'AutoRemove' container with restart policy: %w", errdefs.ErrInvalidArgument)
	}
	for _, k := range []string{string(h.PidMode), string(h.IpcMode), string(h.UTSMode)} {
		if strings.HasPrefix(k, "container:") && strings.TrimPrefix(k, "container:") == "" {
			return fmt.Errorf("invalid namespace mode %q: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	if h.LogConfig.Type == "" {
		h.LogConfig.Type = "json-file" // shown by inspect; docker-py reads it
	}
	switch t := h.LogConfig.Type; t {
	case "json-file", "none":
	default:
		return fmt.Errorf("logging driver %q is not supported (json-file or none): %w", t, errdefs.ErrInvalidArgument)
	}
	if _, _, err := logRotation(h.LogConfig.Config, 0, 0); err != nil {
		return err
	}
	return nil
}

// mergeImageConfig fills the run configuration from the image's, as
// docker does at create: what inspect then shows is what runs.
func mergeImageConfig(cfg *containertypes.Config, img ocispec.ImageConfig) {
	if cfg.User == "" {
		cfg.User = img.User
	}
	if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
		// --entrypoint "": no entrypoint, and the image's Cmd does not
		// apply either.
		cfg.Entrypoint = []string{}
	} else if cfg.Entrypoint == nil {
		cfg.Entrypoint = slices.Clone(img.Entrypoint)
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = slices.Clone(img.Cmd)
		}
	}
	cfg.Env = mergeEnv(img.Env, cfg.Env)
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = img.WorkingDir
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = img.StopSignal
	}
	if len(img.Labels) > 0 {
		l := maps.Clone(img.Labels)
		maps.Copy(l, cfg.Labels)
		cfg.Labels = l
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	for v := range img.Volumes {
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		cfg.Volumes[v] = struct{}{}
	}
	for p := range img.ExposedPorts {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		if port, err := network.ParsePort(p); err == nil {
			cfg.ExposedPorts[port] = struct{}{}
		}
	}
}

// mergeHealthcheck takes the image's healthcheck where the run options
// leave it (or some of its fields) unset.
func mergeHealthcheck(cfg *containertypes.Config, img *dockerspec.HealthcheckConfig) {
	if img == nil {
		return
	}
	if cfg.Healthcheck == nil {
		cfg.Healthcheck = &containertypes.HealthConfig{}
	}
	h := cfg.Healthcheck
	if len(h.Test) == 0 {
		h.Test = slices.Clone(img.Test)
	}
	if h.Interval == 0 {
		h.Interval = img.Interval
	}
	if h.Timeout == 0 {
		h.Timeout = img.Timeout
	}
	if h.StartPeriod == 0 {
		h.StartPeriod = img.StartPeriod
	}
	if h.StartInterval == 0 {
		h.StartInterval = img.StartInterval
	}
	if h.Retries == 0 {
		h.Retries = img.Retries
	}
}

// mergeEnv is the image's environment with the run-time one over it, key
// by key, in first-seen order.
func mergeEnv(img, run []string) []string {
	out := slices.Clone(img)
	for _, kv := range run {
		k, _, _ := strings.Cut(kv, "=")
		i := slices.IndexFunc(out, func(o string) bool { ok, _, _ := strings.Cut(o, "="); return ok == k })
		if i >= 0 {
			out[i] = kv
		} else {
			out = append(out, kv)
		}
	}
	return out
}

// resolveMounts turns -v binds, --mount and the image's VOLUME entries
// into the container's mount points, creating the volumes they name (and
// anonymous ones). It returns the anonymous volumes it made, also on
// error, for the caller to remove.
func (e *Engine) resolveMounts(ctx context.Context, c *ctrs, cfg *containertypes.Config, host *containertypes.HostConfig) (out []containertypes.MountPoint, anon, copyUp []string, err error) {
	taken := map[string]bool{}
	add := func(mp containertypes.MountPoint) error {
		if !path.IsAbs(mp.Destination) {
			return fmt.Errorf("invalid mount config: mount path must be absolute: %s: %w", mp.Destination, errdefs.ErrInvalidArgument)
		}
		mp.Destination = path.Clean(mp.Destination)
		if mp.Destination == "/" {
			return fmt.Errorf("invalid specification: destination can't be '/': %w", errdefs.ErrInvalidArgument)
		}
		if taken[mp.Destination] {
			return fmt.Errorf("Duplicate mount point: %s: %w", mp.Destination, errdefs.ErrInvalidArgument) //nolint:staticcheck // docker's words
		}
		taken[mp.Destination] = true
		out = append(out, mp)
		return nil
	}
	vol := func(name string, labels map[string]string, dst string, nocopy bool) (volume.Volume, error) {
		v, created, err := c.vols.Create(ctx, volume.CreateOptions{Name: name, Labels: labels})
		if err == nil && created && !nocopy {
			copyUp = append(copyUp, path.Clean(dst))
		}
		if err == nil && created && v.Anonymous {
			anon = append(anon, v.Name)
		}
		if err == nil && created {
			e.Emit(ctx, evtypes.VolumeEventType, evtypes.ActionCreate, v.Name, map[string]string{"driver": volume.Driver})
		}
		return v, err
	}
	for _, b := range host.Binds {
		mp, err := parseBind(b)
		if err != nil {
			return out, anon, copyUp, err
		}
		if mp.Type == mounttypes.TypeVolume {
			v, err := vol(mp.Name, nil, mp.Destination, slices.Contains(strings.Split(mp.Mode, ","), "nocopy"))
			if err != nil {
				return out, anon, copyUp, err
			}
			mp.Name, mp.Source, mp.Driver = v.Name, v.Mountpoint, volume.Driver
		} else if _, err := os.Stat(mp.Source); errors.Is(err, os.ErrNotExist) {
			// -v creates a missing host directory, as docker does.
			if err := os.MkdirAll(mp.Source, 0o755); err != nil {
				return out, anon, copyUp, fmt.Errorf("create bind source %s: %w", mp.Source, err)
			}
		}
		if err := add(mp); err != nil {
			return out, anon, copyUp, err
		}
	}
	for _, m := range host.Mounts {
		mp := containertypes.MountPoint{Type: m.Type, Destination: m.Target, RW: !m.ReadOnly, Source: m.Source}
		switch m.Type {
		case mounttypes.TypeBind:
			if !filepath.IsAbs(m.Source) {
				return out, anon, copyUp, fmt.Errorf("invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute: %w", m.Source, errdefs.ErrInvalidArgument)
			}
			if _, err := os.Stat(m.Source); err != nil {
				return out, anon, copyUp, fmt.Errorf("invalid mount config for type \"bind\": bind source path does not exist: %s: %w", m.Source, errdefs.ErrInvalidArgument)
			}
			mp.Propagation = mounttypes.PropagationRPrivate
			if m.BindOptions != nil && m.BindOptions.Propagation != "" {
				mp.Propagation = m.BindOptions.Propagation
			}
		case mounttypes.TypeVolume:
			var labels map[string]string
			nocopy := false
			subpath := ""
			if m.VolumeOptions != nil {
				labels, nocopy, subpath = m.VolumeOptions.Labels, m.VolumeOptions.NoCopy, m.VolumeOptions.Subpath
			}
			v, err := vol(m.Source, labels, m.Target, nocopy)
			if err != nil {
				return out, anon, copyUp, err
			}
			mp.Name, mp.Source, mp.Driver = v.Name, v.Mountpoint, volume.Driver
			if subpath != "" {
				// The container binds a pin of the subpath resolved
				// inside the volume now, not a path a container writing
				// to the volume could later turn into a symlink out of it.
				if mp.Source, err = c.vols.Subpath(ctx, v.Name, subpath); err != nil {
					return out, anon, copyUp, fmt.Errorf("invalid mount config for type \"volume\": %w", err)
				}
			}
		case mounttypes.TypeTmpfs:
			if m.Source != "" {
				return out, anon, copyUp, fmt.Errorf("invalid mount config for type \"tmpfs\": source must not be specified: %w", errdefs.ErrInvalidArgument)
			}
			mp.Source = ""
			if t := m.TmpfsOptions; t != nil {
				mp.Mode = tmpfsMode(t.SizeBytes, uint32(t.Mode.Perm()))
			}
		default:
			return out, anon, copyUp, fmt.Errorf("invalid mount config: mount type %q is not supported: %w", m.Type, errdefs.ErrInvalidArgument)
		}
		if err := add(mp); err != nil {
			return out, anon, copyUp, err
		}
	}
	for _, from := range host.VolumesFrom {
		// --volumes-from ctr[:ro|:rw]: the other container's volumes and
		// binds at the same places, read-only if asked.
		ref, mode, _ := strings.Cut(from, ":")
		if mode != "" && mode != "ro" && mode != "rw" {
			return out, anon, copyUp, fmt.Errorf("invalid mode for volumes-from: %s: %w", mode, errdefs.ErrInvalidArgument)
		}
		other, err := c.store.Get(ref)
		if err != nil {
			return out, anon, copyUp, err
		}
		for _, mp := range other.Snapshot().Mounts {
			if mp.Type == mounttypes.TypeTmpfs || taken[mp.Destination] {
				continue
			}
			switch mode {
			case "ro":
				mp.RW = false
			case "rw":
				mp.RW = true
			}
			if err := add(mp); err != nil {
				return out, anon, copyUp, err
			}
		}
	}
	dsts := make([]string, 0, len(cfg.Volumes))
	for d := range cfg.Volumes {
		dsts = append(dsts, d)
	}
	slices.Sort(dsts)
	for _, d := range dsts {
		if taken[path.Clean(d)] {
			continue
		}
		if _, tmp := host.Tmpfs[d]; tmp {
			continue
		}
		v, err := vol("", nil, d, false)
		if err != nil {
			return out, anon, copyUp, err
		}
		if err := add(containertypes.MountPoint{Type: mounttypes.TypeVolume, Name: v.Name, Source: v.Mountpoint, Driver: volume.Driver, Destination: d, RW: true}); err != nil {
			return out, anon, copyUp, err
		}
	}
	return out, anon, copyUp, nil
}

// tmpfsMode records a --mount type=tmpfs's size and mode in the mount
// point's Mode field, as "size=N,mode=O" (docker shows "" there; berth
// needs them at start).
func tmpfsMode(size int64, mode uint32) string {
	var parts []string
	if size > 0 {
		parts = append(parts, fmt.Sprintf("size=%d", size))
	}
	if mode != 0 {
		parts = append(parts, fmt.Sprintf("mode=%o", mode))
	}
	return strings.Join(parts, ",")
}

// parseBind reads one -v: [src:]dst[:opts]. A src that is not an absolute
// path names a volume; no src makes an anonymous one.
func parseBind(spec string) (containertypes.MountPoint, error) {
	bad := func() error {
		return fmt.Errorf("invalid volume specification: '%s': %w", spec, errdefs.ErrInvalidArgument)
	}
	parts := strings.Split(spec, ":")
	mp := containertypes.MountPoint{RW: true}
	var opts string
	switch len(parts) {
	case 1:
		mp.Type, mp.Destination = mounttypes.TypeVolume, parts[0]
	case 2:
		if path.IsAbs(parts[0]) && !path.IsAbs(parts[1]) {
			// dst:opts of an anonymous volume.
			mp.Type, mp.Destination, opts = mounttypes.TypeVolume, parts[0], parts[1]
		} else {
			mp.Source, mp.Destination = parts[0], parts[1]
		}
	case 3:
		mp.Source, mp.Destination, opts = parts[0], parts[1], parts[2]
	default:
		return mp, bad()
	}
	if mp.Destination == "" || !path.IsAbs(mp.Destination) {
		return mp, bad()
	}
	if mp.Type == "" {
		switch {
		case mp.Source == "":
			return mp, bad()
		case path.IsAbs(mp.Source):
			mp.Type = mounttypes.TypeBind
			mp.Source = filepath.Clean(mp.Source)
			mp.Propagation = mounttypes.PropagationRPrivate
		default:
			mp.Type, mp.Name, mp.Source = mounttypes.TypeVolume, mp.Source, ""
		}
	}
	mp.Mode = opts
	for _, o := range strings.Split(opts, ",") {
		switch o {
		case "", "z", "Z", "nocopy", "consistent", "cached", "delegated":
		case "ro":
			mp.RW = false
		case "rw":
			mp.RW = true
		case "private", "rprivate", "shared", "rshared", "slave", "rslave":
			if mp.Type != mounttypes.TypeBind {
				return mp, bad()
			}
			mp.Propagation = mounttypes.Propagation(o)
		default:
			return mp, bad()
		}
	}
	return mp, nil
}

// hostsLocal is /etc/hosts of a container without a network of its own.
const hostsLocal = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"

// writeEtcFiles writes the container's hostname, hosts and resolv.conf,
// bind-mounted at start. They are not fsynced: they are rewritten from
// the record whenever lost.
func writeEtcFiles(c *ctrs, r *container.Record) error {
	dir := c.store.Dir(r.ID)
	r.HostnamePath = filepath.Join(dir, "hostname")
	r.HostsPath = filepath.Join(dir, "hosts")
	r.ResolvConfPath = filepath.Join(dir, "resolv.conf")
	hosts := hostsLocal
	if netMode(r.HostConfig) == "host" {
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts = string(b)
		}
	}
	for _, h := range r.HostConfig.ExtraHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok {
			name, ip, ok = strings.Cut(h, "=")
		}
		if !ok || name == "" || ip == "" {
			return fmt.Errorf("invalid extra host %q: %w", h, errdefs.ErrInvalidArgument)
		}
		hosts += ip + "\t" + name + "\n"
	}
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	hc := r.HostConfig
	if len(hc.DNS)+len(hc.DNSSearch)+len(hc.DNSOptions) > 0 {
		var b strings.Builder
		for _, s := range hc.DNS {
			fmt.Fprintf(&b, "nameserver %s\n", s)
		}
		if len(hc.DNSSearch) > 0 {
			fmt.Fprintf(&b, "search %s\n", strings.Join(hc.DNSSearch, " "))
		}
		if len(hc.DNSOptions) > 0 {
			fmt.Fprintf(&b, "options %s\n", strings.Join(hc.DNSOptions, " "))
		}
		resolv = []byte(b.String())
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{r.HostnamePath, []byte(r.Config.Hostname + "\n")}, {r.HostsPath, []byte(hosts)}, {r.ResolvConfPath, resolv}} {
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return fmt.Errorf("create container: %w", err)
		}
	}
	return nil
}
