package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cgroups"
	"github.com/berth-dev/berth/internal/cleanup"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/runtime/console"
	"github.com/berth-dev/berth/internal/runtime/nsenter"
)

// DefaultRoot is where the runtime keeps container state unless told.
const DefaultRoot = "/run/berth-runtime"

// Runtime manages the containers whose state lives under one root
// directory. It is safe for concurrent use by several processes: a
// container's directory is created with mkdir (exclusive) and each state
// write is atomic.
type Runtime struct {
	root string
}

// New returns a Runtime keeping state under root (created 0700 if absent).
func New(root string) (*Runtime, error) {
	if root == "" {
		root = DefaultRoot
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("state root %s: %w", abs, err)
	}
	return &Runtime{root: abs}, nil
}

// Root is the state directory.
func (r *Runtime) Root() string { return r.root }

// Container is one container's handle. A Container returned by Create in
// this process also holds the init as a child, so Wait works; one from Load
// does not. It is not safe for concurrent use.
type Container struct {
	rt  *Runtime
	dir string
	rec *record

	proc *Process // set when this process started the init
}

// IO is the stdio of a container process. Nil entries get /dev/null.
type IO struct {
	Stdin, Stdout, Stderr *os.File
}

// CreateOptions are create's knobs; they mirror runc's flags.
type CreateOptions struct {
	Bundle        string
	PidFile       string
	ConsoleSocket string
	NoPivot       bool
	NoNewKeyring  bool
	// ExtraFiles are passed to the container process as fds 3, 4, ...
	// (runc's --preserve-fds).
	ExtraFiles []*os.File
	IO         IO
}

// ID is the container's id.
func (c *Container) ID() string { return c.rec.ID }

// Pid is the pid of the container's init, in the runtime's pid namespace.
func (c *Container) Pid() int { return c.rec.Pid }

// Bundle is the bundle directory the container was created from.
func (c *Container) Bundle() string { return c.rec.Bundle }

// Spec is the container's configuration as created.
func (c *Container) Spec() *specs.Spec {
	s, err := c.rec.spec()
	if err != nil {
		return &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}}
	}
	return s
}

// CgroupPaths is the container's cgroup directory per v1 controller, and
// "" for the v2 one, as cgroups.Manager.Paths returns them (cgroups.Load
// takes it).
func (c *Container) CgroupPaths() map[string]string { return c.rec.Cgroups }

// Created is when create ran.
func (c *Container) Created() time.Time { return c.rec.Created }

// ExecFifo is the fifo a created container's init waits on: opening it for
// reading lets the init run, and the init writes one byte as it goes on to
// exec. Start does that; a starter that cannot call Start (the monitor's C
// holder) may do it itself and then remove the fifo, which Status reads as
// running. Start is still needed for poststart hooks (HasPoststart).
func (c *Container) ExecFifo() string { return filepath.Join(c.dir, "exec.fifo") }

// HasPoststart says whether the spec has poststart hooks, which only
// Start runs.
func (c *Container) HasPoststart() bool { return c.rec.Poststart }

// Create makes a container from a bundle and leaves it "created": its
// init has set everything up and waits for Start.
func (r *Runtime) Create(ctx context.Context, id string, opts CreateOptions) (_ *Container, retErr error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(opts.Bundle)
	if err != nil {
		return nil, err
	}
	spec, err := LoadSpec(bundle)
	if err != nil {
		return nil, err
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if st, err := os.Stat(rootfs); err != nil || !st.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return nil, fmt.Errorf("bundle %s: root.path %s: %v: %w", bundle, rootfs, err, errdefs.ErrInvalidArgument)
	}
	if spec.Process.Terminal && opts.ConsoleSocket == "" {
		return nil, invalid("process.terminal needs --console-socket")
	}
	if !spec.Process.Terminal && opts.ConsoleSocket != "" {
		return nil, invalid("--console-socket needs process.terminal")
	}
	dir := filepath.Join(r.root, id)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("container %s: %w", id, errdefs.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("create container %s: %w", id, err)
	}
	var undo cleanup.Stack
	defer undo.Unwind()
	undo.Push(func() { _ = os.RemoveAll(dir) })

	c := &Container{rt: r, dir: dir, rec: &record{
		ID: id, Bundle: bundle, Rootfs: rootfs, Status: StatusCreating, Created: time.Now().UTC(),
		Annotations: spec.Annotations, Spec: spec, OwnPidNS: hasNSNew(spec, specs.PIDNamespace),
		Poststart: spec.Hooks != nil && len(spec.Hooks.Poststart) > 0,
		Poststop:  spec.Hooks != nil && len(spec.Hooks.Poststop) > 0,
	}}
	ctx = log.With(ctx, log.KeyContainer, id)
	if err := c.startInit(ctx, opts, &undo); err != nil {
		return nil, fmt.Errorf("create container %s: %w", id, err)
	}
	undo.Disarm()
	return c, nil
}

// startInit runs the init through to "created". The undo stack gets a step
// for each thing made.
func (c *Container) startInit(ctx context.Context, opts CreateOptions, undo *cleanup.Stack) error {
	spec := c.rec.Spec
	fifoPath := filepath.Join(c.dir, "exec.fifo")
	if err := unix.Mkfifo(fifoPath, 0o600); err != nil {
		return fmt.Errorf("make exec fifo: %w", err)
	}
	// In a user namespace the init is the mapped root: it must be able to
	// open the fifo for writing.
	if uid, gid, ok := mappedRoot(spec); ok {
		if err := os.Chown(fifoPath, uid, gid); err != nil {
			return fmt.Errorf("chown exec fifo: %w", err)
		}
	}
	fifo, err := os.OpenFile(fifoPath, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer fifo.Close()

	res := withDefaultDevices(spec.Linux.Resources)
	mgr, err := cgroups.New(cgroups.Config{Path: spec.Linux.CgroupsPath, Name: c.rec.ID, Resources: res})
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}

	var flags uintptr
	var join []specs.LinuxNamespace
	newCgroupNS, newTimeNS := false, false
	for _, ns := range spec.Linux.Namespaces {
		switch {
		case ns.Path != "":
			join = append(join, ns)
		case ns.Type == specs.CgroupNamespace:
			newCgroupNS = true // unshared by the init once in its cgroup
		case ns.Type == specs.TimeNamespace:
			newTimeNS = true // unshared by the init, which sets the offsets
		default:
			flags |= nsFlags[ns.Type]
		}
	}
	attr := &syscall.SysProcAttr{Cloneflags: flags}
	if flags&unix.CLONE_NEWUSER != 0 {
		attr.UidMappings = idMaps(spec.Linux.UIDMappings)
		attr.GidMappings = idMaps(spec.Linux.GIDMappings)
		attr.GidMappingsEnableSetgroups = true
		// Become the namespace's root once the maps are written: until
		// then the child's ids are unmapped and execve would drop every
		// capability it has in the new namespace.
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	so := spawnOptions{attr: attr, io: opts.IO, extra: opts.ExtraFiles, fifo: fifo}
	if sc := spec.Linux.Seccomp; sc != nil && sc.ListenerPath != "" {
		l, err := dialListener(sc.ListenerPath)
		if err != nil {
			return err
		}
		defer l.Close()
		so.listener = l
	}
	perThread, single := splitJoins(join)
	if len(single) > 0 {
		// Mount, user, pid or time namespaces given by path need a
		// single-threaded process: hand every namespace but a new cgroup
		// one (see initMain) to nsenter, which orders joins and creations.
		perThread = nil
		newTimeNS = false
		so.attr = &syscall.SysProcAttr{}
		cfg := nsenter.Config{UIDMappings: spec.Linux.UIDMappings, GIDMappings: spec.Linux.GIDMappings, TimeOffsets: spec.Linux.TimeOffsets}
		for _, ns := range spec.Linux.Namespaces {
			if ns.Type != specs.CgroupNamespace || ns.Path != "" {
				cfg.Namespaces = append(cfg.Namespaces, ns)
			}
		}
		var sess *nsenter.Session
		so.prepare = func(cmd *exec.Cmd) error {
			var err error
			sess, err = nsenter.Prepare(cmd, cfg)
			return err
		}
		so.realPid = func() (int, error) { return sess.Wait(ctx) }
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("become child subreaper: %w", err)
		}
	}
	// The cgroups exist and hold their limits before the init runs. On
	// cgroup v2 the init is cloned straight into its cgroup
	// (CLONE_INTO_CGROUP); on v1 it moves itself by writing "0" to each
	// hierarchy's tasks file. Both skip the global threadgroup rwsem that a
	// write of a pid to cgroup.procs takes, whose RCU grace period costs
	// milliseconds. A process in a new user namespace cannot write the
	// host's cgroup files, so then the parent moves it the slow way.
	if err := mgr.Apply(-1); err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	// The default cgroup is named after the id alone, so a container of
	// the same id under another state root would share it: refuse.
	if pids, err := mgr.Pids(); err == nil && len(pids) > 0 {
		return fmt.Errorf("cgroup %v is in use by pids %v: %w", mgr.Paths(), pids, errdefs.ErrAlreadyExists)
	}
	undo.Push(func() {
		if err := mgr.Destroy(); err != nil {
			log.From(ctx).Warn("remove cgroup after a failed create", log.KeyErr, err)
		}
	})
	paths := mgr.Paths()
	selfMove := flags&unix.CLONE_NEWUSER == 0 && so.prepare == nil
	var moveSelf []string
	if selfMove {
		for ctrl, dir := range paths {
			if ctrl == "" {
				fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				if err != nil {
					return fmt.Errorf("cgroups: open %s: %w", dir, err)
				}
				defer unix.Close(fd)
				so.attr.UseCgroupFD, so.attr.CgroupFD = true, fd
				continue
			}
			moveSelf = append(moveSelf, dir)
		}
	}
	p, err := c.spawn(ctx, so)
	if err != nil {
		return err
	}
	undo.Push(func() { p.kill() })
	// The limits and the "creating" state are written while the init's Go
	// runtime starts: it waits for its config, sent below, before it runs
	// anything of the container.
	if err := mgr.Set(res); err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	// With the pid and cgroups recorded, a create that dies half-way can
	// still be removed with delete.
	c.rec.Cgroups = mgr.Paths()
	c.rec.Pid = p.pid
	c.rec.PidStart, _, _ = procStart(p.pid)
	if err := c.rec.save(c.dir); err != nil {
		return err
	}
	if !selfMove {
		if err := mgr.Apply(p.pid); err != nil {
			return fmt.Errorf("cgroups: %w", err)
		}
	}

	hasRuntimeHooks := spec.Hooks != nil && (len(spec.Hooks.Prestart) > 0 || len(spec.Hooks.CreateRuntime) > 0) //nolint:staticcheck // prestart is deprecated but still ours to run
	state := c.ociState(specs.StateCreating)
	cfg := &initConfig{
		ID: c.rec.ID, Spec: initSpec(spec), Rootfs: c.rec.Rootfs, Bundle: c.rec.Bundle,
		NoPivot: opts.NoPivot, NoNewKeyring: opts.NoNewKeyring, NewCgroupNS: newCgroupNS, NewTimeNS: newTimeNS,
		Cgroups: c.rec.Cgroups, FifoFD: p.fifoFD, FirstFD: 3 + len(opts.ExtraFiles), JoinNS: perThread,
		Hooks: hasRuntimeHooks, State: &state, MoveSelf: moveSelf, ListenerFD: p.listenerFD,
	}
	err = p.run(cfg, func(m message, fds []int) error {
		switch m.Type {
		case msgHooks:
			if err := runHooks("prestart", spec.Hooks.Prestart, &state); err != nil { //nolint:staticcheck
				return err
			}
			if err := runHooks("createRuntime", spec.Hooks.CreateRuntime, &state); err != nil {
				return err
			}
			return send(p.sock, message{Type: msgHooksDone})
		case msgPty:
			if len(fds) != 1 {
				return errors.New("pty message without a fd")
			}
			master := os.NewFile(uintptr(fds[0]), "pty-master")
			defer master.Close()
			return console.SendMaster(opts.ConsoleSocket, master)
		}
		return fmt.Errorf("unexpected %q message", m.Type)
	})
	if err != nil {
		return err
	}
	c.proc = &Process{pid: p.pid}
	if p.pid == p.cmd.Process.Pid {
		c.proc.cmd = p.cmd
	}
	c.rec.Status = StatusCreated
	if err := c.rec.save(c.dir); err != nil {
		return err
	}
	if opts.PidFile != "" {
		if err := writePidFile(opts.PidFile, p.pid); err != nil {
			return err
		}
	}
	return nil
}

// initSpec is the part of the spec the init uses. Decoding JSON into a
// type costs the first time a process meets it, so leaving out what only
// the parent needs (resources, annotations) shortens the init's start.
func initSpec(s *specs.Spec) *specs.Spec {
	cp := *s
	cp.Annotations = nil
	if s.Linux != nil {
		l := *s.Linux
		l.Resources = nil
		l.UIDMappings, l.GIDMappings = nil, nil
		cp.Linux = &l
	}
	if s.Hooks != nil {
		cp.Hooks = &specs.Hooks{CreateContainer: s.Hooks.CreateContainer, StartContainer: s.Hooks.StartContainer}
	}
	return &cp
}

func idMaps(m []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, 0, len(m))
	for _, x := range m {
		out = append(out, syscall.SysProcIDMap{ContainerID: int(x.ContainerID), HostID: int(x.HostID), Size: int(x.Size)})
	}
	return out
}

// splitJoins separates namespaces a locked thread may join itself from the
// ones that need a single-threaded process (mount, user, pid: nsenter).
func splitJoins(join []specs.LinuxNamespace) (perThread, single []specs.LinuxNamespace) {
	for _, ns := range join {
		switch ns.Type {
		case specs.MountNamespace, specs.UserNamespace, specs.PIDNamespace, specs.TimeNamespace:
			single = append(single, ns)
		default:
			perThread = append(perThread, ns)
		}
	}
	return perThread, single
}

func writePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	return writeFileAtomic(abs, []byte(strconv.Itoa(pid)), 0o644)
}

// withDefaultDevices adds the device cgroup rules the default /dev nodes
// need, as runc does, so a "deny all" rule in the spec still leaves
// /dev/null and friends usable.
func withDefaultDevices(r *specs.LinuxResources) *specs.LinuxResources {
	if r == nil || len(r.Devices) == 0 {
		return r
	}
	cp := *r
	dev := func(t string, major, minor int64, access string) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: t, Major: &major, Minor: &minor, Access: access}
	}
	cp.Devices = append(append([]specs.LinuxDeviceCgroup(nil), r.Devices...),
		dev("c", 1, 3, "rwm"), dev("c", 1, 5, "rwm"), dev("c", 1, 7, "rwm"), dev("c", 1, 8, "rwm"),
		dev("c", 1, 9, "rwm"), dev("c", 5, 0, "rwm"), dev("c", 5, 1, "rwm"), dev("c", 5, 2, "rwm"),
		dev("c", 136, -1, "rwm"))
	return &cp
}

// ociState builds the OCI state (runtime.md "State").
func (c *Container) ociState(st specs.ContainerState) specs.State {
	return specs.State{
		Version: specs.Version, ID: c.rec.ID, Status: st, Pid: c.rec.Pid,
		Bundle: c.rec.Bundle, Annotations: c.rec.Annotations,
	}
}

// Load returns the container id under this runtime's root.
func (r *Runtime) Load(ctx context.Context, id string) (*Container, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(r.root, id)
	rec, err := loadRecord(dir, id)
	if err != nil {
		return nil, err
	}
	return &Container{rt: r, dir: dir, rec: rec}, nil
}

// List returns every container under the root, by id.
func (r *Runtime) List(ctx context.Context) ([]*Container, error) {
	entries, err := os.ReadDir(r.root)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r.root, err)
	}
	var out []*Container
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c, err := r.Load(ctx, e.Name())
		if err != nil {
			continue // being created or deleted right now
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rec.ID < out[j].rec.ID })
	return out, nil
}

// Status is the container's current status: the saved one, unless the
// init has gone (then stopped).
func (c *Container) Status() Status {
	switch c.rec.Status {
	case StatusCreating, StatusStopped:
		return c.rec.Status
	}
	start, zombie, ok := procStart(c.rec.Pid)
	if !ok || zombie || start != c.rec.PidStart {
		return StatusStopped
	}
	if c.rec.Status == StatusCreated {
		// Started by opening the fifo without Start (see ExecFifo).
		if _, err := os.Lstat(c.ExecFifo()); errors.Is(err, fs.ErrNotExist) {
			return StatusRunning
		}
	}
	return c.rec.Status
}

// State is the OCI state of the container (runc adds "paused").
func (c *Container) State(ctx context.Context) State {
	st := c.Status()
	s := State{State: c.ociState(specs.ContainerState(st)), Created: c.rec.Created, Rootfs: c.rec.Rootfs, Owner: ""}
	if st == StatusStopped {
		s.Pid = 0
	}
	return s
}

// State is the OCI state plus the fields runc's `state` prints.
type State struct {
	specs.State
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
}

// MarshalJSON flattens the OCI state, as runc prints it.
func (s State) MarshalJSON() ([]byte, error) {
	type flat struct {
		OCIVersion  string            `json:"ociVersion"`
		ID          string            `json:"id"`
		Pid         int               `json:"pid"`
		Status      string            `json:"status"`
		Bundle      string            `json:"bundle"`
		Rootfs      string            `json:"rootfs"`
		Created     time.Time         `json:"created"`
		Annotations map[string]string `json:"annotations,omitempty"`
		Owner       string            `json:"owner"`
	}
	return json.Marshal(flat{s.Version, s.ID, s.Pid, string(s.Status), s.Bundle, s.Rootfs, s.Created, s.Annotations, s.Owner})
}

func wrongState(c *Container, op string, st Status) error {
	return fmt.Errorf("%s container %s: container is %s: %w", op, c.rec.ID, st, errdefs.ErrConflict)
}

// Start runs the process of a created container.
func (c *Container) Start(ctx context.Context) error {
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if st := c.Status(); st != StatusCreated {
		return wrongState(c, "start", st)
	}
	if err := c.releaseInit(); err != nil {
		return fmt.Errorf("start container %s: %w", c.rec.ID, err)
	}
	c.rec.Status = StatusRunning
	if err := c.rec.save(c.dir); err != nil {
		return err
	}
	if c.rec.Poststart {
		spec, err := c.rec.spec()
		if err != nil {
			return err
		}
		st := c.ociState(specs.StateRunning)
		if err := runHooks("poststart", spec.Hooks.Poststart, &st); err != nil {
			// config.md: a failing poststart hook is a warning only.
			log.From(ctx).Warn("poststart hook failed", log.KeyContainer, c.rec.ID, log.KeyErr, err)
		}
	}
	return nil
}

// releaseInit opens the exec fifo for reading, which unblocks the init's
// open for writing; the byte it writes confirms it moved on to exec. A
// pidfd on the init turns "the init died" into an event instead of a hang.
func (c *Container) releaseInit() error {
	path := filepath.Join(c.dir, "exec.fifo")
	pidfd, err := unix.PidfdOpen(c.rec.Pid, 0)
	if err != nil {
		return fmt.Errorf("open init pid %d: %w", c.rec.Pid, err)
	}
	defer unix.Close(pidfd)
	type result struct {
		f   *os.File
		err error
	}
	done := make(chan result, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		done <- result{f, err}
	}()
	exited := make(chan struct{})
	go func() {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				break
			}
		}
		close(exited)
	}()
	var r result
	select {
	case r = <-done:
	case <-exited:
		// The init may have exited because it already ran: /bin/true
		// can exec and exit before our open returns. Unblock our open in
		// case it never met a writer; the byte tells the two apart.
		if w, err := os.OpenFile(path, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		r = <-done
	}
	if r.err != nil {
		return fmt.Errorf("open exec fifo: %w", r.err)
	}
	defer r.f.Close()
	var b [1]byte
	if n, err := r.f.Read(b[:]); n != 1 {
		return fmt.Errorf("init exited before start: %v", err)
	}
	_ = os.Remove(path)
	return nil
}

// Kill sends sig to the init, or with all to every process in the
// container's cgroup.
func (c *Container) Kill(ctx context.Context, sig unix.Signal, all bool) error {
	st := c.Status()
	if st == StatusStopped && !all || st == StatusCreating {
		return wrongState(c, "kill", st)
	}
	if all {
		mgr, err := c.cgroups()
		if err != nil {
			return err
		}
		if err := mgr.Kill(sig); err != nil {
			return fmt.Errorf("kill container %s: %w", c.rec.ID, err)
		}
		return nil
	}
	if err := unix.Kill(c.rec.Pid, sig); err != nil {
		return fmt.Errorf("kill container %s: %w", c.rec.ID, err)
	}
	return nil
}

func (c *Container) cgroups() (cgroups.Manager, error) {
	mgr, err := cgroups.Load(c.rec.Cgroups)
	if err != nil {
		return nil, fmt.Errorf("container %s: cgroups: %w", c.rec.ID, err)
	}
	return mgr, nil
}

// Delete removes a stopped (or created) container: its cgroup and state,
// then the poststop hooks. With force it first kills a running one.
func (c *Container) Delete(ctx context.Context, force bool) error {
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	st := c.Status()
	switch st {
	case StatusRunning, StatusPaused:
		if !force {
			return wrongState(c, "delete", st)
		}
	}
	if st != StatusStopped && c.rec.Pid > 0 {
		if err := c.killAndWait(ctx, st == StatusPaused); err != nil {
			return fmt.Errorf("delete container %s: %w", c.rec.ID, err)
		}
	}
	if c.proc != nil {
		_, _ = c.proc.Wait(ctx) // reap our child
	}
	if len(c.rec.Cgroups) > 0 {
		mgr, err := c.cgroups()
		if err == nil {
			err = mgr.Destroy()
		}
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("delete container %s: %w", c.rec.ID, err)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("delete container %s: %w", c.rec.ID, err)
	}
	if c.rec.Poststop {
		spec, err := c.rec.spec()
		if err != nil {
			return err
		}
		s := c.ociState(specs.StateStopped)
		if err := runHooks("poststop", spec.Hooks.Poststop, &s); err != nil {
			log.From(ctx).Warn("poststop hook failed", log.KeyContainer, c.rec.ID, log.KeyErr, err)
		}
	}
	return nil
}

// killAndWait SIGKILLs the init (and, without a pid namespace to take
// them along, everything in the cgroup) and waits for it to exit.
func (c *Container) killAndWait(ctx context.Context, paused bool) error {
	pidfd, err := unix.PidfdOpen(c.rec.Pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return err
	}
	defer unix.Close(pidfd)
	if start, _, ok := procStart(c.rec.Pid); !ok || start != c.rec.PidStart {
		return nil // the pid was reused
	}
	// Killing the init of its own pid namespace kills every process in it;
	// otherwise (no pid namespace, or a joined one) kill the cgroup too.
	if !c.rec.OwnPidNS || paused {
		if mgr, err := c.cgroups(); err == nil {
			_ = mgr.Kill(unix.SIGKILL)
			if paused {
				_ = mgr.Freeze(false)
			}
		}
	}
	if err := unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return err
	}
	if c.proc != nil {
		_, _ = c.proc.Wait(ctx)
		return nil
	}
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, 10_000)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if fds[0].Revents == 0 {
			return fmt.Errorf("init %d did not exit after SIGKILL: %w", c.rec.Pid, errdefs.ErrUnavailable)
		}
		return nil
	}
}

// Wait waits for the init of a container this process created and returns
// its exit status (128+n for a signal, as a shell reports it).
func (c *Container) Wait(ctx context.Context) (int, error) {
	if c.proc == nil {
		return -1, fmt.Errorf("wait container %s: not a child of this process: %w", c.rec.ID, errdefs.ErrInvalidArgument)
	}
	return c.proc.Wait(ctx)
}

// Pause freezes every process of the container.
func (c *Container) Pause(ctx context.Context) error {
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if st := c.Status(); st != StatusRunning && st != StatusCreated {
		return wrongState(c, "pause", st)
	}
	mgr, err := c.cgroups()
	if err != nil {
		return err
	}
	if err := mgr.Freeze(true); err != nil {
		return fmt.Errorf("pause container %s: %w", c.rec.ID, err)
	}
	c.rec.Status = StatusPaused
	return c.rec.save(c.dir)
}

// Resume thaws a paused container.
func (c *Container) Resume(ctx context.Context) error {
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if st := c.Status(); st != StatusPaused {
		return wrongState(c, "resume", st)
	}
	mgr, err := c.cgroups()
	if err != nil {
		return err
	}
	if err := mgr.Freeze(false); err != nil {
		return fmt.Errorf("resume container %s: %w", c.rec.ID, err)
	}
	c.rec.Status = StatusRunning
	if _, err := os.Stat(filepath.Join(c.dir, "exec.fifo")); err == nil {
		c.rec.Status = StatusCreated
	}
	return c.rec.save(c.dir)
}

// Update writes new resource limits and keeps them in the saved spec.
func (c *Container) Update(ctx context.Context, r *specs.LinuxResources) error {
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if st := c.Status(); st == StatusStopped {
		return wrongState(c, "update", st)
	}
	mgr, err := c.cgroups()
	if err != nil {
		return err
	}
	if err := mgr.Set(r); err != nil {
		return fmt.Errorf("update container %s: %w", c.rec.ID, err)
	}
	spec, err := c.rec.spec()
	if err != nil {
		return err
	}
	spec.Linux.Resources = mergeResources(spec.Linux.Resources, r)
	return c.rec.save(c.dir)
}

func mergeResources(old, upd *specs.LinuxResources) *specs.LinuxResources {
	if old == nil {
		return upd
	}
	m := *old
	if upd.Memory != nil {
		m.Memory = upd.Memory
	}
	if upd.CPU != nil {
		m.CPU = upd.CPU
	}
	if upd.Pids != nil {
		m.Pids = upd.Pids
	}
	if upd.BlockIO != nil {
		m.BlockIO = upd.BlockIO
	}
	if upd.Unified != nil {
		m.Unified = upd.Unified
	}
	return &m
}

// Stats reads the container's cgroup statistics.
func (c *Container) Stats(ctx context.Context) (*cgroups.Stats, error) {
	if st := c.Status(); st == StatusStopped {
		return nil, wrongState(c, "stats of", st)
	}
	mgr, err := c.cgroups()
	if err != nil {
		return nil, err
	}
	return mgr.Stats()
}

// Processes lists the pids in the container's cgroup.
func (c *Container) Processes(ctx context.Context) ([]int, error) {
	mgr, err := c.cgroups()
	if err != nil {
		return nil, err
	}
	return mgr.Pids()
}

// mappedRoot returns the host uid and gid of the container's root when
// the container has a new user namespace.
func mappedRoot(s *specs.Spec) (uid, gid int, ok bool) {
	if !hasNSNew(s, specs.UserNamespace) {
		return 0, 0, false
	}
	uid, gid = -1, -1
	for _, m := range s.Linux.UIDMappings {
		if m.ContainerID == 0 {
			uid = int(m.HostID)
		}
	}
	for _, m := range s.Linux.GIDMappings {
		if m.ContainerID == 0 {
			gid = int(m.HostID)
		}
	}
	return uid, gid, true
}

// lock takes an exclusive flock on the container's directory for one
// state transition and reloads the record under it, so two processes
// cannot both start, or start and delete, the same container.
func (c *Container) lock() (func(), error) {
	fd, err := unix.Open(c.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("container %s: %w", c.rec.ID, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("lock container %s: %w", c.rec.ID, err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock container %s: %w", c.rec.ID, err)
	}
	rec, err := loadRecord(c.dir, c.rec.ID)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if c.rec.Spec != nil && string(rec.RawSpec) == string(c.rec.RawSpec) {
		rec.Spec = c.rec.Spec // keep the decoded spec
	}
	c.rec = rec
	return func() { unix.Close(fd) }, nil
}
