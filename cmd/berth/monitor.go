package main

import (
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/runtime"
	// Exec joins a container's mount, user and pid namespaces through
	// nsenter's constructor, which must be linked into the binary that
	// the runtime re-executes: this one.
	_ "github.com/berth-dev/berth/internal/runtime/nsenter"
)

// The berth binary is also the per-container monitor ("berth-monitor",
// started by monitor.Start) and the container init the runtime
// re-executes (for the monitor's create and the daemon's exec). Both are
// recognised here, before cobra or any init function of this package
// runs: a package-level variable is initialised before every init(), and
// neither re-exec wants the CLI's start-up cost.
//
// For main.go: this can become the first lines of main() instead:
//
//	if runtime.IsInit() { runtime.Init() }
//	if monitor.IsMonitor() { monitor.Main() }
var _ = reexecEntry()

func reexecEntry() bool {
	if runtime.IsInit() {
		runtime.Init() // never returns
	}
	if monitor.IsMonitor() {
		monitor.Main() // never returns
	}
	return false
}
