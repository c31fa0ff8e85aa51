package runtime

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/runtime/caps"
)

var rlimitNames = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

var ioprioClasses = map[specs.IOPriorityClass]uintptr{
	specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3,
}

var schedPolicies = map[specs.LinuxSchedulerPolicy]uint32{
	specs.SchedOther: 0, specs.SchedFIFO: 1, specs.SchedRR: 2, specs.SchedBatch: 3,
	specs.SchedISO: 4, specs.SchedIdle: 5, specs.SchedDeadline: 6,
}

var schedFlags = map[specs.LinuxSchedulerFlag]uint64{
	specs.SchedFlagResetOnFork: 0x01, specs.SchedFlagReclaim: 0x02, specs.SchedFlagDLOverrun: 0x04,
	specs.SchedFlagKeepPolicy: 0x08, specs.SchedFlagKeepParams: 0x10, specs.SchedFlagUtilClampMin: 0x20,
	specs.SchedFlagUtilClampMax: 0x40,
}

// preparedProcess is a process ready to exec: everything that can fail has
// been checked before the init reports ready, so `create` fails rather than
// `start`.
type preparedProcess struct {
	p      *specs.Process
	path   string
	filter *seccompFilter
}

func prepareProcess(p *specs.Process, sc *specs.LinuxSeccomp) (*preparedProcess, error) {
	for _, r := range p.Rlimits {
		if err := setRlimit(r); err != nil {
			return nil, err
		}
	}
	if p.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0); err != nil {
			if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
				return nil, fmt.Errorf("set oomScoreAdj %d: lowering it needs CAP_SYS_RESOURCE: %w", *p.OOMScoreAdj, err)
			}
			return nil, fmt.Errorf("set oomScoreAdj %d: %w", *p.OOMScoreAdj, err)
		}
	}
	if p.IOPriority != nil {
		const ioprioWhoProcess = 1
		v := ioprioClasses[p.IOPriority.Class]<<13 | uintptr(p.IOPriority.Priority)
		if _, _, e := unix.RawSyscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, v); e != 0 {
			return nil, fmt.Errorf("set ioPriority %s/%d: %w", p.IOPriority.Class, p.IOPriority.Priority, e)
		}
	}
	if s := p.Scheduler; s != nil {
		attr := unix.SchedAttr{
			Size:     unix.SizeofSchedAttr,
			Policy:   schedPolicies[s.Policy],
			Nice:     s.Nice,
			Priority: uint32(s.Priority),
			Runtime:  s.Runtime,
			Deadline: s.Deadline,
			Period:   s.Period,
		}
		for _, f := range s.Flags {
			attr.Flags |= schedFlags[f]
		}
		if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
			return nil, fmt.Errorf("set scheduler %s: %w", s.Policy, err)
		}
	}
	if p.ApparmorProfile != "" {
		if err := os.WriteFile("/proc/thread-self/attr/apparmor/exec", []byte("exec "+p.ApparmorProfile), 0); err != nil {
			return nil, fmt.Errorf("set apparmor profile %s: %w", p.ApparmorProfile, err)
		}
	}
	if p.SelinuxLabel != "" {
		if err := os.WriteFile("/proc/thread-self/attr/exec", []byte(p.SelinuxLabel), 0); err != nil {
			return nil, fmt.Errorf("set selinux label %s: %w", p.SelinuxLabel, err)
		}
	}
	if err := chdirChecked(p.Cwd); err != nil {
		return nil, err
	}
	path, err := lookPath(p)
	if err != nil {
		return nil, err
	}
	pp := &preparedProcess{p: p, path: path}
	if f, err := compileSeccomp(sc); err != nil {
		return nil, err
	} else {
		pp.filter = f
	}
	return pp, nil
}

// chdirChecked enters the working directory and checks that it is inside
// the container's root. CVE-2024-21626: a leaked host directory fd let
// process.cwd = /proc/self/fd/<n> start the process in the host's
// filesystem; getcwd then reports a path outside the root ("(unreachable)"
// prefix) or fails, and we refuse.
func chdirChecked(cwd string) error {
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("chdir to cwd %s: %w", cwd, err)
	}
	// Ask the kernel, not os.Getwd, which trusts $PWD.
	buf := make([]byte, 4096)
	n, err := unix.Getcwd(buf)
	if err != nil {
		return fmt.Errorf("cwd %s: %w", cwd, err)
	}
	if n == 0 || buf[0] != '/' {
		return invalid("cwd %s resolves outside the container's root", cwd)
	}
	return nil
}

func setRlimit(r specs.POSIXRlimit) error {
	res := rlimitNames[r.Type]
	lim := unix.Rlimit{Cur: r.Soft, Max: r.Hard}
	if err := unix.Prlimit(0, res, &lim, nil); err != nil {
		if errors.Is(err, unix.EPERM) {
			var cur unix.Rlimit
			_ = unix.Prlimit(0, res, nil, &cur)
			return fmt.Errorf("set rlimit %s to soft %d hard %d: above the current hard limit %d, and raising it needs CAP_SYS_RESOURCE: %w",
				r.Type, r.Soft, r.Hard, cur.Max, err)
		}
		return fmt.Errorf("set rlimit %s to soft %d hard %d: %w", r.Type, r.Soft, r.Hard, err)
	}
	return nil
}

// exec becomes the container process: user, no_new_privs, capabilities,
// seccomp last (it may forbid the syscalls before it), close what must not
// leak, then execve on this same locked thread.
func (pp *preparedProcess) exec(sock *os.File, firstFD, listenerFD int, st *specs.State) error {
	p := pp.p
	if err := caps.SetKeepCaps(true); err != nil {
		return err
	}
	// Without no_new_privs, loading a filter needs CAP_SYS_ADMIN in the
	// effective set, which a switch to a non-root uid clears (keepcaps
	// keeps only the permitted set): load it before the user switch, as
	// runc does. The filter then also covers setgroups/setresuid, capset
	// and execve, which any working profile allows.
	if !p.NoNewPrivileges {
		if err := pp.filter.load(listenerFD, st, pp.filterMetadata()); err != nil {
			return err
		}
	}
	if err := setUser(p.User); err != nil {
		return err
	}
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	} else {
		unix.Umask(0o022)
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	if err := caps.Apply(p.Capabilities); err != nil {
		return err
	}
	if p.NoNewPrivileges {
		if err := pp.filter.load(listenerFD, st, pp.filterMetadata()); err != nil {
			return err
		}
	}
	// No host fd may reach the container (CVE-2024-21626 leaked a cgroup
	// directory fd): everything from firstFD up is closed on exec, in one
	// syscall, the sync socket included.
	if err := unix.CloseRange(uint(firstFD), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("close_range: %w", err)
	}
	env := p.Env
	if env == nil {
		env = []string{}
	}
	err := unix.Exec(pp.path, p.Args, env)
	return fmt.Errorf("exec %s: %w", pp.path, err)
}

func (pp *preparedProcess) filterMetadata() string {
	if pp.filter == nil {
		return ""
	}
	return pp.filter.metadata
}
