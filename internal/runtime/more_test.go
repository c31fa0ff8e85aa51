package runtime

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestTimeNamespaceOffsets(t *testing.T) {
	testutil.RequireRoot(t)
	rt := newRuntime(t)
	b := newBundle(t, chain(shell("cut -d. -f1 /proc/uptime; cat /proc/self/timens_offsets"), func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 86400 * 365}, "monotonic": {Secs: 7}}
	}))
	out, code := runContainer(t, rt, "timens", b)
	lines := strings.Split(out, "\n")
	if code != 0 || len(lines) < 3 {
		t.Fatalf("exit %d, output %q", code, out)
	}
	up, _ := strconv.Atoi(lines[0])
	if up < 86400*365 {
		t.Fatalf("uptime in the container %d, want at least a year", up)
	}
	if !strings.Contains(out, "monotonic           7") && !strings.Contains(out, "monotonic 7") {
		t.Logf("offsets: %q", out)
	}
}

func TestMemoryLimitOOMKills(t *testing.T) {
	testutil.RequireRoot(t)
	rt := newRuntime(t)
	limit := int64(16 << 20)
	swap := limit
	// A 64 MiB string in the shell's memory cannot fit in 16 MiB.
	b := newBundle(t, chain(shell(`x=$(head -c 67108864 /dev/zero | tr '\0' a); echo survived ${#x}`), func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &swap}
	}))
	out, code := runContainer(t, rt, "oom", b)
	if code == 0 || strings.Contains(out, "survived") {
		t.Fatalf("exit %d, output %q: the memory limit did not hold", code, out)
	}
}

func TestPauseFreezesProcesses(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	c := startSleeper(t, rt, "pause", nil)
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	pids, err := c.Processes(ctx)
	if err != nil || len(pids) == 0 {
		t.Fatalf("processes: %v %v", pids, err)
	}
	for _, pid := range pids {
		// A frozen task is in the refrigerator or, since Linux 6.1, left
		// asleep in TASK_FROZEN, which /proc shows as "D".
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/wchan")
		if st := procState(t, pid); st != "D" && !strings.Contains(string(b), "refrigerator") {
			t.Errorf("pid %d is %q waiting in %q, not frozen", pid, st, b)
		}
	}
	// A frozen container still refuses a plain delete and resumes.
	if err := c.Delete(ctx, false); err == nil {
		t.Fatal("delete of a paused container succeeded")
	}
	if err := c.Resume(ctx); err != nil {
		t.Fatal(err)
	}
}

// A second container joins the first one's network namespace (per-thread
// setns by the init) and pid namespace (nsenter, before the Go runtime).
func TestJoinNamespacesByPath(t *testing.T) {
	testutil.RequireRoot(t)
	rt := newRuntime(t)
	a := startSleeper(t, rt, "ns-a", nil)
	path := func(kind string) string { return "/proc/" + strconv.Itoa(a.Pid()) + "/ns/" + kind }
	b := newBundle(t, chain(shell("readlink /proc/self/ns/net; readlink /proc/self/ns/pid; ps -o comm | grep -c sleep"), func(s *specs.Spec) {
		var nss []specs.LinuxNamespace
		for _, ns := range s.Linux.Namespaces {
			switch ns.Type {
			case specs.NetworkNamespace:
				ns.Path = path("net")
			case specs.PIDNamespace:
				ns.Path = path("pid")
			}
			nss = append(nss, ns)
		}
		s.Linux.Namespaces = nss
	}))
	out, code := runContainer(t, rt, "ns-b", b)
	wantNet, _ := os.Readlink(path("net"))
	wantPid, _ := os.Readlink(path("pid"))
	lines := strings.Split(out, "\n")
	if code != 0 || len(lines) < 3 || lines[0] != wantNet || lines[1] != wantPid || lines[2] != "1" {
		t.Fatalf("exit %d, output %q; want %s %s and a sleep in sight", code, out, wantNet, wantPid)
	}
}

// SCMP_ACT_NOTIFY: the runtime hands the notify fd, with the container
// process state, to the agent at listenerPath. The agent here closes the fd
// at once, after which the notified syscall fails with ENOSYS.
func TestSeccompNotifyFDReachesListener(t *testing.T) {
	testutil.RequireRoot(t)
	rt := newRuntime(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type got struct {
		state specs.ContainerProcessState
		nfds  int
		err   error
	}
	res := make(chan got, 1)
	go func() {
		conn, err := l.AcceptUnix()
		if err != nil {
			res <- got{err: err}
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 8192), make([]byte, 128)
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			res <- got{err: err}
			return
		}
		var g got
		g.err = json.Unmarshal(buf[:n], &g.state)
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		for _, m := range msgs {
			fds, _ := unix.ParseUnixRights(&m)
			g.nfds += len(fds)
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
		res <- g
	}()
	b := newBundle(t, chain(shell("mkdir /tmp/x 2>&1; echo done"), func(s *specs.Spec) {
		s.Root.Readonly = false
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow, ListenerPath: sock, ListenerMetadata: "meta1",
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}},
		}
	}))
	out, code := runContainer(t, rt, "notify", b)
	g := <-res
	if g.err != nil || g.nfds != 1 || g.state.Metadata != "meta1" || g.state.State.ID != "notify" || g.state.Pid <= 0 ||
		len(g.state.Fds) != 1 || g.state.Fds[0] != specs.SeccompFdName {
		t.Fatalf("agent got %+v", g)
	}
	if code != 0 || !strings.Contains(out, "done") || strings.Contains(out, "File exists") {
		t.Fatalf("exit %d, output %q", code, out)
	}
}
