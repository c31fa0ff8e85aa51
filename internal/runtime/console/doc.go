// Package console makes pseudo-terminals for container processes and
// passes their master side over a unix socket the way runc's
// --console-socket does, so tools written for runc (containerd, conmon,
// podman, recvtty) can hold the terminal of a berth-runtime container.
//
// Status: usable. The API others call:
//
//	func NewPty() (master *os.File, slavePath string, err error) // /dev/ptmx, unlocked
//	func OpenSlave(master *os.File) (*os.File, error)            // TIOCGPTPEER: the slave of exactly this master
//	func SendMaster(socketPath string, master *os.File) error     // connect, one SCM_RIGHTS message
//	func SendMasterTo(sock *os.File, master *os.File) error       // same, over an already connected socket
//	func ReceiveMaster(conn *net.UnixConn) (*os.File, error)      // the listening side
//	func SetSize(f *os.File, rows, cols uint16) error             // TIOCSWINSZ (process.consoleSize)
//	func Size(f *os.File) (rows, cols uint16, err error)
//	func SetControllingTerminal(slave *os.File) error             // in the process itself: setsid, TIOCSCTTY, slave on 0-2
//	func Attach(cmd *exec.Cmd, slave *os.File)                    // for a child: stdio, Setsid, Setctty
//
// # The --console-socket protocol
//
// The runtime connects to the AF_UNIX SOCK_STREAM socket the caller
// listens on and sends one message: its data is the master's file name
// (runc sends "/dev/ptmx"), its control data one SCM_RIGHTS cmsg carrying
// exactly one fd, the pty master. The runtime then closes its copy and the
// connection. The receiver owns the master: closing it hangs up the
// container's terminal.
//
// It knows nothing of containers or specs and owns nothing on disk; the
// socket belongs to whoever listens on it.
package console
