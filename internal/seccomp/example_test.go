package seccomp_test

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/seccomp"
)

// The runtime compiles in its parent, where a bad profile is easy to
// report, and the container's init loads the filter just before execve.
func ExampleCompile() {
	f, err := seccomp.Compile(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat", "no_such_call"}, Action: specs.ActErrno},
			{Names: []string{"ioctl"}, Action: specs.ActNotify},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("listener:", f.Notify(), "skipped:", f.Unknown())
	// In the container's init, with no_new_privs set:
	//	fd, err := f.Load()
	// then hand fd to the agent with SendListener and close it.

	_, err = seccomp.Compile(&specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_MAYBE"})
	fmt.Println(err)
	// Output:
	// listener: true skipped: [no_such_call]
	// seccomp defaultAction: action "SCMP_ACT_MAYBE": unknown (want one of the SCMP_ACT_* names of the runtime spec): invalid argument
}
