package nsenter_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/runtime/nsenter"
)

// An exec into a running container: re-execute this binary (which links
// nsenter) so that its Go code starts inside every namespace of the
// container's init, pid 4242 here.
func ExamplePrepare() {
	ctx := context.Background()
	var cfg nsenter.Config
	for _, ns := range []specs.LinuxNamespaceType{"user", "mount", "pid", "network", "ipc", "uts", "cgroup"} {
		name := map[specs.LinuxNamespaceType]string{"mount": "mnt", "network": "net"}[ns]
		if name == "" {
			name = string(ns)
		}
		cfg.Namespaces = append(cfg.Namespaces, specs.LinuxNamespace{Type: ns, Path: "/proc/4242/ns/" + name})
	}
	cmd := exec.Command("/proc/self/exe", "exec-init")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr // files: see Session.Wait
	s, err := nsenter.Prepare(cmd, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := cmd.Start(); err != nil {
		_ = s.Close()
		fmt.Println(err)
		return
	}
	pid, err := s.Wait(ctx) // a pid namespace was joined: pid is the forked child
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("inside:", pid)
}
