package cgroups_test

import (
	"fmt"
	"os/exec"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cgroups"
)

// A runtime's use of a Manager over a container's life: create and limit
// at start, save Paths in its state, Load them for later commands.
func ExampleNew() {
	limit := int64(64 << 20)
	r := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
	m, err := cgroups.New(cgroups.Config{Name: "web", Resources: r}) // <root>/berth/web
	if err != nil {
		fmt.Println(err)
		return
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		return
	}
	if err := m.Apply(cmd.Process.Pid); err != nil {
		fmt.Println(err)
	}
	if err := m.Set(r); err != nil {
		fmt.Println(err) // e.g. write "…" to …/memory.limit_in_bytes: invalid argument
	}
	saved := m.Paths() // goes into the runtime's state.json

	// Later, in another process: pause, resume, kill, delete.
	m2, err := cgroups.Load(saved)
	if err != nil {
		return
	}
	_ = m2.Freeze(true)
	_ = m2.Freeze(false)
	_ = m2.Kill(unix.SIGKILL)
	_ = cmd.Wait()
	_ = m2.Destroy()
}
