// Package runtime_test drives the berth-runtime binary through its
// runc-compatible command line, the way other engines drive runc.
package runtime_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// The test is the subreaper of the containers it creates (as containerd's
// shim and podman's conmon are for runc): a created container's init
// outlives `berth-runtime create` and is re-parented here, so reap() can
// collect it after delete.
func TestMain(m *testing.M) {
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	removeStaleBinaries()
	code := testutil.Run(m)
	_ = os.Remove(binaryPath())
	os.Exit(code)
}

// binaryPath is where this test process builds berth-runtime: one per
// process, so concurrent test runs do not overwrite each other's.
func binaryPath() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("berth-runtime-clitest-%d", os.Getpid()))
}

// removeStaleBinaries deletes the binaries of test processes that are gone.
func removeStaleBinaries() {
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), "berth-runtime-clitest-*"))
	for _, f := range old {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(f), "berth-runtime-clitest-"))
		if err == nil && unix.Kill(pid, 0) == unix.ESRCH {
			_ = os.Remove(f)
		}
	}
}

// reap collects a container init re-parented to the test.
func reap(pid int) {
	if pid > 0 {
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, 0, nil)
	}
}

// destroy force-deletes id and reaps its init.
func (c *cli) destroy(id string) {
	out, _, code := c.run("state", id)
	var s specs.State
	_ = json.Unmarshal([]byte(out), &s)
	c.run("delete", "--force", id)
	if code == 0 {
		reap(s.Pid)
	}
}

var binary string

// build compiles berth-runtime once per test binary, the way the Makefile
// does (cgo for nsenter, static glibc).
func build(t *testing.T) string {
	t.Helper()
	if binary != "" {
		return binary
	}
	root, err := testutil.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := binaryPath()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -extldflags -static", "-o", out, "./cmd/berth-runtime")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build berth-runtime: %v\n%s", err, b)
	}
	binary = out
	return out
}

type cli struct {
	t    *testing.T
	bin  string
	root string
}

func newCLI(t *testing.T) *cli {
	bin := build(t)
	root, err := os.MkdirTemp("/run", "berth-runtime-cli-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	return &cli{t: t, bin: bin, root: root}
}

// run runs the CLI and returns stdout, stderr and the exit code.
func (c *cli) run(args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command(c.bin, append([]string{"--root", c.root}, args...)...)
	// Files, not pipes: a created container's init inherits them and
	// outlives the command, so pipes would never reach EOF.
	outf, err := os.CreateTemp(c.t.TempDir(), "out")
	if err != nil {
		c.t.Fatal(err)
	}
	errf, err := os.CreateTemp(c.t.TempDir(), "err")
	if err != nil {
		c.t.Fatal(err)
	}
	defer outf.Close()
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = outf, errf
	err = cmd.Run()
	outb, _ := os.ReadFile(outf.Name())
	errbb, _ := os.ReadFile(errf.Name())
	out, errb := bytes.NewBuffer(outb), bytes.NewBuffer(errbb)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("berth-runtime %v: exit %d: %s%s", args, code, errs, out)
	}
	return out
}

func bundle(t testing.TB, args ...string) string {
	t.Helper()
	img := testutil.Images(t)
	b, err := os.ReadFile(filepath.Join(img.Bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	s.Root.Path = img.Rootfs
	s.Process.Args = args
	dir := t.TempDir()
	b, _ = json.Marshal(&s)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCLIRunForeground(t *testing.T) {
	testutil.RequireRoot(t)
	c := newCLI(t)
	out, _, code := c.run("run", "--bundle", bundle(t, "/bin/sh", "-c", "echo hi; exit 7"), "fg")
	if code != 7 || out != "hi\n" {
		t.Fatalf("exit %d, output %q", code, out)
	}
	if out := c.ok("list", "-q"); out != "" {
		t.Fatalf("left behind: %q", out)
	}
}

func TestCLILifecycle(t *testing.T) {
	testutil.RequireRoot(t)
	c := newCLI(t)
	b := bundle(t, "sleep", "600")
	pidFile := filepath.Join(t.TempDir(), "pid")
	c.ok("create", "--bundle", b, "--pid-file", pidFile, "life")
	t.Cleanup(func() { c.destroy("life") })
	state := func() specs.State {
		var s specs.State
		if err := json.Unmarshal([]byte(c.ok("state", "life")), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := state(); s.Status != "created" || s.Bundle != b {
		t.Fatalf("state after create: %+v", s)
	}
	pid, _ := os.ReadFile(pidFile)
	if s := state(); string(pid) != jsonNum(s.Pid) {
		t.Fatalf("pid file %q, state pid %d", pid, s.Pid)
	}
	c.ok("start", "life")
	if s := state(); s.Status != "running" {
		t.Fatalf("state after start: %+v", s)
	}
	if _, errs, code := c.run("start", "life"); code == 0 || !strings.Contains(errs, "container is running") {
		t.Fatalf("second start: exit %d %s", code, errs)
	}
	if out := c.ok("list"); !strings.Contains(out, "life") || !strings.Contains(out, "running") {
		t.Fatalf("list:\n%s", out)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(c.ok("list", "--format", "json")), &list); err != nil || len(list) != 1 || list[0]["id"] != "life" {
		t.Fatalf("list json: %v %v", list, err)
	}
	var pids []int
	if err := json.Unmarshal([]byte(c.ok("ps", "--format", "json", "life")), &pids); err != nil || len(pids) != 1 {
		t.Fatalf("ps json: %v %v", pids, err)
	}
	if out := c.ok("ps", "life"); !strings.Contains(out, "sleep 600") {
		t.Fatalf("ps:\n%s", out)
	}
	if out := c.ok("exec", "life", "/bin/sh", "-c", "echo $$ $(hostname)"); out != "2 berth\n" && !strings.HasSuffix(out, " berth\n") {
		t.Fatalf("exec output %q", out)
	}
	if _, _, code := c.run("exec", "life", "/bin/sh", "-c", "exit 5"); code != 5 {
		t.Fatalf("exec exit %d, want 5", code)
	}
	c.ok("pause", "life")
	if s := state(); s.Status != "paused" {
		t.Fatalf("state after pause: %+v", s)
	}
	c.ok("resume", "life")
	c.ok("update", "--memory", "64M", "--pids-limit", "30", "life")
	var ev struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(c.ok("events", "--stats", "life")), &ev); err != nil || ev.Type != "stats" || !strings.Contains(string(ev.Data), "67108864") {
		t.Fatalf("events --stats: %+v %v", ev, err)
	}
	if _, errs, code := c.run("delete", "life"); code == 0 || !strings.Contains(errs, "container is running") {
		t.Fatalf("delete of a running container: exit %d %s", code, errs)
	}
	if _, errs, code := c.run("kill", "life", "SIGBOGUS"); code == 0 || !strings.Contains(errs, `unknown signal "SIGBOGUS"`) {
		t.Fatalf("kill with an unknown signal: exit %d %s", code, errs)
	}
	pidNow := state().Pid
	c.ok("kill", "life", "KILL")
	reap(pidNow)
	c.ok("delete", "life")
	if _, errs, code := c.run("state", "life"); code == 0 || !strings.Contains(errs, "not found") {
		t.Fatalf("state after delete: exit %d %s", code, errs)
	}
}

func jsonNum(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestCLIErrors(t *testing.T) {
	testutil.RequireRoot(t)
	c := newCLI(t)
	b := bundle(t, "sleep", "600")
	c.ok("create", "--bundle", b, "dup")
	t.Cleanup(func() { c.destroy("dup") })
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"create", "--bundle", b, "dup"}, "already exists"},
		{[]string{"create", "--bundle", t.TempDir(), "x"}, "config.json: not found"},
		{[]string{"--systemd-cgroup", "create", "--bundle", b, "x"}, "systemd"},
		{[]string{"kill", "dup", "NOPE"}, "unknown signal"},
		{[]string{"start", "nosuch"}, "not found"},
		{[]string{"bogus"}, "unknown command"},
	}
	for _, tc := range cases {
		_, errs, code := c.run(tc.args...)
		if code == 0 || !strings.Contains(errs, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, errs, tc.msg)
		}
	}
	// delete --force of a missing container succeeds, as with runc.
	c.ok("delete", "--force", "nosuch")
	if out := c.ok("list", "-q"); out != "dup\n" {
		t.Fatalf("list after errors: %q", out)
	}
}

func TestCLISpecFeaturesVersion(t *testing.T) {
	testutil.RequireRoot(t)
	c := newCLI(t)
	dir := t.TempDir()
	c.ok("spec", "--bundle", dir)
	var s specs.Spec
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(b, &s); err != nil || s.Process == nil || s.Root.Path != "rootfs" {
		t.Fatalf("spec: %v", err)
	}
	if _, errs, code := c.run("spec", "--bundle", dir); code == 0 || !strings.Contains(errs, "exists") {
		t.Fatalf("spec over an existing config: exit %d %s", code, errs)
	}
	rl := t.TempDir()
	c.ok("spec", "--rootless", "--bundle", rl)
	b, _ = os.ReadFile(filepath.Join(rl, "config.json"))
	if !strings.Contains(string(b), "uidMappings") {
		t.Fatal("rootless spec has no uidMappings")
	}
	var f map[string]any
	if err := json.Unmarshal([]byte(c.ok("features")), &f); err != nil || f["ociVersionMax"] == nil {
		t.Fatalf("features: %v %v", f, err)
	}
	if out := c.ok("--version"); !strings.Contains(out, "berth-runtime version") {
		t.Fatalf("version: %q", out)
	}
}

func TestCLILogJSON(t *testing.T) {
	testutil.RequireRoot(t)
	c := newCLI(t)
	logf := filepath.Join(t.TempDir(), "log.json")
	_, _, code := c.run("--log", logf, "--log-format", "json", "start", "nosuch")
	if code == 0 {
		t.Fatal("start of a missing container succeeded")
	}
	b, _ := os.ReadFile(logf)
	var l map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(b), &l); err != nil || l["level"] != "error" || !strings.Contains(l["msg"].(string), "not found") {
		t.Fatalf("log %q: %v", b, err)
	}
}

// A foreground run of a terminal process without --console-socket proxies
// the pty to the caller's own terminal, as runc does (script(1) provides
// the terminal here).
func TestCLIRunTerminalProxy(t *testing.T) {
	testutil.RequireRoot(t)
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("needs script(1) from util-linux")
	}
	c := newCLI(t)
	b := bundle(t, "/bin/sh", "-c", "tty; stty size")
	spec := filepath.Join(b, "config.json")
	raw, _ := os.ReadFile(spec)
	var s specs.Spec
	_ = json.Unmarshal(raw, &s)
	s.Process.Terminal = true
	raw, _ = json.Marshal(&s)
	if err := os.WriteFile(spec, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("script", "-qc", c.bin+" --root "+c.root+" run --bundle "+b+" tty1", "/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "/dev/pts/0") {
		t.Fatalf("run with a terminal: %v: %q", err, out)
	}
}

// --preserve-fds passes the caller's fd 3 into the container; exec
// --detach --pid-file returns at once with the pid written; kill --all
// reaches every process of the container.
func TestCLIPreserveFDsDetachAndKillAll(t *testing.T) {
	testutil.RequireRoot(t)
	c := newCLI(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b := bundle(t, "/bin/sh", "-c", "echo through-fd3 >&3; exec sleep 600")
	cmd := exec.Command(c.bin, "--root", c.root, "create", "--preserve-fds", "1", "--bundle", b, "keep")
	cmd.ExtraFiles = []*os.File{w}
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	errf, _ := os.CreateTemp(t.TempDir(), "err")
	defer errf.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, errf
	if err := cmd.Run(); err != nil {
		msg, _ := os.ReadFile(errf.Name())
		t.Fatalf("create: %v: %s", err, msg)
	}
	w.Close()
	t.Cleanup(func() { c.destroy("keep") })
	c.ok("start", "keep")
	buf := make([]byte, 64)
	n, _ := r.Read(buf)
	if got := strings.TrimSpace(string(buf[:n])); got != "through-fd3" {
		t.Fatalf("read from the preserved fd: %q", got)
	}
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	c.ok("exec", "--detach", "--pid-file", pidFile, "keep", "sleep", "500")
	raw, err := os.ReadFile(pidFile)
	if err != nil || len(raw) == 0 {
		t.Fatalf("exec pid file: %q %v", raw, err)
	}
	var pids []int
	if err := json.Unmarshal([]byte(c.ok("ps", "--format", "json", "keep")), &pids); err != nil || len(pids) != 2 {
		t.Fatalf("ps after exec --detach: %v %v", pids, err)
	}
	c.ok("kill", "--all", "keep", "9")
	// Both the init and the exec'd process were re-parented to us.
	reapChildren(5 * time.Second)
	var st specs.State
	if err := json.Unmarshal([]byte(c.ok("state", "keep")), &st); err != nil || st.Status != "stopped" {
		t.Fatalf("state after kill --all: %+v %v", st, err)
	}
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
