package runtime

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/seccomp"
)

// seccompFilter is a compiled linux.seccomp, loaded just before execve.
type seccompFilter struct {
	f            *seccomp.Filter
	listenerPath string
}

func compileSeccomp(sc *specs.LinuxSeccomp) (*seccompFilter, error) {
	if sc == nil {
		return nil, nil
	}
	f, err := seccomp.Compile(sc)
	if err != nil {
		return nil, fmt.Errorf("compile seccomp: %w", err)
	}
	if f.Notify() && sc.ListenerPath == "" {
		return nil, invalid("seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath")
	}
	return &seccompFilter{f: f, listenerPath: sc.ListenerPath}, nil
}

// load installs the filter on the calling thread (and, with TSYNC, the
// others). A user-notification fd goes to the listener at listenerPath.
func (s *seccompFilter) load(sock *os.File) error {
	if s == nil {
		return nil
	}
	fd, err := s.f.Load()
	if err != nil {
		return fmt.Errorf("load seccomp: %w", err)
	}
	if fd >= 0 {
		defer unix.Close(fd)
		if err := sendNotifyFD(s.listenerPath, fd); err != nil {
			return err
		}
	}
	_ = sock
	return nil
}

func sendNotifyFD(path string, fd int) error {
	_ = path
	_ = fd
	return fmt.Errorf("seccomp listener %s: %w", path, errdefs.ErrNotImplemented)
}
