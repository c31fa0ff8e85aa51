package nsenter

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// envFD names the environment variable that tells the constructor which fd
// carries its config. The constructor removes it before the Go runtime
// starts.
const envFD = "_BERTH_NSENTER_FD"

// Config says which namespaces the child enters before its Go code starts.
type Config struct {
	// Namespaces lists one entry per type. With a Path the child joins
	// that namespace (setns); without one it creates a new one (unshare),
	// as linux.namespaces in the OCI spec means.
	Namespaces []specs.LinuxNamespace
	// UIDMappings and GIDMappings are written by the parent (Session.Wait)
	// when the child creates a new user namespace; they are required then
	// and refused otherwise.
	UIDMappings []specs.LinuxIDMapping
	GIDMappings []specs.LinuxIDMapping
	// TimeOffsets ("monotonic", "boottime") are written into a new time
	// namespace before any process enters it.
	TimeOffsets map[string]specs.LinuxTimeOffset
}

var cloneFlags = map[specs.LinuxNamespaceType]uint32{
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// The wire format, parent to child, in native byte order:
//
//	header  magic u32 ("BNS1"), length u32 of what follows (at most 64 KiB)
//	record  type u16, reserved u16, length u32, data
//	  join     type 1: clone flag u32 of the namespace, then its path
//	  unshare  type 2: clone flags u32 of the namespaces to create
//	  offsets  type 3: the text for /proc/self/timens_offsets
//
// and child to parent, a message of type u32, value i32, length u32, text:
//
//	parent (Session.Wait)                 child (constructor, before Go)
//	  config ─────────────────────────────>  open every path, setns user, others, mount
//	                                         unshare user
//	        <──────────────── usermap (pid)
//	  write /proc/pid/{uid,gid}_map
//	  ack (one byte, 0 = done) ───────────>  unshare the others, write time offsets,
//	                                         become root of the user namespace
//	                                         fork if pid or time namespace
//	        <──────────────── pid (final)    (the intermediate exits)
//	        <──────────────── EOF            the final process closes the fd, Go starts
//	  (any step) <─────────── error (errno, text); the child exits 1
const (
	wireMagic    = 0x424e5331
	wireMaxLen   = 64 << 10
	recJoin      = 1
	recUnshare   = 2
	recOffsets   = 3
	msgUserMap   = 1
	msgPID       = 2
	msgError     = 3
	msgHeaderLen = 12
	msgMaxText   = 4096
)

func (c Config) encode() ([]byte, error) {
	var body []byte
	record := func(typ uint16, data []byte) {
		body = binary.NativeEndian.AppendUint16(body, typ)
		body = binary.NativeEndian.AppendUint16(body, 0)
		body = binary.NativeEndian.AppendUint32(body, uint32(len(data)))
		body = append(body, data...)
	}
	var unshare uint32
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range c.Namespaces {
		flag, ok := cloneFlags[ns.Type]
		if !ok {
			return nil, fmt.Errorf("unknown namespace type %q: %w", ns.Type, errdefs.ErrInvalidArgument)
		}
		if seen[ns.Type] {
			return nil, fmt.Errorf("%s namespace listed twice: %w", ns.Type, errdefs.ErrInvalidArgument)
		}
		seen[ns.Type] = true
		if ns.Path == "" {
			unshare |= flag
			continue
		}
		// A relative path would be resolved against whatever directory
		// the child happens to start in.
		if !strings.HasPrefix(ns.Path, "/") || strings.ContainsRune(ns.Path, 0) {
			return nil, fmt.Errorf("%s namespace path %q is not absolute: %w", ns.Type, ns.Path, errdefs.ErrInvalidArgument)
		}
		record(recJoin, append(binary.NativeEndian.AppendUint32(nil, flag), ns.Path...))
	}
	newUser := unshare&unix.CLONE_NEWUSER != 0
	if newUser && (len(c.UIDMappings) == 0 || len(c.GIDMappings) == 0) {
		return nil, fmt.Errorf("a new user namespace needs uid and gid mappings: %w", errdefs.ErrInvalidArgument)
	}
	if !newUser && (len(c.UIDMappings) > 0 || len(c.GIDMappings) > 0) {
		return nil, fmt.Errorf("uid and gid mappings need a new user namespace: %w", errdefs.ErrInvalidArgument)
	}
	if unshare != 0 {
		record(recUnshare, binary.NativeEndian.AppendUint32(nil, unshare))
	}
	if len(c.TimeOffsets) > 0 {
		if unshare&unix.CLONE_NEWTIME == 0 {
			return nil, fmt.Errorf("time offsets need a new time namespace: %w", errdefs.ErrInvalidArgument)
		}
		var b strings.Builder
		for _, clock := range slices.Sorted(maps.Keys(c.TimeOffsets)) {
			if clock != "monotonic" && clock != "boottime" {
				return nil, fmt.Errorf("time offset for unknown clock %q: %w", clock, errdefs.ErrInvalidArgument)
			}
			o := c.TimeOffsets[clock]
			fmt.Fprintf(&b, "%s %d %d\n", clock, o.Secs, o.Nanosecs)
		}
		record(recOffsets, []byte(b.String()))
	}
	if len(body) > wireMaxLen {
		return nil, fmt.Errorf("config of %d bytes is too large: %w", len(body), errdefs.ErrInvalidArgument)
	}
	out := binary.NativeEndian.AppendUint32(nil, wireMagic)
	out = binary.NativeEndian.AppendUint32(out, uint32(len(body)))
	return append(out, body...), nil
}

// Session is the parent's side of one child entering namespaces. It is not
// safe for concurrent use.
type Session struct {
	cmd    *exec.Cmd
	cfg    Config
	parent *os.File // ours: config out, messages in
	child  *os.File // the child's end, passed in cmd.ExtraFiles
}

// Prepare arranges for cmd, once started, to enter the namespaces of cfg
// before its Go runtime starts: it validates cfg, adds one end of a
// socketpair to cmd.ExtraFiles (append further ExtraFiles after it, never
// replace the slice), names it in cmd.Env (copying os.Environ when cmd.Env
// is nil), and queues the config. cmd.Path must be a binary that links
// this package, usually the runtime re-executing itself.
//
// Then call cmd.Start and Session.Wait; if Start fails, call Close. Errors
// in cfg wrap errdefs.ErrInvalidArgument.
func Prepare(cmd *exec.Cmd, cfg Config) (*Session, error) {
	if cmd.Process != nil {
		return nil, fmt.Errorf("nsenter: prepare %s: already started: %w", cmd.Path, errdefs.ErrConflict)
	}
	wire, err := cfg.encode()
	if err != nil {
		return nil, fmt.Errorf("nsenter: %w", err)
	}
	if !linked {
		return nil, fmt.Errorf("nsenter: built without cgo, so namespaces cannot be joined before the Go runtime starts: %w", errdefs.ErrNotImplemented)
	}
	return prepare(cmd, cfg, wire)
}

// prepare is Prepare after encoding; tests call it with hostile bytes.
func prepare(cmd *exec.Cmd, cfg Config, wire []byte) (*Session, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("nsenter: socketpair: %w", err)
	}
	// Our end is non-blocking so os.File uses the poller and Wait can give
	// up when its ctx ends; the child's end stays blocking for the C side.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		_ = unix.Close(fds[0])
		_ = unix.Close(fds[1])
		return nil, fmt.Errorf("nsenter: socketpair: %w", err)
	}
	s := &Session{
		cmd:    cmd,
		cfg:    cfg,
		parent: os.NewFile(uintptr(fds[0]), "nsenter-parent"),
		child:  os.NewFile(uintptr(fds[1]), "nsenter-child"),
	}
	// The config is at most 64 KiB, which fits in the socket's buffer, so
	// this write does not wait for the child.
	if _, err := s.parent.Write(wire); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("nsenter: queue config: %w", err)
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, s.child)
	fd := 3 + len(cmd.ExtraFiles) - 1
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, envFD+"=") })
	cmd.Env = append(env, envFD+"="+strconv.Itoa(fd))
	return s, nil
}

// Close releases the session's ends of the socketpair. Wait does it too;
// Close is for when cmd.Start failed. It is safe to call more than once.
func (s *Session) Close() error {
	err1 := s.parent.Close()
	err2 := s.child.Close()
	if errors.Is(err1, os.ErrClosed) {
		err1 = nil
	}
	if errors.Is(err2, os.ErrClosed) {
		err2 = nil
	}
	return errors.Join(err1, err2)
}

// Wait talks to the started child until it has entered every namespace
// and returns the pid, in the caller's pid namespace, of the process whose
// Go code now runs inside them. It writes the uid and gid maps of a new
// user namespace when the child asks.
//
// When the child forked (a pid or time namespace was joined or created),
// the returned pid differs from cmd.Process.Pid: Wait reaps the
// intermediate process with cmd.Process.Wait, so do not call cmd.Wait
// afterwards, and give cmd *os.File stdio (exec's copying goroutines would
// wait for the final process). The final process is then not the caller's
// child: it is re-parented to the nearest child subreaper, so a caller that
// must reap it sets PR_SET_CHILD_SUBREAPER first (runc does the same).
// Without a fork the pid is cmd.Process.Pid, and the caller waits for cmd
// as usual. The pid is the one fork returned in cmd's process, so do not
// also give cmd.SysProcAttr a CLONE_NEWPID: let Config create it.
//
// Wait must be called once the command started, since the child blocks
// until the parent answers its request for uid and gid maps.
//
// On error the child has been killed and reaped (with cmd.Wait). A child's
// own failure wraps its errno (errors.Is(err, fs.ErrNotExist) for a missing
// path) and errdefs.ErrNotFound or errdefs.ErrInvalidArgument where one
// applies.
func (s *Session) Wait(ctx context.Context) (int, error) {
	if s.cmd.Process == nil {
		_ = s.Close()
		return 0, fmt.Errorf("nsenter: wait for %s: not started: %w", s.cmd.Path, errdefs.ErrInvalidArgument)
	}
	defer func() { _ = s.Close() }()
	// EOF on our end means every copy of the child's end is closed: the
	// child's, after it left the constructor, and ours.
	_ = s.child.Close()
	stop := context.AfterFunc(ctx, func() { _ = s.parent.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	pid, err := s.talk()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("nsenter: wait for %s: %w", s.cmd.Path, context.Cause(ctx))
		}
		if pid > 0 && pid != s.cmd.Process.Pid {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		return 0, err
	}
	if pid != s.cmd.Process.Pid {
		st, err := s.cmd.Process.Wait()
		if err == nil && !st.Success() {
			err = fmt.Errorf("exited with %v", st)
		}
		if err != nil {
			_ = unix.Kill(pid, unix.SIGKILL)
			return 0, fmt.Errorf("nsenter: intermediate process %d: %w", s.cmd.Process.Pid, err)
		}
	}
	return pid, nil
}

func (s *Session) talk() (int, error) {
	pid := 0
	var hdr [msgHeaderLen]byte
	for {
		if _, err := io.ReadFull(s.parent, hdr[:]); err != nil {
			// A child that exits without reading its config resets the
			// connection instead of closing it cleanly.
			if errors.Is(err, io.EOF) || errors.Is(err, unix.ECONNRESET) {
				if pid == 0 {
					return 0, fmt.Errorf("nsenter: %s exited before entering its namespaces (does it link internal/runtime/nsenter?)", s.cmd.Path)
				}
				return pid, nil
			}
			return pid, fmt.Errorf("nsenter: read from %s: %w", s.cmd.Path, err)
		}
		typ := binary.NativeEndian.Uint32(hdr[0:])
		val := int32(binary.NativeEndian.Uint32(hdr[4:]))
		n := binary.NativeEndian.Uint32(hdr[8:])
		if n > msgMaxText {
			return pid, fmt.Errorf("nsenter: message of %d bytes from %s: %w", n, s.cmd.Path, errdefs.ErrInvalidArgument)
		}
		text := make([]byte, n)
		if _, err := io.ReadFull(s.parent, text); err != nil {
			return pid, fmt.Errorf("nsenter: read from %s: %w", s.cmd.Path, err)
		}
		switch typ {
		case msgUserMap:
			err := s.writeMaps(s.cmd.Process.Pid)
			ack := []byte{0}
			if err != nil {
				ack[0] = 1
			}
			if _, werr := s.parent.Write(ack); werr != nil && err == nil {
				err = fmt.Errorf("nsenter: answer %s: %w", s.cmd.Path, werr)
			}
			if err != nil {
				return pid, err
			}
		case msgPID:
			if val <= 0 {
				return pid, fmt.Errorf("nsenter: %s reported pid %d: %w", s.cmd.Path, val, errdefs.ErrInvalidArgument)
			}
			pid = int(val)
		case msgError:
			return pid, &ChildError{Msg: string(text), Errno: syscall.Errno(val)}
		default:
			return pid, fmt.Errorf("nsenter: message type %d from %s: %w", typ, s.cmd.Path, errdefs.ErrInvalidArgument)
		}
	}
}

// writeMaps writes the id maps of the child's new user namespace. Root in
// the parent namespace may write any mapping, in a single write(2) per
// file (user_namespaces(7)); a rootless parent would need newuidmap, which
// berth does not use.
func (s *Session) writeMaps(pid int) error {
	for _, m := range []struct {
		file string
		ids  []specs.LinuxIDMapping
	}{{"uid_map", s.cfg.UIDMappings}, {"gid_map", s.cfg.GIDMappings}} {
		var b strings.Builder
		for _, id := range m.ids {
			fmt.Fprintf(&b, "%d %d %d\n", id.ContainerID, id.HostID, id.Size)
		}
		path := fmt.Sprintf("/proc/%d/%s", pid, m.file)
		if err := os.WriteFile(path, []byte(b.String()), 0); err != nil {
			return fmt.Errorf("nsenter: write %s: %w", path, err)
		}
	}
	return nil
}

// ChildError is a failure the child reported from before its Go runtime
// started, such as a namespace path that does not exist.
type ChildError struct {
	Msg   string // what it was doing, e.g. "join network namespace /run/netns/x"
	Errno syscall.Errno
}

func (e *ChildError) Error() string { return "nsenter: " + e.Msg + ": " + e.Errno.Error() }

// Unwrap exposes the errno and, where one fits, berth's error class.
func (e *ChildError) Unwrap() []error {
	out := []error{e.Errno}
	switch e.Errno {
	case unix.ENOENT:
		out = append(out, errdefs.ErrNotFound)
	case unix.EINVAL:
		out = append(out, errdefs.ErrInvalidArgument)
	case unix.EPERM, unix.EACCES:
		out = append(out, errdefs.ErrForbidden)
	}
	return out
}
