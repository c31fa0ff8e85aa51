package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// kernelError keeps the errno's own text but also matches an errdefs class.
type kernelError struct {
	class error
	errno error
}

func (e *kernelError) Error() string   { return e.errno.Error() }
func (e *kernelError) Unwrap() []error { return []error{e.class, e.errno} }

func classify(err error) error {
	var class error
	switch {
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ERANGE), errors.Is(err, unix.EOVERFLOW):
		class = errdefs.ErrInvalidArgument
	case errors.Is(err, unix.ENOENT):
		class = errdefs.ErrNotImplemented
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		class = errdefs.ErrForbidden
	case errors.Is(err, unix.EBUSY):
		class = errdefs.ErrConflict
	case errors.Is(err, unix.ENOSPC):
		class = errdefs.ErrUnavailable
	default:
		return err
	}
	return &kernelError{class: class, errno: err}
}

// writeFile writes one value to a cgroup control file. cgroupfs takes a
// value per write(2), so this is one open, one write, one close; the file
// must exist (creating one in cgroupfs is never right).
func writeFile(dir, name, value string) error {
	p := filepath.Join(dir, name)
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, classify(err))
	}
	defer unix.Close(fd)
	for {
		_, err = unix.Write(fd, []byte(value))
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, classify(err))
	}
	return nil
}

func readFile(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("read %s: %w", p, classify(err))
	}
	return strings.TrimSpace(string(b)), nil
}

func exists(dir, name string) bool {
	return unix.Access(filepath.Join(dir, name), unix.F_OK) == nil
}

// parseUint reads a counter; "max" (v2) means no limit.
func parseUint(s string) (uint64, error) {
	if s == "max" {
		return math.MaxUint64, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		// v1 reports some unset values as -1.
		if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
			return math.MaxUint64, nil
		}
		return 0, err
	}
	return v, nil
}

func readUint(dir, name string) (uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return 0, err
	}
	v, err := parseUint(s)
	if err != nil {
		return 0, fmt.Errorf("read %s: %q: %w", filepath.Join(dir, name), s, errdefs.ErrInvalidArgument)
	}
	return v, nil
}

// readKV reads a flat keyed file ("key value" per line).
func readKV(dir, name string) (map[string]uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if v, err := parseUint(f[1]); err == nil {
			out[f[0]] = v
		}
	}
	return out, nil
}

// mkdirs creates dir and the missing directories between root and it, and
// returns the ones it created, top first. The common case (parent exists)
// costs one mkdir.
func mkdirs(root, dir string) ([]string, error) {
	if !within(root, dir) || dir == root {
		return nil, fmt.Errorf("create cgroup %s: not below %s: %w", dir, root, errdefs.ErrInvalidArgument)
	}
	// Another container's Destroy may remove an empty parent between our
	// mkdir of it and of its child: start over a few times.
	for range 4 {
		created, err := mkdirsOnce(root, dir)
		if err == nil || !errors.Is(err, unix.ENOENT) {
			return created, err
		}
		for i := len(created) - 1; i >= 0; i-- {
			_ = unix.Rmdir(created[i])
		}
	}
	return mkdirsOnce(root, dir)
}

func mkdirsOnce(root, dir string) ([]string, error) {
	err := unix.Mkdir(dir, 0o755)
	switch {
	case err == nil:
		return []string{dir}, nil
	case errors.Is(err, unix.EEXIST):
		return nil, nil
	case errors.Is(err, unix.ENOENT) && filepath.Dir(dir) != root:
		created, err := mkdirsOnce(root, filepath.Dir(dir))
		if err != nil {
			return created, err
		}
		if err := unix.Mkdir(dir, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return created, fmt.Errorf("create cgroup %s: %w", dir, classify(err))
		}
		return append(created, dir), nil
	}
	return nil, fmt.Errorf("create cgroup %s: %w", dir, classify(err))
}

// destroyGrace is how long Destroy waits, in all, for processes to leave.
const destroyGrace = time.Second

// rmdirRetry removes one cgroup directory. A cgroup whose last process is
// still exiting refuses rmdir with EBUSY for a moment (the task leaves its
// css_set only late in do_exit), so retry until deadline.
func rmdirRetry(dir string, deadline time.Time) error {
	delay := time.Millisecond
	for {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", dir, classify(err))
		}
		time.Sleep(delay)
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// removeTree removes dir and every cgroup below it, deepest first. Files in
// a cgroup directory are the kernel's and go with it. One deadline covers a
// whole Destroy, so a cgroup that still holds a live process fails it in
// about destroyGrace, not that much per hierarchy.
func removeTree(dir string, deadline time.Time) error {
	// Try the common case first: a leaf with no children and no processes.
	err := unix.Rmdir(dir)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY) {
		return fmt.Errorf("remove cgroup %s: %w", dir, classify(err))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name()), deadline); err != nil {
				return err
			}
		}
	}
	return rmdirRetry(dir, deadline)
}

// removeParents removes the empty ancestors of dir that berth owns: those
// below <root>/berth (and that directory itself), plus any in created,
// which Apply made in this process. It stops at the first that is not
// empty: another container still uses it.
func removeParents(root, dir string, created []string) {
	own := filepath.Join(root, Parent)
	for p := filepath.Dir(dir); within(root, p) && p != root; p = filepath.Dir(p) {
		if !within(own, p) && !contains(created, p) {
			return
		}
		if err := unix.Rmdir(p); err != nil && !errors.Is(err, unix.ENOENT) {
			return
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// readPids lists the pids in dir's cgroup.procs and in every cgroup below.
func readPids(dir string) ([]int, error) {
	var pids []int
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != dir && errors.Is(err, fs.ErrNotExist) {
				return nil // a child cgroup went away while we walked
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		f, err := os.Open(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			if p != dir && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if pid, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil {
				pids = append(pids, pid)
			}
		}
		return sc.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list pids of %s: %w", dir, err)
	}
	return pids, nil
}

// signalAll sends sig to every pid; a process that exited meanwhile is fine.
func signalAll(pids []int, sig unix.Signal) error {
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("signal %d: %w", pid, err)
		}
	}
	return nil
}

// pollUntil calls check until it reports done, backing off from 1ms to
// 10ms, for at most timeout.
func pollUntil(timeout time.Duration, check func(attempt int) (bool, error)) (bool, error) {
	delay := time.Millisecond
	deadline := time.Now().Add(timeout)
	for i := 0; ; i++ {
		done, err := check(i)
		if err != nil || done {
			return done, err
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		time.Sleep(delay)
		delay = min(2*delay, 10*time.Millisecond)
	}
}

// freezable is a manager that can freeze and list its processes.
type freezable interface {
	Freeze(frozen bool) error
	frozen() (bool, error)
	Pids() ([]int, error)
}

// signalFrozen freezes the cgroup so that no process can fork past the
// signal, signals every process, and thaws. A container that was frozen
// before stays frozen, except for SIGKILL: tasks in a v1-frozen cgroup act
// on it only once thawed, and a killed container has nothing to pause.
func signalFrozen(f freezable, sig unix.Signal) error {
	was, err := f.frozen()
	if err != nil {
		return err
	}
	if err := f.Freeze(true); err != nil {
		return err
	}
	pids, err := f.Pids()
	if err == nil {
		err = signalAll(pids, sig)
	}
	if !was || sig == unix.SIGKILL {
		if terr := f.Freeze(false); err == nil {
			err = terr
		}
	}
	return err
}
