package runtime

import (
	"encoding/json"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The parent (create, run, exec) and the container's init talk over a
// SOCK_SEQPACKET socketpair, one JSON message per packet, so no framing is
// needed and a dead peer shows as EOF:
//
//	parent                                init (re-exec'd, in new namespaces)
//	  cgroups created and Set
//	  start init with clone flags
//	  (v2: into its cgroup) ------------>
//	  msgConfig {initConfig} ----------->
//	                                      v1: write 0 to each tasks file
//	                                      unshare cgroupns, mounts, /dev
//	                       <------------ msgHooks    (only with createRuntime/prestart hooks)
//	  prestart, createRuntime hooks
//	  msgHooksDone --------------------->
//	                                      createContainer hooks, pivot_root
//	                       <------------ msgPty + SCM_RIGHTS master (only with a terminal)
//	  console.SendMaster(socket)
//	                                      hostname, sysctl, paths, rlimits, cwd, lookup
//	                       <------------ msgReady | msgError
//	  state "created", parent may exit
//	                                      open(exec.fifo, O_WRONLY) blocks until `start`
//	                                      startContainer hooks, user, caps, seccomp, execve
//
// For exec the init sends msgReady and then execs at once; the socket is
// close-on-exec, so the parent reads EOF when execve succeeded.
const (
	msgConfig    = "config"
	msgHooks     = "hooks"
	msgHooksDone = "hooks-done"
	msgPty       = "pty"
	msgReady     = "ready"
	msgError     = "error"
)

type message struct {
	Type   string      `json:"type"`
	Error  string      `json:"error,omitempty"`
	Config *initConfig `json:"config,omitempty"`
}

// initConfig is everything the init needs; the parent resolves host paths
// before sending it.
type initConfig struct {
	ID           string                 `json:"id"`
	Exec         bool                   `json:"exec,omitempty"` // join a running container instead of creating one
	Spec         *specs.Spec            `json:"spec"`
	Process      *specs.Process         `json:"process,omitempty"` // nil: Spec.Process
	Rootfs       string                 `json:"rootfs"`            // absolute host path
	Bundle       string                 `json:"bundle"`
	NoPivot      bool                   `json:"noPivot,omitempty"`
	NoNewKeyring bool                   `json:"noNewKeyring,omitempty"`
	NewCgroupNS  bool                   `json:"newCgroupns,omitempty"`
	NewTimeNS    bool                   `json:"newTimens,omitempty"`
	Cgroups      map[string]string      `json:"cgroups,omitempty"`
	FifoFD       int                    `json:"fifoFd"`               // exec fifo, opened O_PATH by the parent
	FirstFD      int                    `json:"firstFd"`              // fds below this (from 3) are preserved into the container
	JoinNS       []specs.LinuxNamespace `json:"joinNs,omitempty"`     // joined per-thread by the init (net, uts, ipc, cgroup)
	Hooks        bool                   `json:"hooks,omitempty"`      // parent has createRuntime/prestart hooks
	State        *specs.State           `json:"state,omitempty"`      // for createContainer/startContainer hooks
	MoveSelf     []string               `json:"moveSelf,omitempty"`   // v1 cgroup dirs the init enters itself
	ListenerFD   int                    `json:"listenerFd,omitempty"` // connection to the seccomp listener, or 0
}

func send(sock *os.File, m message, fds ...int) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	// Through RawConn, not sock.Fd(), which would switch a non-blocking
	// socket to blocking mode and take it off the poller.
	rc, err := sock.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), b, oob, nil, 0)
		return serr != unix.EAGAIN
	}); err != nil {
		return fmt.Errorf("send %s message: %w", m.Type, err)
	}
	if serr != nil {
		return fmt.Errorf("send %s message: %w", m.Type, serr)
	}
	return nil
}

// recv reads one message; fds received with it are returned (the caller owns
// them). io.EOF-like conditions come back as errPeerGone.
func recv(sock *os.File) (message, []int, error) {
	oob := make([]byte, unix.CmsgSpace(4*4))
	var buf []byte
	rc, err := sock.SyscallConn()
	if err != nil {
		return message{}, nil, err
	}
	for {
		// On the parent's non-blocking end this parks the goroutine in the
		// poller instead of holding a thread in recvmsg, which keeps the
		// Go scheduler and sysmon from churning while the init works.
		var n, oobn int
		var rerr error
		if err := rc.Read(func(fd uintptr) bool {
			// Size the buffer to the message: MSG_PEEK|MSG_TRUNC returns
			// its full length without consuming it.
			if buf == nil {
				var size int
				size, _, rerr = unix.Recvfrom(int(fd), nil, unix.MSG_PEEK|unix.MSG_TRUNC)
				if rerr != nil {
					return rerr != unix.EAGAIN
				}
				buf = make([]byte, max(size, 1))
			}
			n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
			return rerr != unix.EAGAIN
		}); err != nil {
			return message{}, nil, fmt.Errorf("receive message: %w", err)
		}
		err := rerr
		if err == unix.EINTR {
			buf = nil
			continue
		}
		if err != nil {
			return message{}, nil, fmt.Errorf("receive message: %w", err)
		}
		if n == 0 && oobn == 0 {
			return message{}, nil, errPeerGone
		}
		var fds []int
		if oobn > 0 {
			cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err == nil {
				for _, c := range cmsgs {
					if r, err := unix.ParseUnixRights(&c); err == nil {
						fds = append(fds, r...)
					}
				}
			}
		}
		var m message
		if err := json.Unmarshal(buf[:n], &m); err != nil {
			return message{}, fds, fmt.Errorf("decode message: %w", err)
		}
		return m, fds, nil
	}
}

type peerGoneError struct{}

func (peerGoneError) Error() string { return "peer closed the sync socket" }

var errPeerGone error = peerGoneError{}
