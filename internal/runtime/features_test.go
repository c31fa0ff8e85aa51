package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

// startSleeper creates and starts a long-running container and removes it
// at cleanup.
func startSleeper(t *testing.T, rt *Runtime, id string, edit func(*specs.Spec)) *Container {
	t.Helper()
	ctx := context.Background()
	b := newBundle(t, chain(shell("sleep 600"), edit))
	c, err := rt.Create(ctx, id, CreateOptions{Bundle: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Delete(ctx, true); err != nil {
			t.Errorf("delete: %v", err)
		}
	})
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// execOut runs args in c and returns the output and exit status.
func execOut(t *testing.T, c *Container, edit func(*specs.Process), args ...string) (string, int) {
	t.Helper()
	ctx := context.Background()
	p := *c.Spec().Process
	p.Args = args
	if edit != nil {
		edit(&p)
	}
	r, w, _ := os.Pipe()
	defer r.Close()
	proc, err := c.Exec(ctx, ExecOptions{Process: &p, IO: IO{Stdout: w, Stderr: w}})
	w.Close()
	if err != nil {
		t.Fatalf("exec %v: %v", args, err)
	}
	out, _ := io.ReadAll(r)
	code, err := proc.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out)), code
}

func TestExecJoinsEveryNamespaceAndCgroup(t *testing.T) {
	testutil.RequireRoot(t)
	rt := newRuntime(t)
	c := startSleeper(t, rt, "exec", nil)
	out, code := execOut(t, c, nil, "/bin/sh", "-c", "for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done; cat /proc/self/cgroup | grep memory; hostname; ps -o pid,comm | grep sleep")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	lines := strings.Split(out, "\n")
	for i, n := range []string{"pid", "net", "ipc", "uts", "mnt", "cgroup"} {
		want, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", c.Pid(), n))
		if err != nil {
			t.Fatal(err)
		}
		if lines[i] != want {
			t.Errorf("exec'd process is in %s, container in %s", lines[i], want)
		}
	}
	if !strings.Contains(out, ":memory:/\n") || !strings.Contains(out, "berth") || !strings.Contains(out, "1 sleep") {
		t.Errorf("unexpected output:\n%s", out)
	}
	// The process is counted in the container's cgroup while it runs.
	ctx := context.Background()
	r, w, _ := os.Pipe()
	p := *c.Spec().Process
	p.Args = []string{"sleep", "30"}
	proc, err := c.Exec(ctx, ExecOptions{Process: &p, IO: IO{Stdout: w, Stderr: w}})
	w.Close()
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	pids, err := c.Processes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, pid := range pids {
		found = found || pid == proc.Pid()
	}
	if !found {
		t.Errorf("exec'd pid %d not in the cgroup's %v", proc.Pid(), pids)
	}
	_ = proc.Signal(unix.SIGKILL)
	if code, _ := proc.Wait(ctx); code != 137 {
		t.Errorf("killed exec exit %d", code)
	}
}

func TestExecUserCwdEnvAndBadCwd(t *testing.T) {
	testutil.RequireRoot(t)
	rt := newRuntime(t)
	c := startSleeper(t, rt, "execuser", nil)
	out, code := execOut(t, c, func(p *specs.Process) {
		p.User = specs.User{UID: 65534, GID: 65534}
		p.Cwd = "/tmp"
		p.Env = append(p.Env, "X=y")
	}, "/bin/sh", "-c", "id -u; pwd; echo $X")
	if code != 0 || out != "65534\n/tmp\ny" {
		t.Fatalf("exit %d, output %q", code, out)
	}
	ctx := context.Background()
	p := *c.Spec().Process
	p.Cwd = "/does/not/exist"
	if _, err := c.Exec(ctx, ExecOptions{Process: &p}); err == nil || !strings.Contains(err.Error(), "cwd") {
		t.Fatalf("exec with a missing cwd: %v", err)
	}
}

func TestHooksFireOnceInOrder(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	dir := t.TempDir()
	logf := filepath.Join(dir, "hooks.log")
	hook := func(name string) specs.Hook {
		// Each hook records its name, the state it got on stdin, and the
		// mount namespace it ran in.
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c",
			`read -r st; echo "` + name + ` $(readlink /proc/self/ns/mnt) $HOOKENV $st" >> ` + logf}, Env: []string{"HOOKENV=" + name + "-env"}}
	}
	b := newBundle(t, chain(shell("sleep 600"), func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{
			Prestart:        []specs.Hook{hook("prestart")}, //nolint:staticcheck
			CreateRuntime:   []specs.Hook{hook("createRuntime")},
			CreateContainer: []specs.Hook{hook("createContainer")},
			StartContainer:  []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo startContainer $(readlink /proc/self/ns/mnt) > /dev/null"}}},
			Poststart:       []specs.Hook{hook("poststart")},
			Poststop:        []specs.Hook{hook("poststop")},
		}
	}))
	c, err := rt.Create(ctx, "hooks", CreateOptions{Bundle: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(ctx, true) })
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, true); err != nil {
		t.Fatal(err)
	}
	b2, err := os.ReadFile(logf)
	if err != nil {
		t.Fatal(err)
	}
	hostMnt, _ := os.Readlink("/proc/self/ns/mnt")
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(b2)), "\n") {
		f := strings.SplitN(l, " ", 4)
		names = append(names, f[0])
		inHost := f[1] == hostMnt
		if want := f[0] != "createContainer"; inHost != want {
			t.Errorf("hook %s ran in mount namespace %s (host %s)", f[0], f[1], hostMnt)
		}
		if f[2] != f[0]+"-env" {
			t.Errorf("hook %s env %q", f[0], f[2])
		}
		var st specs.State
		if err := json.Unmarshal([]byte(f[3]), &st); err != nil || st.ID != "hooks" || st.Pid <= 0 && f[0] != "poststop" {
			t.Errorf("hook %s state %q: %v", f[0], f[3], err)
		}
	}
	want := "prestart createRuntime createContainer poststart poststop"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("hooks ran %q, want %q", got, want)
	}
}

func TestHookFailureAndTimeoutFailCreate(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	one := 1
	for _, h := range []specs.Hook{
		{Path: "/bin/sh", Args: []string{"sh", "-c", "echo nope >&2; exit 3"}},
		{Path: "/bin/sleep", Args: []string{"sleep", "10"}, Timeout: &one},
	} {
		b := newBundle(t, func(s *specs.Spec) { s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{h}} })
		_, err := rt.Create(ctx, "badhook", CreateOptions{Bundle: b})
		if err == nil || !strings.Contains(err.Error(), "createRuntime hook") {
			t.Fatalf("create with a failing hook: %v", err)
		}
		t.Log(err)
		if _, err := rt.Load(ctx, "badhook"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("state left behind: %v", err)
		}
	}
}

func TestTerminalThroughConsoleSocket(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan *os.File, 1)
	go func() {
		conn, err := l.AcceptUnix()
		if err != nil {
			got <- nil
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 64), make([]byte, 64)
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			got <- nil
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		fds, _ := unix.ParseUnixRights(&msgs[0])
		got <- os.NewFile(uintptr(fds[0]), "pty")
	}()
	b := newBundle(t, chain(shell("tty; stty size; echo done"), func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.ConsoleSize = &specs.Box{Height: 33, Width: 111}
	}))
	c, err := rt.Create(ctx, "tty", CreateOptions{Bundle: b, ConsoleSocket: sock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(ctx, true) })
	master := <-got
	if master == nil {
		t.Fatal("no pty master received")
	}
	defer master.Close()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	buf := make([]byte, 1024)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "done") && time.Now().Before(deadline) {
		n, err := master.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if s := out.String(); !strings.Contains(s, "/dev/pts/0") || !strings.Contains(s, "33 111") {
		t.Fatalf("pty output %q", s)
	}
	if code, _ := c.Wait(ctx); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestUserNamespaceMapping(t *testing.T) {
	testutil.RequireRoot(t)
	rt := newRuntime(t)
	b := newBundleCopy(t, chain(shell("cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /tmp/f && stat -c %u /tmp/f"), func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Root.Readonly = false
	}))
	// The mapped root must be able to reach the bundle.
	for d := b; d != "/"; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o005 != 0o005 {
			if err := os.Chmod(d, st.Mode().Perm()|0o005); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The spec expects the rootfs to be owned by the mapped root.
	if err := filepath.Walk(filepath.Join(b, "rootfs"), func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, 100000, 100000)
	}); err != nil {
		t.Fatal(err)
	}
	out, code := runContainer(t, rt, "userns", b)
	fields := strings.Fields(out)
	if code != 0 || len(fields) < 8 || fields[0] != "0" || fields[1] != "100000" || fields[2] != "65536" || fields[6] != "0" || fields[7] != "0" {
		t.Fatalf("exit %d, output %q", code, out)
	}
	st, err := os.Stat(filepath.Join(b, "rootfs", "tmp", "f"))
	if err != nil {
		t.Fatal(err)
	}
	if uid := st.Sys().(*syscall.Stat_t).Uid; uid != 100000 {
		t.Fatalf("file made by container root is owned by host uid %d, want 100000", uid)
	}
}
