package console_test

import (
	"fmt"
	"net"

	"github.com/berth-dev/berth/internal/runtime/console"
)

// The caller's side of --console-socket, as containerd or conmon run it:
// listen, pass the path to the runtime, and take the pty master it sends.
func ExampleReceiveMaster() {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: "/run/example/console.sock", Net: "unix"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	// ... start `berth-runtime create --console-socket /run/example/console.sock ID` ...
	conn, err := l.AcceptUnix()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	master, err := console.ReceiveMaster(conn)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer master.Close()
	_ = console.SetSize(master, 24, 80)
	// read and write master: it is the container's terminal
}
