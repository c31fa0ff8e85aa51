package seccomp

import (
	"context"
	"encoding/json"
	"fmt"
	"net"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// SendListener hands a listener fd from Load to the seccomp agent at
// listenerPath, as config-linux.md asks: one connection, one JSON
// container process state sent with the fd in SCM_RIGHTS in the same
// sendmsg, then close. It fills st.Fds and, if empty, st.Version. The
// caller keeps fd and closes it afterwards.
func SendListener(ctx context.Context, path string, fd int, st specs.ContainerProcessState) error {
	st.Fds = []string{specs.SeccompFdName}
	if st.Version == "" {
		st.Version = specs.Version
	}
	payload, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("send seccomp listener to %s: %w", path, err)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return fmt.Errorf("send seccomp listener to %s: %w", path, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	n, oobn, err := c.(*net.UnixConn).WriteMsgUnix(payload, unix.UnixRights(fd), nil)
	if err == nil && (n != len(payload) || oobn == 0) {
		err = fmt.Errorf("short write (%d of %d bytes)", n, len(payload))
	}
	if err != nil {
		return fmt.Errorf("send seccomp listener to %s: %w", path, err)
	}
	return nil
}
