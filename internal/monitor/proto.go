package monitor

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Files in the state directory.
const (
	configFile = "config.json"
	exitFile   = "exit.json"
	sockName   = "m.sock"
	consoleSk  = "c.sock"
	logName    = "monitor.log"
)

// argv0 is the monitor's os.Args[0]; with envStateDir it tells a monitor
// from any other run of the binary.
const (
	argv0       = "berth-monitor"
	envStateDir = "_BERTH_MONITOR_STATE"
	envWarm     = "_BERTH_MONITOR_WARM" // an idle monitor of a Pool
)

// syncMsg travels on the start socketpair.
type syncMsg struct {
	StateDir string `json:"stateDir,omitempty"` // to an idle monitor of a Pool
	Pid      int    `json:"pid,omitempty"`
	Start    bool   `json:"start,omitempty"`
	Running  bool   `json:"running,omitempty"`
	Error    string `json:"error,omitempty"`
	Kind     string `json:"kind,omitempty"` // errKind of Error
}

// request is the first line of an m.sock connection.
type request struct {
	Op     string `json:"op"` // info, wait, resize, attach
	Height uint   `json:"h,omitempty"`
	Width  uint   `json:"w,omitempty"`
	Stdin  bool   `json:"stdin,omitempty"`
	Stdout bool   `json:"stdout,omitempty"`
	Stderr bool   `json:"stderr,omitempty"`
	Owner  bool   `json:"owner,omitempty"` // wait: the caller deletes the runtime's state
}

// reply is the monitor's answer line.
type reply struct {
	Pid   int    `json:"pid,omitempty"`
	Self  int    `json:"self,omitempty"` // the monitor's own pid
	Tty   bool   `json:"tty,omitempty"`
	Exit  *Exit  `json:"exit,omitempty"`
	Error string `json:"error,omitempty"`
}

// Error kinds crossing the process boundary: the runtime's init reports
// its errors as text (internal/runtime's sync socket), so the classes a
// caller needs are recovered here from that text and sent as a kind.
const (
	kindNotFound      = "notfound"
	kindInvalid       = "invalid"
	kindConflict      = "conflict"
	kindExists        = "exists"
	kindCmdNotFound   = "cmd-notfound"
	kindCmdPermission = "cmd-permission"
)

// ErrCommandNotFound and ErrCommandNotExecutable classify a start that
// failed because the container's command does not exist or cannot be
// executed; docker answers 127 and 126 for them.
var (
	ErrCommandNotFound      = errors.New("executable file not found")
	ErrCommandNotExecutable = errors.New("permission denied")
)

// errKind classifies err for the daemon side.
func errKind(err error) string {
	msg := err.Error()
	// The runtime names the command as runc does (exec: "cmd": …) or as
	// Go's exec package does (exec "cmd": …).
	execOf := strings.Contains(msg, `exec: "`) || strings.Contains(msg, `exec "`)
	switch {
	case execOf && (strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory")):
		return kindCmdNotFound
	case execOf && (strings.Contains(msg, "permission denied") || strings.Contains(msg, "is a directory")):
		return kindCmdPermission
	case errors.Is(err, errdefs.ErrNotFound):
		return kindNotFound
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return kindInvalid
	case errors.Is(err, errdefs.ErrConflict):
		return kindConflict
	case errors.Is(err, errdefs.ErrAlreadyExists):
		return kindExists
	}
	return ""
}

// remoteError is an error the monitor reported, with its class restored.
type remoteError struct {
	msg   string
	class error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.class }

func fromKind(msg, kind string) error {
	var class error
	switch kind {
	case kindNotFound:
		class = errdefs.ErrNotFound
	case kindInvalid:
		class = errdefs.ErrInvalidArgument
	case kindConflict:
		class = errdefs.ErrConflict
	case kindExists:
		class = errdefs.ErrAlreadyExists
	case kindCmdNotFound:
		class = ErrCommandNotFound
	case kindCmdPermission:
		class = ErrCommandNotExecutable
	}
	return &remoteError{msg: msg, class: class}
}

// ClassifyExecError gives a runtime error about starting a process the
// class ErrCommandNotFound or ErrCommandNotExecutable when its text says
// so (the runtime's init reports errors as text). Others come back as
// they are.
func ClassifyExecError(err error) error {
	if err == nil {
		return nil
	}
	switch errKind(err) {
	case kindCmdNotFound:
		return fmt.Errorf("%w: %w", err, ErrCommandNotFound)
	case kindCmdPermission:
		return fmt.Errorf("%w: %w", err, ErrCommandNotExecutable)
	}
	return err
}

// sockPath returns a path by which this process can reach name in dir.
// A unix socket path must fit sun_path (108 bytes); a state directory deep
// in a temporary tree may not, so a long one goes through
// /proc/self/fd/<dirfd>, which the caller closes with the returned
// function after bind or connect.
func sockPath(dir, name string) (string, func(), error) {
	p := filepath.Join(dir, name)
	if len(p) < 100 {
		return p, func() {}, nil
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("open %s: %w", dir, err)
	}
	return "/proc/self/fd/" + strconv.Itoa(fd) + "/" + name, func() { unix.Close(fd) }, nil
}

// dial connects to the monitor of stateDir and sends req. A monitor that
// is not there is errdefs.ErrNotFound.
func dial(stateDir string, req request) (*net.UnixConn, *bufio.Reader, error) {
	p, done, err := sockPath(stateDir, sockName)
	if err != nil {
		return nil, nil, err
	}
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: p, Net: "unix"})
	done()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.ENOENT) {
			return nil, nil, fmt.Errorf("monitor %s: %w", stateDir, errdefs.ErrNotFound)
		}
		return nil, nil, fmt.Errorf("monitor %s: %w", stateDir, err)
	}
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("monitor %s: %w", stateDir, errdefs.ErrNotFound)
	}
	return c, bufio.NewReader(c), nil
}

func readReply(r *bufio.Reader) (reply, error) {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return reply{}, err
	}
	var rep reply
	if err := json.Unmarshal(line, &rep); err != nil {
		return reply{}, fmt.Errorf("monitor reply: %w", err)
	}
	return rep, nil
}

// writeFileAtomic writes b to name through a temp file and a rename, so
// a reader sees the old file or the new one, never part of one. There is
// no fsync: the state directory is run-time state (under the exec root,
// /run by default), which a reboot clears and no monitor outlives, so a
// flush to disk protects nothing there, and it cost a few milliseconds on
// every start and exit where the exec root is on a disk.
func writeFileAtomic(name string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name))
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// Exit is how a container ended.
type Exit struct {
	Code      int       `json:"code"`             // exit status, or 128+n for signal n
	Signal    string    `json:"signal,omitempty"` // e.g. "SIGKILL" when a signal ended it
	OOMKilled bool      `json:"oomKilled,omitempty"`
	At        time.Time `json:"at"`
}

// ReadExit reads the exit status the monitor of stateDir wrote;
// errdefs.ErrNotFound if there is none (still running, or the monitor died
// before the container did).
func ReadExit(stateDir string) (Exit, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, exitFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Exit{}, fmt.Errorf("exit status in %s: %w", stateDir, errdefs.ErrNotFound)
		}
		return Exit{}, fmt.Errorf("exit status in %s: %w", stateDir, err)
	}
	var e Exit
	if err := json.Unmarshal(b, &e); err != nil {
		return Exit{}, fmt.Errorf("exit status in %s: %w", stateDir, err)
	}
	return e, nil
}
