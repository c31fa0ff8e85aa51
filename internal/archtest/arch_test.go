package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/berth-dev/berth/"

// rules: a package under the key (or the key itself) must not depend,
// directly or transitively, on any package under the listed prefixes.
var rules = map[string][]string{
	// leaves depend on nothing of ours
	"internal/errdefs": {"internal/", "cmd/"},
	"internal/cleanup": {"internal/", "cmd/"},
	"internal/log":     {"internal/", "cmd/"},
	"internal/version": {"internal/", "cmd/"},
	// the runtime knows nothing of images, engines or networks
	"internal/runtime": {"internal/image", "internal/content", "internal/distribution", "internal/snapshot",
		"internal/archive", "internal/unpack", "internal/tarball", "internal/daemon", "internal/api",
		"internal/client", "internal/container", "internal/monitor", "internal/network", "cmd/"},
	"internal/cgroups": {"internal/runtime", "internal/image", "internal/daemon", "internal/container", "cmd/"},
	"internal/seccomp": {"internal/runtime", "internal/image", "internal/daemon", "internal/container", "cmd/"},
	// the image side knows nothing of containers or the runtime
	"internal/content":      {"internal/runtime", "internal/cgroups", "internal/seccomp", "internal/container", "internal/daemon", "internal/api", "cmd/"},
	"internal/image":        {"internal/runtime", "internal/cgroups", "internal/seccomp", "internal/container", "internal/daemon", "internal/api", "cmd/"},
	"internal/archive":      {"internal/runtime", "internal/image", "internal/container", "internal/daemon", "internal/api", "cmd/"},
	"internal/snapshot":     {"internal/runtime", "internal/image", "internal/container", "internal/daemon", "internal/api", "cmd/"},
	"internal/unpack":       {"internal/runtime", "internal/container", "internal/daemon", "internal/api", "cmd/"},
	"internal/distribution": {"internal/runtime", "internal/container", "internal/daemon", "internal/api", "cmd/"},
	"internal/tarball":      {"internal/runtime", "internal/container", "internal/daemon", "internal/api", "cmd/"},
	// the builder plans and runs steps through its Backend (the engine
	// implements it); it never reaches the engine, containers or runtime
	"internal/build": {"internal/daemon", "internal/api", "internal/client", "internal/container",
		"internal/runtime", "internal/monitor", "internal/network", "cmd/"},
	// networks and volumes know nothing of images or containers
	"internal/network": {"internal/image", "internal/container", "internal/daemon", "internal/api", "cmd/"},
	"internal/volume":  {"internal/image", "internal/container", "internal/daemon", "internal/api", "cmd/"},
	// the engine never speaks HTTP itself, and nothing imports the CLI
	"internal/daemon": {"internal/api", "internal/client", "cmd/"},
	"internal/api":    {"internal/client", "cmd/"},
	"internal/client": {"internal/api", "internal/daemon", "cmd/"},
}

func TestImportsPointDownward(t *testing.T) {
	out, err := exec.Command("go", "list", "-e", "-f", `{{.ImportPath}} {{join .Deps " "}}`, mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		pkg := strings.TrimPrefix(fields[0], mod)
		// Test-support packages (testutil, testimage, snapshottest …) may
		// reach across the layers: only tests import them.
		if strings.HasSuffix(pkg, "_test") || strings.HasSuffix(pkg, "test") || strings.HasPrefix(pkg, "internal/testutil") || strings.HasPrefix(pkg, "internal/testimage") {
			continue
		}
		for owner, banned := range rules {
			if pkg != owner && !strings.HasPrefix(pkg, owner+"/") {
				continue
			}
			for _, dep := range fields[1:] {
				d, ours := strings.CutPrefix(dep, mod)
				if !ours {
					continue
				}
				for _, b := range banned {
					if strings.HasPrefix(d, b) && !(owner == "internal/runtime" && strings.HasPrefix(d, "internal/runtime")) {
						t.Errorf("%s imports %s: %s must not depend on %s", pkg, d, owner, b)
					}
				}
			}
		}
	}
}
