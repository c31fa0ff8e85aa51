package console

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// NewPty opens a new pseudo-terminal master from /dev/ptmx and unlocks its
// slave. slavePath is the slave's name in the devpts instance that
// /dev/ptmx belongs to; inside a mount namespace whose /dev/pts differs,
// prefer OpenSlave, which cannot name the wrong device.
func NewPty() (master *os.File, slavePath string, err error) {
	// O_NOCTTY: opening a terminal must not make it the controlling
	// terminal of this process.
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", fmt.Errorf("open /dev/ptmx: %w", err)
	}
	// unlockpt(3): the slave cannot be opened until the lock is cleared.
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		_ = unix.Close(fd)
		return nil, "", fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		_ = unix.Close(fd)
		return nil, "", fmt.Errorf("get pty number: %w", err)
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), "/dev/pts/" + strconv.FormatUint(uint64(n), 10), nil
}

// OpenSlave opens the slave of master with TIOCGPTPEER (Linux 4.13), which
// goes from the master's own devpts instance instead of a path: nothing in
// a container can swap a /dev/pts entry under it.
func OpenSlave(master *os.File) (*os.File, error) {
	sc, err := master.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("open pty slave: %w", err)
	}
	var fd int
	var serr error
	name := "pty-slave"
	if err := sc.Control(func(m uintptr) {
		// TIOCGPTN answers on the master only.
		if n, err := unix.IoctlGetUint32(int(m), unix.TIOCGPTN); err == nil {
			name = "/dev/pts/" + strconv.FormatUint(uint64(n), 10)
		}
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, m, unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
		fd = int(r)
		if errno != 0 {
			serr = errno
		}
	}); err != nil {
		return nil, fmt.Errorf("open pty slave: %w", err)
	}
	if serr != nil {
		return nil, fmt.Errorf("open pty slave: %w", serr)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// SendMaster connects to the unix socket at socketPath and sends master
// over it, as runc does for --console-socket. The caller keeps its own
// copy of master and should close it afterwards.
func SendMaster(socketPath string, master *os.File) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("send console to %s: %w", socketPath, err)
	}
	sock := os.NewFile(uintptr(fd), socketPath)
	defer sock.Close()
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: socketPath}); err != nil {
		err = fmt.Errorf("send console: connect %s: %w", socketPath, err)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ECONNREFUSED) {
			err = fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
		}
		return err
	}
	return SendMasterTo(sock, master)
}

// SendMasterTo sends master over an already connected unix socket, for a
// runtime that connects in the parent and hands the socket to its init.
func SendMasterTo(sock *os.File, master *os.File) error {
	name := master.Name()
	if name == "" {
		name = "/dev/ptmx"
	}
	rights := unix.UnixRights(int(master.Fd()))
	sc, err := sock.SyscallConn()
	if err != nil {
		return fmt.Errorf("send console: %w", err)
	}
	var serr error
	if err := sc.Control(func(s uintptr) {
		serr = unix.Sendmsg(int(s), []byte(name), rights, nil, 0)
	}); err != nil {
		return fmt.Errorf("send console: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("send console: %w", serr)
	}
	return nil
}

// ReceiveMaster reads one console message from conn and returns the pty
// master it carries; the caller owns it. A message without exactly one fd
// is an error wrapping errdefs.ErrInvalidArgument, and any fds it carried
// are closed.
func ReceiveMaster(conn *net.UnixConn) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))             // room to see, and close, a few extra fds
	n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob) // sets MSG_CMSG_CLOEXEC
	if err != nil {
		return nil, fmt.Errorf("receive console: %w", err)
	}
	var fds []int
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("receive console: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_RIGHTS {
			continue
		}
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			closeAll(fds)
			return nil, fmt.Errorf("receive console: %w", err)
		}
		fds = append(fds, got...)
	}
	if flags&unix.MSG_CTRUNC != 0 || len(fds) != 1 {
		closeAll(fds)
		return nil, fmt.Errorf("receive console: got %d file descriptors, want 1: %w", len(fds), errdefs.ErrInvalidArgument)
	}
	name := string(buf[:n])
	if name == "" {
		name = "console"
	}
	return os.NewFile(uintptr(fds[0]), name), nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
}

// SetSize sets the window size of the terminal f (master or slave), as
// process.consoleSize asks; the foreground process group gets SIGWINCH.
func SetSize(f *os.File, rows, cols uint16) error {
	if err := control(f, func(fd int) error {
		return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	}); err != nil {
		return fmt.Errorf("set console size: %w", err)
	}
	return nil
}

// Size returns the window size of the terminal f.
func Size(f *os.File) (rows, cols uint16, err error) {
	err = control(f, func(fd int) error {
		ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
		if err == nil {
			rows, cols = ws.Row, ws.Col
		}
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("get console size: %w", err)
	}
	return rows, cols, nil
}

// SetControllingTerminal makes slave the controlling terminal and stdio of
// the calling process: a new session (setsid), TIOCSCTTY, and slave on fds
// 0, 1 and 2. A container init calls it just before execve. A process
// group leader cannot start a session (setsid fails with EPERM), so the
// process must not be one, which a freshly forked child never is.
func SetControllingTerminal(slave *os.File) error {
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("set controlling terminal: setsid: %w", err)
	}
	return control(slave, func(fd int) error {
		if err := unix.IoctlSetInt(fd, unix.TIOCSCTTY, 0); err != nil {
			return fmt.Errorf("set controlling terminal: %w", err)
		}
		for i := range 3 {
			if fd == i {
				continue
			}
			if err := unix.Dup3(fd, i, 0); err != nil {
				return fmt.Errorf("set controlling terminal: dup to fd %d: %w", i, err)
			}
		}
		return nil
	})
}

// Attach makes slave the stdio and controlling terminal of cmd's process
// when it starts (Setsid, Setctty with Ctty = its stdin). It keeps the
// other fields of cmd.SysProcAttr.
func Attach(cmd *exec.Cmd, slave *os.File) {
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Setctty = true
	cmd.SysProcAttr.Ctty = 0 // a child fd number: stdin
}

func control(f *os.File, fn func(fd int) error) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := sc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
