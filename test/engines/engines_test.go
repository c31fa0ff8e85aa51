package engines

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

var built struct {
	sync.Once
	path string
	err  error
}

// berthRuntime builds berth-runtime once for this test binary, statically
// as `make build` does, under _output/test.
func berthRuntime(t *testing.T) string {
	t.Helper()
	built.Do(func() {
		root, err := testutil.RepoRoot()
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(root, "_output", "test", "berth-runtime")
		cmd := exec.Command("go", "build", "-trimpath", "-tags", "netgo,osusergo", "-ldflags", "-extldflags -static", "-o", built.path, "./cmd/berth-runtime")
		cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("build berth-runtime: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

func need(t *testing.T, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s (Debian package: %s)", b, map[string]string{"podman": "podman", "dockerd": "docker.io", "containerd": "docker.io", "docker": "docker.io"}[b])
		}
	}
}

// run runs a command and returns its trimmed combined output.
func run(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// removeCgroups removes the parent cgroups an engine creates and leaves
// (podman's libpod_parent, dockerd's docker) once they are empty.
func removeCgroups(t *testing.T, name string) {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", name))
	for _, d := range dirs {
		subs, _ := filepath.Glob(filepath.Join(d, "*", "cgroup.procs"))
		for _, s := range subs {
			_ = os.Remove(filepath.Dir(s))
		}
		if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
			t.Errorf("remove %s: %v", d, err)
		}
	}
}

// session drives one engine's CLI through the scenario every engine must
// pass with berth-runtime: load, run --rm, run -d, exec, stop, rm.
func session(t *testing.T, cli func(args ...string) string, runFlags ...string) {
	t.Helper()
	p := testutil.Images(t)
	cli("load", "-i", p.DockerArchive)

	out := cli(append(append([]string{"run", "--rm"}, runFlags...), "busybox:latest", "sh", "-c", "echo hello from $(hostname); grep CapEff /proc/self/status")...)
	if !strings.Contains(out, "hello from") || !strings.Contains(out, "CapEff") {
		t.Fatalf("run --rm output: %q", out)
	}
	cli(append(append([]string{"run", "-d", "--name", "c1"}, runFlags...), "busybox:latest", "sh", "-c", `trap "exit 0" TERM; while true; do sleep 0.1; done`)...)
	if got := cli("exec", "c1", "sh", "-c", "echo exec:$$; cat /proc/1/cmdline | tr '\\0' ' '"); !strings.Contains(got, "exec:") || !strings.Contains(got, "trap") {
		t.Fatalf("exec output: %q", got)
	}
	if got := cli("exec", "-t", "c1", "tty"); !strings.Contains(got, "/dev/pts/") {
		t.Fatalf("exec -t output: %q", got)
	}
	start := time.Now()
	cli("stop", "-t", "10", "c1")
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("stop waited %v: the TERM trap did not run", d)
	}
	cli("rm", "c1")
	if got := cli("ps", "-a", "-q"); got != "" {
		t.Fatalf("containers left: %q", got)
	}
}

func TestPodmanDrivesBerthRuntime(t *testing.T) {
	testutil.RequireRoot(t)
	need(t, "podman")
	removeNewDirs(t, toolRunDirs...)
	dir := t.TempDir()
	// podman refuses a runroot longer than 50 characters.
	runRoot, err := os.MkdirTemp("/run", "berth-podman-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(runRoot) })
	base := []string{"podman", "--root", filepath.Join(dir, "root"), "--runroot", runRoot,
		"--tmpdir", filepath.Join(dir, "tmp"), "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
		"--events-backend", "file", "--runtime", berthRuntime(t)}
	cli := func(args ...string) string { return run(t, nil, append(base, args...)...) }
	t.Cleanup(func() {
		_ = exec.Command(base[0], append(base[1:], "rm", "-af")...).Run()
		removeCgroups(t, "libpod_parent")
	})
	// This host's root lacks CAP_SYS_RESOURCE: podman's default ulimits
	// would exceed the hard limits.
	session(t, cli, "--network", "none", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096")
}

func TestDockerdDrivesBerthRuntime(t *testing.T) {
	testutil.RequireRoot(t)
	need(t, "dockerd", "containerd", "docker", "unshare")
	removeNewDirs(t, toolRunDirs...)
	dir := t.TempDir()
	sock := filepath.Join(dir, "docker.sock")
	script := fmt.Sprintf(`
cat > %[1]s/containerd.toml <<EOT
version = 2
root = "%[1]s/containerd/root"
state = "%[1]s/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "%[1]s/containerd.sock"
EOT
containerd --config %[1]s/containerd.toml >%[1]s/containerd.log 2>&1 &
for i in $(seq 100); do [ -S %[1]s/containerd.sock ] && break; sleep 0.1; done
exec dockerd --containerd %[1]s/containerd.sock --data-root %[1]s/data --exec-root %[1]s/exec \
	--pidfile %[1]s/dockerd.pid -H unix://%[2]s --bridge=none --iptables=false --ip6tables=false \
	--ip-masq=false --add-runtime berth=%[3]s >%[1]s/dockerd.log 2>&1
`, dir, sock, berthRuntime(t))
	// dockerd and containerd run in a private mount namespace of their own,
	// so nothing they mount reaches the host; the namespace goes with them.
	daemon := exec.Command("unshare", "--mount", "--propagation", "private", "--fork", "sh", "-c", script)
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopTree(daemon.Process.Pid)
		_ = daemon.Wait()
		removeCgroups(t, "docker")
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Logf("dockerd log:\n%s", b)
		}
	})
	env := []string{"DOCKER_HOST=unix://" + sock}
	deadline := time.Now().Add(30 * time.Second)
	for exec.Command("docker", "-H", "unix://"+sock, "version").Run() != nil {
		if time.Now().After(deadline) {
			t.Fatal("dockerd did not come up in 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cli := func(args ...string) string { return run(t, env, append([]string{"docker"}, args...)...) }
	session(t, cli, "--runtime", "berth", "--network", "none")
}

// toolRunDirs are run-time directories that podman, netavark, dockerd,
// containerd and berth-runtime (as their runtime, with its default root)
// make at fixed places whatever roots they are given.
var toolRunDirs = []string{"/run/containers", "/run/docker", "/run/containerd", "/run/berth-runtime"}

// removeNewDirs removes, after the test, those of dirs that did not exist
// before it: the tools the test started made them.
func removeNewDirs(t *testing.T, dirs ...string) {
	var made []string
	for _, d := range dirs {
		if _, err := os.Lstat(d); errors.Is(err, fs.ErrNotExist) {
			made = append(made, d)
		}
	}
	t.Cleanup(func() {
		for _, d := range made {
			_ = os.RemoveAll(d)
		}
	})
}

// stopTree sends SIGTERM to every process below pid (dockerd, containerd),
// deepest first, then to pid, and waits for them to go.
func stopTree(pid int) {
	var all []int
	var walk func(int)
	walk = func(p int) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p, p))
		for _, f := range strings.Fields(string(b)) {
			var c int
			fmt.Sscan(f, &c)
			walk(c)
			all = append(all, c)
		}
	}
	walk(pid)
	for _, p := range all {
		if proc, err := os.FindProcess(p); err == nil {
			_ = proc.Signal(os.Interrupt)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range all {
		for time.Now().Before(deadline) {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", p)); err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
