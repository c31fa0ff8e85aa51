package runtime_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// Podman drives berth-runtime through runc's command line: run, exec (with
// and without a terminal), stop and rm of a container. Podman keeps its
// storage in the test's own directories and gets no network.
func TestPodmanDrivesBerthRuntime(t *testing.T) {
	testutil.RequireRoot(t)
	podman, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("needs Debian's podman")
	}
	bin := build(t)
	img := testutil.Images(t)
	runRoot, err := os.MkdirTemp("/run", "berth-podman-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(runRoot) })
	storage := t.TempDir()
	base := []string{"--root", storage, "--runroot", runRoot, "--cgroup-manager", "cgroupfs",
		"--events-backend", "file", "--runtime", bin}
	pm := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(podman, append(base, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("podman %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		_ = exec.Command(podman, append(base, "rm", "-f", "-a")...).Run()
		// Podman's overlay storage leaves its own mount of the layer store.
		_ = exec.Command(podman, append(base, "system", "reset", "-f")...).Run()
		_ = exec.Command("umount", "-R", filepath.Join(storage, "overlay")).Run()
		// conmon and podman's helpers double-fork; as the subreaper we
		// inherit and must reap them.
		reapChildren(5 * time.Second)
	})
	pm("load", "-i", img.DockerArchive)
	// This machine's hard nofile limit is 20000 and root lacks
	// CAP_SYS_RESOURCE, so podman's default of 1048576 cannot be granted.
	limits := []string{"--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}
	out := pm(append(append([]string{"run", "--rm"}, limits...), "busybox:latest", "/bin/sh", "-c", "echo via berth-runtime")...)
	if !strings.Contains(out, "via berth-runtime") {
		t.Fatalf("podman run: %q", out)
	}
	pm(append(append([]string{"run", "-d", "--name", "pb"}, limits...), "busybox:latest", "sleep", "600")...)
	if out := pm("exec", "pb", "/bin/sh", "-c", "ps -o comm"); !strings.Contains(out, "sleep") {
		t.Fatalf("podman exec: %q", out)
	}
	if out := pm("exec", "-t", "pb", "tty"); !strings.Contains(out, "/dev/pts/") {
		t.Fatalf("podman exec -t: %q", out)
	}
	pm("stop", "-t", "1", "pb")
	pm("rm", "pb")
}

// reapChildren reaps children until none is left or the timeout passes.
func reapChildren(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.ECHILD {
			return
		}
		if pid <= 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
}
