package runtime

import (
	"encoding/json"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/seccomp"
)

// seccompFilter is a compiled linux.seccomp, loaded just before execve.
type seccompFilter struct {
	f            *seccomp.Filter
	listenerPath string
	metadata     string
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
	return &seccompFilter{f: f, listenerPath: sc.ListenerPath, metadata: sc.ListenerMetadata}, nil
}

// load installs the filter on the calling thread (and, with TSYNC, the
// others). A user-notification fd goes to the seccomp agent over conn, the
// connection the parent made to linux.seccomp.listenerPath, with the
// container process state (config-linux.md "Seccomp").
func (s *seccompFilter) load(conn int, st *specs.State, metadata string) error {
	if s == nil {
		return nil
	}
	fd, err := s.f.Load()
	if err != nil {
		return fmt.Errorf("load seccomp: %w", err)
	}
	if fd < 0 {
		return nil
	}
	defer unix.Close(fd)
	if conn <= 0 {
		return invalid("seccomp: a notify fd but no listener connection")
	}
	ps := specs.ContainerProcessState{Version: specs.Version, Fds: []string{specs.SeccompFdName}, Metadata: metadata}
	if st != nil {
		ps.State = *st
		ps.Pid = st.Pid
	}
	b, err := json.Marshal(ps)
	if err != nil {
		return err
	}
	if err := unix.Sendmsg(conn, b, unix.UnixRights(fd), nil, 0); err != nil {
		return fmt.Errorf("send seccomp notify fd to %s: %w", s.listenerPath, err)
	}
	return nil
}

// dialListener connects to the seccomp agent's socket.
func dialListener(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("connect seccomp listener %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}
