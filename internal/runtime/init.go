package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// InitArg is os.Args[1] of a re-exec'd container init. A binary that
// embeds the runtime checks for it first thing and calls Init:
//
//	if len(os.Args) > 1 && os.Args[1] == runtime.InitArg { runtime.Init() }
const InitArg = "init"

// envSyncFD names the fd of the sync socket in the init's environment.
const envSyncFD = "_BERTH_INIT_SYNC"

// IsInit says whether this process was started as a container init.
func IsInit() bool {
	return len(os.Args) > 1 && os.Args[1] == InitArg && os.Getenv(envSyncFD) != ""
}

// Init is the container's init: it reads its config from the parent, sets
// up the container and execs the process. It never returns. Call it from an
// init function, which runs on the main thread: the time namespace offsets
// are written through /proc/self, which names the main thread.
//
// Everything runs on one locked OS thread: capabilities, setuid and the
// per-thread namespace joins belong to a thread, and execve keeps only the
// calling thread's credentials.
func Init() {
	goruntime.LockOSThread()
	fd, err := strconv.Atoi(os.Getenv(envSyncFD))
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth init: no sync fd")
		os.Exit(255)
	}
	sock := os.NewFile(uintptr(fd), "sync")
	err = initMain(sock)
	// initMain returns only on error: report it to the parent, or, once
	// the parent has gone (after create), on the container's stderr, the
	// only channel left.
	if send(sock, message{Type: msgError, Error: err.Error()}) != nil {
		fmt.Fprintln(os.Stderr, "berth-runtime init:", err)
	}
	os.Exit(1)
}

func initMain(sock *os.File) error {
	m, _, err := recv(sock)
	if err != nil {
		return err
	}
	if m.Type != msgConfig || m.Config == nil {
		return fmt.Errorf("init: expected config, got %q", m.Type)
	}
	cfg := m.Config
	if cfg.Process == nil && cfg.Spec != nil {
		cfg.Process = cfg.Spec.Process
	}
	if cfg.Exec {
		return execInit(sock, cfg)
	}
	return containerInit(sock, cfg)
}

func containerInit(sock *os.File, cfg *initConfig) error {
	s := cfg.Spec
	for _, dir := range cfg.MoveSelf {
		// "0" moves the calling thread, the one that will execve.
		if err := os.WriteFile(filepath.Join(dir, "tasks"), []byte("0"), 0); err != nil {
			return fmt.Errorf("enter cgroup %s: %w", dir, err)
		}
	}
	if err := joinPerThread(cfg.JoinNS); err != nil {
		return err
	}
	// The cgroup namespace is unshared here, after the parent moved us into
	// the container's cgroup, so that cgroup becomes the namespace's root.
	if cfg.NewCgroupNS {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("unshare cgroup namespace: %w", err)
		}
	}
	r := &rootfsSetup{cfg: cfg, rootfd: -1}
	if err := r.prepare(); err != nil {
		return err
	}
	if cfg.Hooks {
		if err := send(sock, message{Type: msgHooks}); err != nil {
			return err
		}
		m, _, err := recv(sock)
		if err != nil {
			return err
		}
		if m.Type != msgHooksDone {
			return fmt.Errorf("init: expected hooks-done, got %q %s", m.Type, m.Error)
		}
	}
	if s.Hooks != nil {
		if err := runHooks("createContainer", s.Hooks.CreateContainer, cfg.State); err != nil {
			return err
		}
	}
	if r.rootfd >= 0 {
		unix.Close(r.rootfd)
	}
	if err := r.pivot(); err != nil {
		return err
	}
	p := cfg.Process
	if p.Terminal {
		if err := setupTerminal(sock, p); err != nil {
			return err
		}
	} else if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("set hostname: %w", err)
		}
	}
	if s.Domainname != "" {
		if err := unix.Setdomainname([]byte(s.Domainname)); err != nil {
			return fmt.Errorf("set domainname: %w", err)
		}
	}
	for k, v := range s.Linux.Sysctl {
		if err := writeSysctl(k, v); err != nil {
			return err
		}
	}
	if err := finishRootfs(s); err != nil {
		return err
	}
	if !cfg.NoNewKeyring {
		if err := joinSessionKeyring(cfg.ID); err != nil {
			return err
		}
	}
	if cfg.NewTimeNS {
		if err := newTimeNS(s.Linux.TimeOffsets); err != nil {
			return err
		}
	}
	if s.Linux.Personality != nil {
		if err := setPersonality(s.Linux.Personality); err != nil {
			return err
		}
	}
	ps, err := prepareProcess(p, s.Linux.Seccomp)
	if err != nil {
		return err
	}
	if err := send(sock, message{Type: msgReady}); err != nil {
		return err
	}
	// Block until `start` opens the fifo for reading. The fifo was opened
	// O_PATH on the host side before pivot_root; reopening it through
	// /proc/self/fd needs no path inside the container.
	fifo, err := unix.Open(fdPath(cfg.FifoFD), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	if _, err := unix.Write(fifo, []byte{0}); err != nil {
		return fmt.Errorf("write exec fifo: %w", err)
	}
	unix.Close(fifo)
	unix.Close(cfg.FifoFD)
	if s.Hooks != nil {
		if st := cfg.State; st != nil {
			st.Status = specs.StateRunning
		}
		if err := runHooks("startContainer", s.Hooks.StartContainer, cfg.State); err != nil {
			return err
		}
	}
	return ps.exec(sock, cfg.FirstFD, cfg.ListenerFD, cfg.State)
}

// execInit runs in a process that nsenter already placed in the
// container's namespaces (or that was cloned into them): finish the process
// setup and exec at once.
func execInit(sock *os.File, cfg *initConfig) error {
	if err := joinPerThread(cfg.JoinNS); err != nil {
		return err
	}
	p := cfg.Process
	if p.Terminal {
		if err := setupTerminal(sock, p); err != nil {
			return err
		}
	} else if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	var sc *specs.LinuxSeccomp
	if cfg.Spec.Linux != nil {
		sc = cfg.Spec.Linux.Seccomp
	}
	ps, err := prepareProcess(p, sc)
	if err != nil {
		return err
	}
	if err := send(sock, message{Type: msgReady}); err != nil {
		return err
	}
	return ps.exec(sock, cfg.FirstFD, cfg.ListenerFD, cfg.State)
}

// joinPerThread joins namespaces that a single thread may enter on its own
// (net, uts, ipc, cgroup): the locked init thread joins them and later
// execs, so the process lands in them. Mount, user and pid namespaces need
// a single-threaded process and are joined by nsenter before Go starts.
func joinPerThread(nss []specs.LinuxNamespace) error {
	for _, ns := range nss {
		fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s namespace %s: %w", ns.Type, ns.Path, err)
		}
		err = unix.Setns(fd, int(nsFlags[ns.Type]))
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("join %s namespace %s: %w", ns.Type, ns.Path, err)
		}
	}
	return nil
}

func writeSysctl(k, v string) error {
	if strings.Contains(k, "..") || strings.Contains(k, "/") {
		return invalid("sysctl %q", k)
	}
	p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
	if err := os.WriteFile(p, []byte(v), 0); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
	}
	return nil
}

// joinSessionKeyring gives the container its own session keyring, so it
// cannot read the host's keys (runc does the same; --no-new-keyring skips
// it).
func joinSessionKeyring(id string) error {
	_, err := unix.KeyctlJoinSessionKeyring("_ses." + id)
	if err != nil && !errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("join session keyring: %w", err)
	}
	return nil
}

// newTimeNS creates the container's time namespace. Offsets can only be
// written before a process enters it, and clone(CLONE_NEWTIME) enters at
// once; so the init unshares (which only affects its children and its next
// execve) and writes the offsets first.
func newTimeNS(offs map[string]specs.LinuxTimeOffset) error {
	if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
		return fmt.Errorf("unshare time namespace: %w", err)
	}
	var b strings.Builder
	for clock, o := range offs {
		if clock != "monotonic" && clock != "boottime" {
			return invalid("linux.timeOffsets: unknown clock %q", clock)
		}
		fmt.Fprintf(&b, "%s %d %d\n", clock, o.Secs, o.Nanosecs)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := os.WriteFile("/proc/self/timens_offsets", []byte(b.String()), 0); err != nil {
		return fmt.Errorf("write time offsets: %w", err)
	}
	return nil
}

func setPersonality(p *specs.LinuxPersonality) error {
	var v uintptr
	switch p.Domain {
	case specs.PerLinux:
		v = 0
	case specs.PerLinux32:
		v = 0x0008
	default:
		return invalid("linux.personality: unknown domain %q", p.Domain)
	}
	if len(p.Flags) > 0 {
		return invalid("linux.personality.flags %v: not supported", p.Flags)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, v, 0, 0); e != 0 {
		return fmt.Errorf("personality %s: %w", p.Domain, e)
	}
	return nil
}

// lookPath resolves the process binary inside the container with the
// process's own PATH, before start, so a missing binary fails create.
func lookPath(p *specs.Process) (string, error) {
	name := p.Args[0]
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", fmt.Errorf("exec: %q: %w", name, err)
		}
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range p.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		f := filepath.Join(dir, name)
		if executable(f) == nil {
			return f, nil
		}
	}
	return "", fmt.Errorf("exec: %q: %w", name, exec.ErrNotFound)
}

// executable answers ahead of time what execve(2) would for path, so that
// the engine can tell "not found" (127) from "cannot run" (126) before the
// container's process is gone.
func executable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return unix.EISDIR
	}
	if st.Mode()&0o111 == 0 {
		return unix.EACCES
	}
	return nil
}
