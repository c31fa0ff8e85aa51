package runtime_test

import (
	"os"
	"os/exec"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkRunTrue times `berth-runtime run` of the busybox bundle with
// /bin/true, the latency goal (crun's median on this machine kind
// is about 9 ms). make bench runs runc and crun on the same bundle beside it.
func BenchmarkRunTrue(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	bin := buildB(b)
	root := tempRoot(b)
	bundleDir := benchBundle(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin, "--root", root, "run", "--bundle", bundleDir, "bench"+strconv.Itoa(i))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("run: %v: %s", err, out)
		}
	}
}

// BenchmarkCreateStartDelete times create, start and delete --force of a
// /bin/true container as three commands, the way engines drive runc.
func BenchmarkCreateStartDelete(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	bin := buildB(b)
	root := tempRoot(b)
	bundleDir := benchBundle(b)
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := "bench" + strconv.Itoa(i)
		for _, args := range [][]string{{"create", "--bundle", bundleDir, id}, {"start", id}, {"delete", "--force", id}} {
			cmd := exec.Command(bin, append([]string{"--root", root}, args...)...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
			if err := cmd.Run(); err != nil {
				b.Fatalf("%v: %v", args, err)
			}
		}
		reapAll() // the init was re-parented to us (TestMain makes us a subreaper)
	}
}

// reapAll collects zombie children without blocking; every exec.Cmd of the
// caller has been waited for already.
func reapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

func buildB(b *testing.B) string {
	if binary != "" {
		return binary
	}
	out := binaryPath()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -extldflags -static", "-o", out, "github.com/berth-dev/berth/cmd/berth-runtime")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build: %v: %s", err, o)
	}
	binary = out
	return out
}

func tempRoot(b *testing.B) string {
	root, err := os.MkdirTemp("/run", "berth-runtime-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(root) })
	return root
}

func benchBundle(b *testing.B) string {
	// bundle() wants a *testing.T only for Helper/Fatal/TempDir.
	return bundle(b, "/bin/true")
}
