package seccomp

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestSendListener(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Any fd travels the same way; a pipe stands in for the listener.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()

	type got struct {
		st  specs.ContainerProcessState
		fds []int
		err error
	}
	done := make(chan got, 1)
	go func() {
		var g got
		defer func() { done <- g }()
		c, err := l.AcceptUnix()
		if err != nil {
			g.err = err
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			g.err = err
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			g.err = err
			return
		}
		g.fds, g.err = unix.ParseUnixRights(&msgs[0])
		if g.err == nil {
			g.err = json.Unmarshal(buf[:n], &g.st)
		}
	}()

	st := specs.ContainerProcessState{Pid: 42, Metadata: "MKNOD=/dev/null", State: specs.State{ID: "c1", Status: specs.StateCreating}}
	if err := SendListener(context.Background(), path, int(w.Fd()), st); err != nil {
		t.Fatal(err)
	}
	g := <-done
	if g.err != nil {
		t.Fatal(g.err)
	}
	for _, fd := range g.fds {
		defer unix.Close(fd)
	}
	if len(g.st.Fds) != 1 || g.st.Fds[0] != specs.SeccompFdName || g.st.Pid != 42 || g.st.State.ID != "c1" || g.st.Metadata != "MKNOD=/dev/null" || g.st.Version == "" {
		t.Errorf("agent got %+v", g.st)
	}
	var a, b unix.Stat_t
	if len(g.fds) != 1 || unix.Fstat(g.fds[0], &a) != nil || unix.Fstat(int(w.Fd()), &b) != nil || a.Ino != b.Ino {
		t.Errorf("agent got fds %v, not the one sent", g.fds)
	}
}

func TestSendListenerNoAgent(t *testing.T) {
	err := SendListener(context.Background(), filepath.Join(t.TempDir(), "none.sock"), 0, specs.ContainerProcessState{})
	if err == nil {
		t.Fatal("sent to a socket that does not exist")
	}
}
