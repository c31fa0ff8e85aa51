package daemon

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	containertypes "github.com/moby/moby/api/types/container"
	evtypes "github.com/moby/moby/api/types/events"
	mounttypes "github.com/moby/moby/api/types/mount"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/cleanup"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/specgen"
)

// procHandle is a running container's monitor.
type procHandle = *monitor.Handle

// ContainerStart starts a created or exited container. Starting a running
// one is errdefs.ErrNotModified (docker's 304).
func (e *Engine) ContainerStart(ctx context.Context, ref string) error {
	ct, c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	ct.Lock()
	defer ct.Unlock()
	r := ct.R()
	switch r.State.Status {
	case container.Running, container.Restarting:
		return fmt.Errorf("container %s already started: %w", r.ID, errdefs.ErrNotModified)
	case container.Paused:
		return fmt.Errorf("cannot start a paused container, try unpause instead: %w", errdefs.ErrConflict)
	case container.Removing, container.Dead:
		return fmt.Errorf("container %s is marked for removal and cannot be started: %w", r.ID, errdefs.ErrConflict)
	}
	l := c.liveOf(r.ID)
	l.stopping, l.backoff = false, 0
	r.State.ManuallyStopped = false
	err = e.startLocked(ctx, c, ct, l)
	if err != nil && r.HostConfig.AutoRemove {
		// docker removes a --rm container whose start failed: the client
		// waits for its removal.
		if rerr := e.removeFailedStart(ctx, c, ct); rerr != nil {
			log.From(ctx).Warn("start: remove --rm container after a failed start", log.KeyContainer, r.ID, log.KeyErr, rerr)
		}
	}
	if errors.Is(err, monitor.ErrCommandNotFound) || errors.Is(err, monitor.ErrCommandNotExecutable) {
		// A bad command is the request's fault (docker: 400; the CLI
		// exits 127 or 126 reading the message).
		err = fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	return err
}

// removeFailedStart removes a created container whose start failed. The
// caller holds the lock.
func (e *Engine) removeFailedStart(ctx context.Context, c *ctrs, ct *container.Container) error {
	if err := ct.SetStatus(container.Removing); err != nil {
		return err
	}
	r := ct.R()
	if err := e.removeLocked(ctx, c, ct, true); err != nil {
		_ = ct.SetStatus(container.Dead)
		return err
	}
	e.emitContainer(ctx, evtypes.ActionDestroy, r, nil)
	return nil
}

// startLocked mounts the root filesystem, writes the bundle and starts
// the monitor; then an exit watcher follows the container. The caller
// holds the container's lock. On failure the record carries docker's
// State.Error and exit code (127 command not found, 126 not executable,
// 128 otherwise), and nothing stays mounted.
func (e *Engine) startLocked(ctx context.Context, c *ctrs, ct *container.Container, l *liveState) (retErr error) {
	r := ct.R()
	var undo cleanup.Stack
	defer undo.Unwind()
	defer func() {
		if retErr == nil {
			return
		}
		code := 128
		switch {
		case errors.Is(retErr, monitor.ErrCommandNotFound):
			code = 127
		case errors.Is(retErr, monitor.ErrCommandNotExecutable):
			code = 126
		}
		ct.SetError(code, retErr.Error())
		if err := ct.Save(); err != nil {
			log.From(ctx).Warn("start: save failed start", log.KeyContainer, r.ID, log.KeyErr, err)
		}
	}()
	root, err := e.mountRootfs(ctx, c, r, l)
	if err != nil {
		return err
	}
	undo.Push(func() {
		if err := unmountRootfs(root); err != nil {
			log.From(ctx).Warn("start: unmount rootfs after failure", log.KeyContainer, r.ID, log.KeyErr, err)
		} else {
			l.mounted = ""
		}
	})
	if len(r.CopyUp) > 0 {
		if err := copyUpVolumes(ctx, r, root); err != nil {
			return err
		}
		r.CopyUp = nil // saved with the running state
	}
	spec, err := e.buildSpec(ctx, c, r, root)
	if err != nil {
		return err
	}
	if _, err := e.netManager(); err == nil {
		netUndo, err := e.prepareNetwork(ctx, r, spec, r.Endpoints)
		if err != nil {
			return err
		}
		undo.Push(netUndo)
	}
	bundle := c.store.Dir(r.ID)
	b, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("start %s: %w", r.ID, err)
	}
	// Not fsynced: the spec is rebuilt at every start.
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		return fmt.Errorf("start %s: %w", r.ID, err)
	}
	stateDir := c.stateDir(r.ID)
	maxSize, maxFiles, err := logRotation(r.HostConfig.LogConfig.Config, c.cfg.LogMaxSize, c.cfg.LogMaxFiles)
	if err != nil {
		return err
	}
	mc := monitor.Config{
		ID: r.ID, Bundle: bundle, RuntimeRoot: c.runtimeRoot, StateDir: stateDir,
		LogPath: r.LogPath, LogMaxSize: maxSize, LogMaxFiles: maxFiles,
		Tty: r.Config.Tty, OpenStdin: r.Config.OpenStdin, StdinOnce: r.Config.StdinOnce,
		ConsoleSize: r.HostConfig.ConsoleSize,
		// handleExit deletes the runtime's state in-process: the exit is
		// known a process start sooner than if the monitor did it.
		CallerDeletes: true,
		Pool:          c.monitors,
	}
	if hooks := c.takeStartHooks(r.ID); len(hooks) > 0 {
		mc.Created = func(h *monitor.Handle) error {
			for _, fn := range hooks {
				if err := fn(h); err != nil {
					return err
				}
			}
			return nil
		}
	}
	// Not cancelled with the request: a client that hangs up once the
	// container may be running would otherwise have the monitor killed
	// under a live container, whose cgroup and state then nobody deletes.
	// docker's start, too, completes whatever the client does.
	h, err := monitor.Start(context.WithoutCancel(ctx), mc)
	if err != nil {
		return err // "start container <id>: …" already
	}
	l.proc = h
	l.gen++
	if err := ct.SetRunning(h.Pid(), time.Now().UTC()); err != nil {
		return err
	}
	if err := ct.Save(); err != nil {
		log.From(ctx).Warn("start: save running state", log.KeyContainer, r.ID, log.KeyErr, err)
	}
	undo.Disarm()
	e.follow(c, ct, h, l.gen)
	e.emitContainer(ctx, evtypes.ActionStart, r, nil)
	return nil
}

// follow starts the exit watcher of one run of the container.
func (e *Engine) follow(c *ctrs, ct *container.Container, h procHandle, gen int) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ex, err := h.WaitOwned(c.bg)
		if c.bg.Err() != nil {
			return // the daemon is stopping; the container runs on
		}
		if err != nil {
			// The monitor went away without an answer: its exit file,
			// if any, says how the container ended.
			// A monitor writes the file just before it exits; give a
			// late one a moment (this is the error path only).
			werr := err
			for range 25 {
				if ex, err = monitor.ReadExit(c.stateDir(ct.ID())); err == nil || !errors.Is(err, errdefs.ErrNotFound) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				log.From(c.bg).Warn("container ended without an exit status from its monitor; reporting 255", log.KeyContainer, ct.ID(), "wait", werr, log.KeyErr, err)
				ex = monitor.Exit{Code: 255, At: time.Now().UTC()}
			}
		}
		e.handleExit(c.bg, c, ct, gen, ex)
	}()
}

// handleExit records the end of run gen: unmounts, applies the restart
// policy or --rm, and publishes die.
func (e *Engine) handleExit(ctx context.Context, c *ctrs, ct *container.Container, gen int, ex monitor.Exit) {
	ct.Lock()
	l := c.liveOf(ct.ID())
	if l.gen != gen {
		ct.Unlock()
		return
	}
	if l.proc != nil {
		l.proc.Close()
		l.proc = nil
	}
	r := ct.R()
	// The monitor left the runtime's state to us (CallerDeletes): it goes
	// before a restart reuses the id, and what escaped the init is killed
	// before the rootfs is unmounted. In a pid namespace of its own
	// nothing escapes (the kernel kills the namespace with its init), so
	// the delete (cgroup directories, state) and the unmount go side by
	// side.
	rtDeleted := make(chan struct{})
	if r.HostConfig.PidMode.IsPrivate() {
		go func() { defer close(rtDeleted); e.deleteRuntime(ctx, c, r.ID, false) }()
	} else {
		e.deleteRuntime(ctx, c, r.ID, true)
		close(rtDeleted)
	}
	if l.mounted != "" {
		if err := unmountRootfs(l.mounted); err != nil {
			log.From(ctx).Warn("exit: unmount rootfs", log.KeyContainer, r.ID, log.KeyErr, err)
		} else {
			l.mounted = ""
		}
	}
	<-rtDeleted
	if err := e.networkDown(ctx, r.ID); err != nil {
		log.From(ctx).Warn("exit: network down; its namespace or endpoints may stay", log.KeyContainer, r.ID, log.KeyErr, err)
	}
	at := ex.At
	if at.IsZero() {
		at = time.Now().UTC()
	}
	ran := at.Sub(r.State.StartedAt)
	restart := !l.stopping && container.ShouldRestart(r.HostConfig.RestartPolicy, ex.Code, r.RestartCount, r.State.ManuallyStopped)
	to := container.Exited
	if restart {
		to = container.Restarting
	}
	if err := ct.SetExited(to, ex.Code, ex.OOMKilled, at, ""); err != nil {
		log.From(ctx).Warn("exit: record", log.KeyContainer, r.ID, log.KeyErr, err)
	}
	autoRemove := r.HostConfig.AutoRemove && !restart
	// With --rm the record is removed right below: its fsynced save would
	// protect nothing (a daemon dying in between finds the monitor gone and
	// its exit.json on restart). It is saved only if the removal fails.
	if !autoRemove {
		if err := ct.Save(); err != nil {
			log.From(ctx).Warn("exit: save", log.KeyContainer, r.ID, log.KeyErr, err)
		}
	}
	if ex.OOMKilled {
		e.emitContainer(ctx, evtypes.ActionOOM, r, nil)
	}
	e.emitContainer(ctx, evtypes.ActionDie, r, map[string]string{"exitCode": strconv.Itoa(ex.Code)})
	if restart {
		l.backoff = container.NextBackoff(l.backoff, ran)
		e.scheduleRestart(c, ct, l, l.backoff)
	}
	ct.Unlock()
	if autoRemove {
		if err := e.ContainerRemove(ctx, ct.ID(), ContainerRemoveOptions{RemoveVolumes: true}); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			log.From(ctx).Warn("exit: --rm", log.KeyContainer, ct.ID(), log.KeyErr, err)
			ct.Lock()
			if err := ct.Save(); err != nil {
				log.From(ctx).Warn("exit: save", log.KeyContainer, ct.ID(), log.KeyErr, err)
			}
			ct.Unlock()
		}
	}
}

// deleteRuntime deletes the runtime's cgroup and state, first killing
// what is left in the cgroup when killLeftovers (a container without a
// pid namespace of its own, or one whose state is unknown: after its
// exit in a private pid namespace the kernel has killed everything with
// the init, and the cgroup-wide kill would be work on the exit path for
// nothing). A container whose state is gone already is no error.
func (e *Engine) deleteRuntime(ctx context.Context, c *ctrs, id string, killLeftovers bool) {
	rc, err := c.rt.Load(ctx, id)
	if err != nil {
		if !errors.Is(err, errdefs.ErrNotFound) {
			log.From(ctx).Warn("runtime state: load; its cgroup and state may stay", log.KeyContainer, id, log.KeyErr, err)
		}
		return
	}
	if killLeftovers {
		_ = rc.Kill(ctx, unix.SIGKILL, true)
	}
	if err := rc.Delete(ctx, true); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		log.From(ctx).Warn("runtime state: delete; its cgroup and state may stay", log.KeyContainer, id, log.KeyErr, err)
	}
}

// copyUpVolumes fills each new, still empty volume with what the image
// has at its destination, as docker does. The image's tree is read with
// the cp walker (no symlink followed) and written with the layer
// extractor (nothing lands outside the volume).
func copyUpVolumes(ctx context.Context, r *container.Record, root string) error {
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	for _, dst := range r.CopyUp {
		var src string
		for _, m := range r.Mounts {
			if m.Destination == dst && m.Type == mounttypes.TypeVolume {
				src = m.Source
			}
		}
		if src == "" {
			continue
		}
		if ents, err := os.ReadDir(src); err != nil || len(ents) > 0 {
			continue
		}
		fd, err := openInRoot(rootfd, dst, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		if err != nil {
			continue // the image has nothing (or no directory) there
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return err
		}
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			err := writeTree(ctx, tw, fd, "", &st)
			if err == nil {
				err = tw.Close()
			}
			unix.Close(fd)
			pw.CloseWithError(err)
		}()
		_, err = archive.Apply(ctx, src, pr, archive.ApplyOptions{Whiteouts: archive.WhiteoutsDelete})
		pr.CloseWithError(err)
		if err != nil {
			return fmt.Errorf("copy the image's %s into its volume: %w", dst, err)
		}
		// The volume's root takes the image directory's owner and mode.
		_ = os.Chown(src, int(st.Uid), int(st.Gid))
		_ = os.Chmod(src, os.FileMode(st.Mode&0o777))
	}
	return nil
}

// logRotation reads the json-file options max-size and max-file, with
// the engine's defaults for what they leave out.
func logRotation(opts map[string]string, defSize int64, defFiles int) (int64, int, error) {
	size, files := defSize, defFiles
	for k, v := range opts {
		switch k {
		case "max-size":
			n, err := parseSize(v)
			if err != nil || n < 0 {
				return 0, 0, fmt.Errorf("invalid max-size %q: %w", v, errdefs.ErrInvalidArgument)
			}
			size = n
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return 0, 0, fmt.Errorf("invalid max-file %q: %w", v, errdefs.ErrInvalidArgument)
			}
			files = n
		case "compress", "labels", "env", "env-regex", "tag", "labels-regex":
		default:
			return 0, 0, fmt.Errorf("unknown log opt '%s' for json-file log driver: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	if size == -1 {
		size = 0
	}
	return size, files, nil
}

// parseSize reads docker's sizes: 10, 10k, 10m, 10g (binary units).
func parseSize(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "-1" {
		return -1, nil
	}
	mult := int64(1)
	for suffix, m := range map[string]int64{"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "b": 1} {
		if strings.HasSuffix(s, suffix) {
			s, mult = strings.TrimSuffix(s, suffix), m
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	return int64(n * float64(mult)), nil
}

// buildSpec resolves what specgen needs from the host and the mounted
// root filesystem, then generates the spec.
func (e *Engine) buildSpec(ctx context.Context, c *ctrs, r *container.Record, root string) (*specs.Spec, error) {
	host := *r.HostConfig
	user, err := specgen.LookupUser(root, r.Config.User, host.GroupAdd)
	if err != nil {
		return nil, err
	}
	in := specgen.Input{
		ID: r.ID, Image: ocispec.ImageConfig{}, Config: r.Config, Host: &host, Rootfs: root,
		User: user.User, Home: user.Home,
		Kernel: kernelRelease(),
	}
	parent := host.CgroupParent
	if parent == "" {
		parent = c.cfg.CgroupParent
	}
	in.CgroupsPath = filepath.Join(parent, r.ID)
	if in.Namespaces, err = e.namespaces(r); err != nil {
		return nil, err
	}
	for _, d := range host.Devices {
		dev, err := specgen.HostDevice(d)
		if err != nil {
			return nil, err
		}
		in.Devices = append(in.Devices, dev)
	}
	if host.Privileged {
		in.HostDevices = hostDevices()
	}
	if host.Init != nil && *host.Init {
		if in.InitBinary = initBinary(c.cfg.InitBinary); in.InitBinary == "" {
			return nil, fmt.Errorf("--init: no init binary found (docker-init, tini-static): %w", errdefs.ErrInvalidArgument)
		}
	}
	for _, mp := range r.Mounts {
		switch mp.Type {
		case mounttypes.TypeTmpfs:
			var size int64
			var mode uint64
			for _, o := range strings.Split(mp.Mode, ",") {
				if v, ok := strings.CutPrefix(o, "size="); ok {
					size, _ = strconv.ParseInt(v, 10, 64)
				}
				if v, ok := strings.CutPrefix(o, "mode="); ok {
					mode, _ = strconv.ParseUint(v, 8, 32)
				}
			}
			in.Mounts = append(in.Mounts, specgen.TmpfsMount(mp.Destination, size, uint32(mode)))
		default:
			in.Mounts = append(in.Mounts, specgen.BindMount(mp.Source, mp.Destination, !mp.RW, string(mp.Propagation)))
		}
	}
	taken := map[string]bool{}
	for _, m := range in.Mounts {
		taken[m.Destination] = true
	}
	for _, f := range []struct{ src, dst string }{{r.HostnamePath, "/etc/hostname"}, {r.HostsPath, "/etc/hosts"}, {r.ResolvConfPath, "/etc/resolv.conf"}} {
		if f.src == "" || taken[f.dst] {
			continue
		}
		m := specgen.BindMount(f.src, f.dst, host.ReadonlyRootfs, "")
		in.Mounts = append(in.Mounts, m)
	}
	spec, err := specgen.Generate(in)
	if err != nil {
		return nil, err
	}
	return spec, nil
}

// namespaces is the container's namespace set from its network, pid, ipc,
// uts and cgroup modes; container:<x> joins x's namespace.
func (e *Engine) namespaces(r *container.Record) ([]specs.LinuxNamespace, error) {
	h := r.HostConfig
	ns := specgen.DefaultNamespaces(h.CgroupnsMode == "private")
	set := func(t specs.LinuxNamespaceType, mode string) error {
		i := -1
		for j, n := range ns {
			if n.Type == t {
				i = j
			}
		}
		switch {
		case mode == "host":
			if i >= 0 {
				ns = append(ns[:i], ns[i+1:]...)
			}
		case strings.HasPrefix(mode, "container:"):
			pid, err := e.pidOf(strings.TrimPrefix(mode, "container:"))
			if err != nil {
				return err
			}
			p := fmt.Sprintf("/proc/%d/ns/%s", pid, nsFile[t])
			if i >= 0 {
				ns[i].Path = p
			} else {
				ns = append(ns, specs.LinuxNamespace{Type: t, Path: p})
			}
		}
		return nil
	}
	for _, x := range []struct {
		t    specs.LinuxNamespaceType
		mode string
	}{
		{specs.NetworkNamespace, netMode(h)},
		{specs.PIDNamespace, string(h.PidMode)},
		{specs.IPCNamespace, string(h.IpcMode)},
		{specs.UTSNamespace, string(h.UTSMode)},
	} {
		if err := set(x.t, x.mode); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

var nsFile = map[specs.LinuxNamespaceType]string{
	specs.NetworkNamespace: "net", specs.PIDNamespace: "pid", specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts",
}

// pidOf is the pid of a running container's init, for container:<ref>.
func (e *Engine) pidOf(ref string) (int, error) {
	ct, _, err := e.lookup(ref)
	if err != nil {
		return 0, err
	}
	r := ct.Snapshot()
	if r.State.Status != container.Running {
		return 0, fmt.Errorf("cannot join namespace of a non running container %s: %w", ref, errdefs.ErrConflict)
	}
	return r.State.Pid, nil
}

func kernelRelease() string {
	var u unix.Utsname
	_ = unix.Uname(&u)
	return unix.ByteSliceToString(u.Release[:])
}

// initBinary finds the --init binary: configured, else a static init on
// PATH (the container has none of the host's libraries).
func initBinary(configured string) string {
	if configured != "" {
		return configured
	}
	for _, n := range []string{"docker-init", "tini-static"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// hostDevices lists the host's device nodes for --privileged.
func hostDevices() []specs.LinuxDevice {
	var out []specs.LinuxDevice
	_ = filepath.WalkDir("/dev", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			switch p {
			case "/dev/pts", "/dev/shm", "/dev/mqueue":
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 || p == "/dev/console" {
			return nil
		}
		if dev, err := specgen.HostDevice(containertypes.DeviceMapping{PathOnHost: p, PathInContainer: p, CgroupPermissions: "rwm"}); err == nil {
			out = append(out, dev)
		}
		return nil
	})
	return out
}
