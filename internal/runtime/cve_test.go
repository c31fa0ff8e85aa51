package runtime

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/runtime/caps"
	"github.com/berth-dev/berth/internal/testutil"
)

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// CVE-2019-5736: a container process keeps a handle on the runtime's
// binary (/proc/<init>/exe) and, once no copy of it runs any more, reopens
// it for writing. The init runs from a read-only detached mount, so the
// reopen fails and the host binary is untouched.
func TestInitBinaryNotWritableFromContainer(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	// A private copy of the test binary as the init, so that no other
	// process runs it (a running binary would refuse writes with ETXTBSY
	// for an unrelated reason and hide what this test checks).
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "init-copy")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	before := fileSum(t, bin)
	initBinary = bin
	t.Cleanup(func() { initBinary = "" })

	rt := newRuntime(t)
	b := newBundle(t, shell("sleep 600"))
	c, err := rt.Create(ctx, "cve5736", CreateOptions{Bundle: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(ctx, true) })

	// While the container is "created", pid 1 is the init: grab its exe.
	// The attacker is as privileged as can be: every capability (reading
	// another process's exe needs ptrace access to it).
	var all []string
	cur, err := caps.Current()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range caps.Known() {
		if c, err := caps.Parse([]string{n}); err == nil && cur.Permitted&(1<<c[0]) != 0 {
			all = append(all, n)
		}
	}
	p := *c.Spec().Process
	p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
	p.NoNewPrivileges = false
	p.Args = []string{"/bin/sh", "-c", `exec 7</proc/1/exe || exit 9
echo ready
read x
echo pwned 1<>/proc/self/fd/7 && echo WROTE || echo REFUSED
echo pwned >/proc/self/fd/7 && echo WROTE || echo REFUSED`}
	inR, inW, _ := os.Pipe()
	outR, outW, _ := os.Pipe()
	proc, err := c.Exec(ctx, ExecOptions{Process: &p, IO: IO{Stdin: inR, Stdout: outW, Stderr: outW}})
	inR.Close()
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	// Reap the attacker before the container goes: its parent is us, and
	// the container's pid 1 cannot finish exiting while it is a zombie.
	t.Cleanup(func() { inW.Close(); _ = proc.Signal(unix.SIGKILL); _, _ = proc.Wait(ctx) })
	rd := bufio.NewReader(outR)
	if l, err := rd.ReadString('\n'); err != nil || l != "ready\n" {
		t.Fatalf("attacker: %q %v", l, err)
	}
	// start: the init execs sleep, so nothing runs the binary any more.
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Start returns once the init passed the fifo; let it reach execve.
	for i := 0; i < 500; i++ {
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", c.Pid())); !strings.Contains(exe, "init-copy") {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	fmt.Fprintln(inW)
	inW.Close()
	rest, _ := io.ReadAll(rd)
	_, _ = proc.Wait(ctx)
	out := string(rest)
	if strings.Contains(out, "WROTE") || !strings.Contains(out, "Read-only file system") {
		t.Fatalf("attacker output:\n%s", out)
	}
	if fileSum(t, bin) != before {
		t.Fatal("the runtime binary on the host changed")
	}
}

// No host fd may reach the container, and a working directory that
// resolves outside the root through one is refused (CVE-2024-21626).
func TestNoHostFDLeakAndCwdEscape(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	// A host directory fd without O_CLOEXEC, as a careless caller might
	// hold: the init inherits it.
	hostDir := t.TempDir()
	dfd, err := unix.Open(hostDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	// High enough not to be overwritten by the fds the runtime passes.
	const fd = 100
	if err := unix.Dup2(dfd, fd); err != nil {
		t.Fatal(err)
	}
	unix.Close(dfd)
	defer unix.Close(fd)

	// The container process, seen from the host once it runs: only stdio.
	c := startSleeper(t, rt, "fds", func(s *specs.Spec) { s.Process.Args = []string{"sleep", "600"} })
	var fds []string
	for i := 0; i < 500; i++ {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", c.Pid()))
		if strings.HasSuffix(exe, "busybox") {
			entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", c.Pid()))
			if err != nil {
				t.Fatal(err)
			}
			fds = nil
			for _, e := range entries {
				fds = append(fds, e.Name())
			}
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if strings.Join(fds, " ") != "0 1 2" {
		t.Fatalf("container process fds: %v, want only 0 1 2", fds)
	}

	b := newBundle(t, func(s *specs.Spec) { s.Process.Cwd = fmt.Sprintf("/proc/self/fd/%d", fd) })
	_, err = rt.Create(ctx, "cwdescape", CreateOptions{Bundle: b})
	if err == nil || !strings.Contains(err.Error(), "outside the container's root") {
		t.Fatalf("create with cwd through a leaked fd: %v", err)
	}
	if _, err := os.Stat(filepath.Join(rt.Root(), "cwdescape")); !os.IsNotExist(err) {
		t.Fatalf("state left behind: %v", err)
	}

	// The same through exec.
	c = startSleeper(t, rt, "cwdexec", nil)
	p := *c.Spec().Process
	p.Cwd = fmt.Sprintf("/proc/self/fd/%d", fd)
	var buf bytes.Buffer
	_, err = c.Exec(ctx, ExecOptions{Process: &p})
	if err == nil || !strings.Contains(err.Error(), "outside the container's root") {
		t.Fatalf("exec with cwd through a leaked fd: %v %s", err, buf.String())
	}
}
