package console

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// "console-child" re-execs the test binary as a process that takes the
// pty slave on fd 3 as its controlling terminal, the way a container init
// does, then reports from the terminal itself.
func init() {
	if len(os.Args) < 2 || os.Args[1] != "console-child" {
		return
	}
	if err := SetControllingTerminal(os.NewFile(3, "slave")); err != nil {
		fmt.Fprintln(os.NewFile(4, "errors"), err)
		os.Exit(2)
	}
	// /dev/tty opens only for a process that has a controlling terminal.
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintln(os.NewFile(4, "errors"), err)
		os.Exit(2)
	}
	rows, cols, _ := Size(tty)
	sid, _ := unix.Getsid(0)
	fd0, _ := os.Readlink("/proc/self/fd/0")
	fmt.Fprintf(tty, "ctty ok size=%dx%d leader=%v stdin=%s\n", rows, cols, sid == os.Getpid(), fd0)
	os.Exit(0)
}

// readAll reads master until the last slave closes (EIO) or 10 seconds pass.
func readAll(t *testing.T, master *os.File) string {
	t.Helper()
	done := make(chan []byte)
	go func() {
		var out bytes.Buffer
		_, _ = io.Copy(&out, master) // ends with EIO once no slave is open
		done <- out.Bytes()
	}()
	select {
	case b := <-done:
		return string(b)
	case <-time.After(10 * time.Second):
		t.Fatal("pty output did not end")
		return ""
	}
}

func TestNewPtySlavePathAndPeerAreTheSame(t *testing.T) {
	master, slavePath, err := NewPty()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	byPath, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer byPath.Close()
	peer, err := OpenSlave(master)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	var a, b unix.Stat_t
	if err := unix.Fstat(int(byPath.Fd()), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fstat(int(peer.Fd()), &b); err != nil {
		t.Fatal(err)
	}
	if a.Rdev != b.Rdev || peer.Name() != slavePath {
		t.Fatalf("slave by path %s (rdev %d) and by TIOCGPTPEER %s (rdev %d) differ", slavePath, a.Rdev, peer.Name(), b.Rdev)
	}
	if _, err := peer.WriteString("ping\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := master.Read(buf)
	if err != nil || string(buf[:n]) != "ping\r\n" { // ONLCR is on by default
		t.Fatalf("master read %q, %v", buf[:n], err)
	}
}

// listen returns a console socket in a temp dir and a channel with the
// master received on its first connection.
func listen(t *testing.T) (string, <-chan *os.File, <-chan error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	got, errs := make(chan *os.File, 1), make(chan error, 1)
	go func() {
		conn, err := l.AcceptUnix()
		if err != nil {
			errs <- err
			return
		}
		defer conn.Close()
		m, err := ReceiveMaster(conn)
		if err != nil {
			errs <- err
			return
		}
		got <- m
	}()
	return path, got, errs
}

func receive(t *testing.T, got <-chan *os.File, errs <-chan error) *os.File {
	t.Helper()
	select {
	case m := <-got:
		t.Cleanup(func() { _ = m.Close() })
		return m
	case err := <-errs:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		t.Fatal("no console received")
	}
	return nil
}

func TestConsoleSocketRoundTrip(t *testing.T) {
	path, got, errs := listen(t)
	master, slavePath, err := NewPty()
	if err != nil {
		t.Fatal(err)
	}
	slave, err := OpenSlave(master)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	if err := SendMaster(path, master); err != nil {
		t.Fatal(err)
	}
	// The sender's copy goes away, as it does in a runtime; only the
	// received one remains.
	master.Close()
	recv := receive(t, got, errs)
	if recv.Name() != "/dev/ptmx" {
		t.Errorf("received name %q, want /dev/ptmx (runc's)", recv.Name())
	}
	if err := SetSize(recv, 33, 101); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("/bin/sh", "-c", "stty size; tty; read line; echo got:$line")
	Attach(cmd, slave)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	if _, err := recv.WriteString("hello\n"); err != nil {
		t.Fatal(err)
	}
	out := readAll(t, recv)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	for _, want := range []string{"33 101\r\n", slavePath + "\r\n", "got:hello\r\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output %q lacks %q", out, want)
		}
	}
}

func TestSetControllingTerminalInProcess(t *testing.T) {
	master, slavePath, err := NewPty()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	if err := SetSize(master, 24, 80); err != nil {
		t.Fatal(err)
	}
	slave, err := OpenSlave(master)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer errR.Close()
	cmd := exec.Command(os.Args[0], "console-child")
	cmd.ExtraFiles = []*os.File{slave, errW}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	errW.Close()
	out := readAll(t, master)
	werr := cmd.Wait()
	childErr, _ := io.ReadAll(errR)
	if werr != nil {
		t.Fatalf("%v: %s", werr, childErr)
	}
	want := "ctty ok size=24x80 leader=true stdin=" + slavePath
	if !strings.Contains(out, want) {
		t.Fatalf("got %q, want %q", out, want)
	}
}

func TestReceiveMasterRejectsBadMessages(t *testing.T) {
	f1, _ := os.Open(os.DevNull)
	defer f1.Close()
	f2, _ := os.Open(os.DevNull)
	defer f2.Close()
	for _, tc := range []struct {
		name string
		oob  []byte
	}{
		{"no fd", nil},
		{"two fds", unix.UnixRights(int(f1.Fd()), int(f2.Fd()))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fds[0])
			f := os.NewFile(uintptr(fds[1]), "peer")
			c, err := net.FileConn(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := unix.Sendmsg(fds[0], []byte("/dev/ptmx"), tc.oob, nil, 0); err != nil {
				t.Fatal(err)
			}
			before := openFDs(t)
			m, err := ReceiveMaster(c.(*net.UnixConn))
			if err == nil {
				m.Close()
				t.Fatal("accepted")
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("got %v, want invalid argument", err)
			}
			if after := openFDs(t); after != before {
				t.Fatalf("%d fds open before, %d after: received fds leaked", before, after)
			}
		})
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	e, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(e)
}

func TestSendMasterWithoutListener(t *testing.T) {
	master, _, err := NewPty()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	path := filepath.Join(t.TempDir(), "none.sock")
	err = SendMaster(path, master)
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want a not-found error naming %s", err, path)
	}
}
