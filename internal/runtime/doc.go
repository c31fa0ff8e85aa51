// Package runtime turns an OCI bundle (config.json + rootfs) into a running,
// isolated process, as the OCI runtime specification (runtime.md,
// config.md, config-linux.md, runtime-linux.md) describes: create, start,
// state, kill, delete, plus runc's pause, resume, update, exec, ps and stats.
// It is a library the engine calls in-process; cmd/berth-runtime is a thin
// runc-compatible command line over it.
//
// It knows nothing of images, snapshots, networks or the daemon. It owns
// <root>/<id>/ (root defaults to /run/berth-runtime): state.json, written
// atomically (temp file, fsync, rename), and exec.fifo while the container
// is "created". Cgroups are made and removed through internal/cgroups, whose
// default parent is berth's own, never the caller's cgroup; since that
// default is named after the id alone, a create whose cgroup already holds
// processes (the same id under another root) fails with ErrAlreadyExists.
// State transitions take a flock on <root>/<id>, so concurrent commands on
// one container serialize.
//
// # API
//
//	func New(root string) (*Runtime, error)
//	func (r *Runtime) Create(ctx, id string, opts CreateOptions) (*Container, error)
//	func (r *Runtime) Load(ctx, id string) (*Container, error)     // errdefs.ErrNotFound
//	func (r *Runtime) List(ctx) ([]*Container, error)
//	func (c *Container) Start(ctx) error                           // errdefs.ErrConflict unless created
//	func (c *Container) State(ctx) State                           // OCI state + rootfs, created, owner
//	func (c *Container) Status() Status
//	func (c *Container) Kill(ctx, sig unix.Signal, all bool) error
//	func (c *Container) Delete(ctx, force bool) error              // ErrConflict if running and !force
//	func (c *Container) Wait(ctx) (int, error)                     // only for a Container this process created
//	func (c *Container) Pause(ctx) / Resume(ctx) error
//	func (c *Container) Update(ctx, *specs.LinuxResources) error
//	func (c *Container) Stats(ctx) (*cgroups.Stats, error)
//	func (c *Container) Processes(ctx) ([]int, error)
//	func (c *Container) ID() / Pid() / Bundle() / Spec() / Created() / CgroupPaths()
//	func (c *Container) Exec(ctx, ExecOptions) (*Process, error)   // (*Process).Wait, Signal, Pid
//	func LoadSpec(bundle string) (*specs.Spec, error)
//	func Features() features.Features
//	func IsInit() bool; func Init()                               // the re-exec'd init entry point
//
// A binary embedding the runtime must call Init when IsInit is true, from
// an init function or a package variable initialiser (the main thread),
// and should blank-import internal/runtime/nsenter (this package imports it,
// so linking the package is enough). Exec makes the calling process a child
// subreaper (PR_SET_CHILD_SUBREAPER) so an exec'd process that nsenter
// forked into the container's pid namespace can still be reaped by Wait.
//
// # The init
//
// The container's init is this same binary re-executed with clone flags for
// every new namespace; sync.go draws the message ladder between parent and
// init. The init sets up the rootfs in its new mount namespace, reports
// ready, blocks opening exec.fifo for writing until `start` opens it for
// reading, then finishes the process setup and execs. Namespaces given by
// path for mount, user, pid and time need a single-threaded process and are
// joined by nsenter's C constructor before the Go runtime starts (Go has
// several threads before main, and setns(2) refuses those joins in a
// multithreaded process); net, uts, ipc and cgroup namespaces given by path
// are joined by the init's locked thread, which later execs.
//
// The init is exec'd through open_tree(OPEN_TREE_CLONE) of this binary made
// read-only with mount_setattr: a detached mount that appears in no mount
// table, so /proc/<init>/exe cannot be opened for writing
// (CVE-2019-5736), without copying the binary. A container holding
// CAP_SYS_ADMIN in the host's user namespace (fully privileged) could in
// principle make that mount writable again; a sealed memfd would resist
// that too, at the cost of a copy per start. Every fd from 3 up (after
// --preserve-fds) is closed on exec, and the working directory is checked
// with getcwd(2) to be inside the root (CVE-2024-21626).
//
// Cgroups: the manager creates the cgroups and writes limits before the
// init starts; on cgroup v2 the init is cloned straight into its cgroup
// (CLONE_INTO_CGROUP), on v1 it moves its own thread by writing "0" to each
// hierarchy's tasks file. Both avoid the global threadgroup rwsem that a
// pid written to cgroup.procs takes (an RCU grace period, milliseconds). A
// container with a new user namespace is moved by the parent instead.
//
// # The spec: implemented
//
//   - ociVersion 1.x; root.path (relative to the bundle or absolute),
//     root.readonly.
//   - mounts, in order, destinations resolved inside the rootfs with
//     openat2(RESOLVE_IN_ROOT) and created as directories or files: bind and
//     rbind (source relative to the bundle or absolute; ro, nosuid, nodev,
//     noexec and the other flags by remount, keeping the kernel's locked
//     flags), propagation options (private, slave, shared, unbindable and
//     their r* forms), the recursive attributes rro, rrw, rnosuid, rsuid,
//     rnodev, rdev, rnoexec, rexec, rnodiratime, rdiratime, rnosymfollow,
//     rsymfollow, rrelatime, rnoatime, rstrictatime (mount_setattr with
//     AT_RECURSIVE), proc, sysfs, tmpfs (size, mode), devpts, mqueue, any
//     other type with its options as data, cgroup/cgroup2 (v2: one cgroup2
//     mount; v1/hybrid: a tmpfs with one mount per hierarchy, namespaced by
//     the cgroup namespace, or bind mounts of the container's own cgroups
//     without one).
//   - linux.rootfsPropagation; pivot_root (and chroot with NoPivot).
//   - /dev: null, zero, full, random, urandom, tty, the /dev/fd, stdin,
//     stdout, stderr, ptmx (and core when /proc/kcore exists) symlinks when
//     the spec mounts a fresh /dev; linux.devices (c, u, b, p; mode, uid,
//     gid); bind-mounted from the host in a user namespace. Device cgroup
//     rules for the default devices are added, as runc does.
//   - linux.maskedPaths, linux.readonlyPaths.
//   - process: args, env, cwd, user (uid, gid, umask, additionalGids),
//     terminal (pty from the container's devpts, master sent to
//     --console-socket; consoleSize), capabilities (five sets, via
//     runtime/caps), rlimits (a value above the hard limit fails naming the
//     limit and CAP_SYS_RESOURCE), noNewPrivileges, oomScoreAdj (lowering
//     it fails clearly without CAP_SYS_RESOURCE), ioPriority, scheduler
//     (sched_setattr), apparmorProfile and selinuxLabel (applied when the
//     host runs that LSM, an ErrInvalidArgument when it does not).
//   - hostname, domainname, linux.sysctl, linux.personality (LINUX,
//     LINUX32).
//   - linux.namespaces pid, network, mount, ipc, uts, user, cgroup, time,
//     each new or joined by path (type checked with NS_GET_NSTYPE at
//     create); uidMappings/gidMappings; timeOffsets.
//   - linux.seccomp via internal/seccomp, loaded last (before dropping
//     capabilities when noNewPrivileges is false, as it then needs
//     CAP_SYS_ADMIN); with SCMP_ACT_NOTIFY the notify fd and the container
//     process state go to listenerPath (with listenerMetadata), over a
//     connection the parent makes before the init leaves the host's mount
//     namespace; for exec'd processes too.
//   - linux.resources and linux.cgroupsPath via internal/cgroups.
//   - hooks: prestart and createRuntime (runtime namespace, after the mounts,
//     before pivot_root), createContainer (container mount namespace,
//     before pivot_root), startContainer (container, before exec),
//     poststart (runtime, after start; failure is a warning), poststop
//     (after delete; failure is a warning); state JSON on stdin, args, env,
//     timeout.
//   - annotations are kept in the state.
//
// # The spec: rejected with a clear error
//
//   - linux.intelRdt, linux.memoryPolicy, linux.netDevices,
//     process.execCPUAffinity (errdefs.ErrNotImplemented).
//   - linux.personality flags; unknown namespace types, rlimit types,
//     ioPriority classes, scheduler policies, capability names
//     (errdefs.ErrInvalidArgument).
//   - linux.mountLabel without SELinux on the host.
//   - SCMP_ACT_NOTIFY without linux.seccomp.listenerPath.
//   - Mount options ratime, rnorelatime, rnostrictatime, idmap, and mounts
//     with uidMappings/gidMappings (errdefs.ErrNotImplemented).
//   - --systemd-cgroup (no systemd here; the CLI says so).
package runtime
