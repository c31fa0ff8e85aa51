package cgroups

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
)

// layout is where a host mounts its cgroup hierarchies.
type layout struct {
	mode Mode
	// v1 maps each v1 controller to its hierarchy's mount point; controllers
	// mounted together (cpu,cpuacct) share one.
	v1 map[string]string
	// unified is the cgroup2 mount point, "" if none.
	unified string
	// unifiedControllers is what the v2 root's cgroup.controllers lists.
	unifiedControllers []string
}

// v1Controllers are the v1 controllers berth joins. Named hierarchies
// (name=systemd) belong to their manager and are left alone.
var v1Controllers = map[string]bool{
	"cpu": true, "cpuacct": true, "cpuset": true, "memory": true, "devices": true,
	"freezer": true, "net_cls": true, "net_prio": true, "blkio": true,
	"perf_event": true, "hugetlb": true, "pids": true, "rdma": true, "misc": true,
}

var hostOnce struct {
	sync.Once
	l   *layout
	err error
}

// hostLayout reads /proc/self/mountinfo once per process: mounts of cgroup
// hierarchies do not move under a running engine, and New is on the path
// of every container start.
func hostLayout() (*layout, error) {
	hostOnce.Do(func() {
		f, err := os.Open("/proc/self/mountinfo")
		if err != nil {
			hostOnce.err = fmt.Errorf("detect cgroups: %w", err)
			return
		}
		defer f.Close()
		hostOnce.l, hostOnce.err = parseLayout(f, func(p string) ([]byte, error) { return os.ReadFile(p) })
	})
	return hostOnce.l, hostOnce.err
}

// parseLayout reads a mountinfo table (proc(5)); readFile reads the v2
// root's cgroup.controllers, so tests can point it at a fake tree.
func parseLayout(r io.Reader, readFile func(string) ([]byte, error)) (*layout, error) {
	l := &layout{v1: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" && i >= 6 {
				sep = i
				break
			}
		}
		if sep < 0 || len(fields) < sep+4 {
			continue
		}
		fstype, super := fields[sep+1], fields[sep+3]
		mnt := unescape(fields[4])
		switch fstype {
		case "cgroup2":
			if l.unified == "" {
				l.unified = mnt
			}
		case "cgroup":
			for _, opt := range strings.Split(super, ",") {
				if v1Controllers[opt] {
					if _, ok := l.v1[opt]; !ok {
						l.v1[opt] = mnt
					}
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("detect cgroups: read mountinfo: %w", err)
	}
	if l.unified != "" {
		b, err := readFile(filepath.Join(l.unified, "cgroup.controllers"))
		if err != nil {
			return nil, fmt.Errorf("detect cgroups: %w", err)
		}
		l.unifiedControllers = strings.Fields(string(b))
	}
	switch {
	case len(l.v1) > 0 && l.unified != "":
		l.mode = Hybrid
	case len(l.v1) > 0:
		l.mode = Legacy
	case l.unified != "":
		l.mode = Unified
	default:
		return nil, fmt.Errorf("detect cgroups: no cgroup hierarchy is mounted: %w", errdefs.ErrNotFound)
	}
	return l, nil
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// resolve turns linux.cgroupsPath and the container id into a path relative
// to each hierarchy's root.
func resolve(path, name string) (string, error) {
	if path == "" {
		if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
			return "", fmt.Errorf("cgroup name %q: want a container id: %w", name, errdefs.ErrInvalidArgument)
		}
		return Parent + "/" + name, nil
	}
	if strings.ContainsRune(path, 0) {
		return "", fmt.Errorf("cgroupsPath %q: contains NUL: %w", path, errdefs.ErrInvalidArgument)
	}
	if !strings.HasPrefix(path, "/") && strings.Count(path, ":") == 2 {
		// runc's --systemd-cgroup form; only a systemd driver could honor it.
		return "", fmt.Errorf("cgroupsPath %q: slice:prefix:name paths need the systemd cgroup driver, which berth does not have: %w", path, errdefs.ErrNotImplemented)
	}
	if strings.HasPrefix(path, "/") {
		// Clean resolves "..", and an absolute path cannot climb above "/":
		// the result stays under the hierarchy root.
		rel := strings.TrimPrefix(filepath.Clean(path), "/")
		if rel == "" {
			return "", fmt.Errorf("cgroupsPath %q: is the hierarchy root: %w", path, errdefs.ErrInvalidArgument)
		}
		return rel, nil
	}
	rel := filepath.Clean(Parent + "/" + path)
	if !strings.HasPrefix(rel, Parent+"/") {
		return "", fmt.Errorf("cgroupsPath %q: leaves berth's parent cgroup: %w", path, errdefs.ErrInvalidArgument)
	}
	return rel, nil
}

// within tells whether p is root or below it.
func within(root, p string) bool {
	p = filepath.Clean(p)
	return p == root || strings.HasPrefix(p, root+"/")
}
