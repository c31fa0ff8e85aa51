package nsenter

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// The test binary links this package, so it carries the constructor. It
// re-execs itself in two roles, chosen by os.Args[1]:
//
//	nsenter-holder DIR  pid 1 of new namespaces: sets a hostname, mounts its
//	                    own /proc and a tmpfs on DIR, prints "ready", and
//	                    lives until its stdin closes
//	nsenter-report      runs after the constructor joined namespaces: prints
//	                    what it sees from inside as JSON and exits
//
// By the time init runs, the constructor has already done its work.
func init() {
	if len(os.Args) < 2 {
		return
	}
	switch os.Args[1] {
	case "nsenter-holder":
		holder(os.Args[2])
	case "nsenter-report":
		if err := json.NewEncoder(os.Stdout).Encode(observe()); err != nil {
			os.Exit(3)
		}
		os.Exit(0)
	case "nsenter-exit":
		os.Exit(0)
	}
}

const holderHostname = "berth-holder"

func holder(dir string) {
	must := func(what string, err error) {
		if err != nil {
			fmt.Fprintf(os.Stderr, "holder: %s: %v\n", what, err)
			os.Exit(2)
		}
	}
	// A new mount namespace shares peer groups with the host's; make it
	// private before mounting, or the mounts would propagate back.
	must("make / private", unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""))
	must("sethostname", unix.Sethostname([]byte(holderHostname)))
	must("mount proc", unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""))
	must("mount tmpfs", unix.Mount("berth-mark", dir, "tmpfs", 0, "size=64k"))
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// observation is what a process sees from inside its namespaces.
type observation struct {
	Pid, UID, GID  int
	Hostname       string
	Mountinfo      string
	NS             map[string]string
	Pid1           string
	UIDMap, GIDMap string
	TimensOffsets  string
	EnvFD          string
	Sockets        []string
}

var nsKinds = []string{"user", "mnt", "net", "pid", "ipc", "uts", "cgroup", "time"}

func observe() observation {
	read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	o := observation{Pid: os.Getpid(), UID: os.Getuid(), GID: os.Getgid(), NS: map[string]string{}}
	o.Hostname, _ = os.Hostname()
	o.Mountinfo = read("/proc/self/mountinfo")
	o.Pid1 = strings.ReplaceAll(read("/proc/1/cmdline"), "\x00", " ")
	o.UIDMap = strings.Join(strings.Fields(read("/proc/self/uid_map")), " ")
	o.GIDMap = strings.Join(strings.Fields(read("/proc/self/gid_map")), " ")
	o.TimensOffsets = read("/proc/self/timens_offsets")
	o.EnvFD = os.Getenv(envFD)
	for _, k := range nsKinds {
		o.NS[k], _ = os.Readlink("/proc/self/ns/" + k)
	}
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		if l, _ := os.Readlink("/proc/self/fd/" + fd.Name()); strings.HasPrefix(l, "socket:") {
			o.Sockets = append(o.Sockets, fd.Name()+" -> "+l)
		}
	}
	return o
}

// requireConstructor skips t in a build without cgo, where Prepare
// refuses (TestPrepareWithoutCgo checks that).
func requireConstructor(t testing.TB) {
	t.Helper()
	if !linked {
		t.Skip("built without cgo: no constructor (CGO_ENABLED=0)")
	}
}

func self(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

type holderProc struct {
	pid  int
	mark string // the tmpfs mount point, visible only inside
}

// startHolder runs a process in new mount, uts, pid, net, ipc and cgroup
// namespaces (and a user namespace when userns), stopped in t.Cleanup.
func startHolder(t testing.TB, userns bool) holderProc {
	t.Helper()
	// Not t.TempDir: its parent is mode 0700, which root of a user
	// namespace (mapped to an unprivileged host uid) cannot search.
	dir, err := os.MkdirTemp("", "berth-nsenter-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	mark := filepath.Join(dir, "mark")
	if err := os.Mkdir(mark, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	// /proc/self/exe, not the path: the magic link skips the search
	// permission on go test's 0700 build directory, which the holder's
	// root (an unprivileged host uid) lacks.
	cmd := exec.Command("/proc/self/exe", "nsenter-holder", mark)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWCGROUP,
		Pdeathsig:  syscall.SIGKILL,
	}
	if userns {
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
		// Host root is unmapped in there; become the namespace's root so
		// execve grants its capabilities. setgroups is denied in it.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("holder did not start: %q %s", line, stderr.String())
	}
	return holderProc{pid: cmd.Process.Pid, mark: mark}
}

func (h holderProc) paths(kinds ...specs.LinuxNamespaceType) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, k := range kinds {
		out = append(out, specs.LinuxNamespace{Type: k, Path: fmt.Sprintf("/proc/%d/ns/%s", h.pid, procName(k))})
	}
	return out
}

func procName(k specs.LinuxNamespaceType) string {
	switch k {
	case specs.MountNamespace:
		return "mnt"
	case specs.NetworkNamespace:
		return "net"
	}
	return string(k)
}

func nsOf(t *testing.T, pid int) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, k := range nsKinds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, k))
		if err != nil {
			t.Fatal(err)
		}
		m[k] = l
	}
	return m
}

// becomeSubreaper makes this test process the parent of re-parented
// grandchildren, as a runtime must be to reap the process Wait reports.
func becomeSubreaper(t *testing.T) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
}

// enter starts the report child through Prepare with cfg, reaps every
// process it made, and returns what it saw and the pid Wait reported.
func enter(t *testing.T, cfg Config) (observation, int) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer errR.Close()
	cmd := exec.Command(self(t), "nsenter-report")
	cmd.Stdout, cmd.Stderr = w, errW // *os.File: no copying goroutines
	s, err := Prepare(cmd, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		_ = s.Close()
		t.Fatal(err)
	}
	w.Close()
	errW.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pid, err := s.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var status unix.WaitStatus
	if pid == cmd.Process.Pid {
		err = cmd.Wait()
	} else if _, err = unix.Wait4(pid, &status, 0, nil); err == nil && status.ExitStatus() != 0 {
		err = fmt.Errorf("exit status %d", status.ExitStatus())
	}
	out, _ := io.ReadAll(r)
	stderr, _ := io.ReadAll(errR)
	if err != nil {
		t.Fatalf("report child %d: %v: %s", pid, err, stderr)
	}
	var o observation
	if err := json.Unmarshal(out, &o); err != nil {
		t.Fatalf("report: %v: %q %s", err, out, stderr)
	}
	if o.EnvFD != "" {
		t.Errorf("%s=%q still in the child's environment", envFD, o.EnvFD)
	}
	if len(o.Sockets) > 0 {
		t.Errorf("sockets left open in the child: %v", o.Sockets)
	}
	return o, pid
}

func TestJoinAllByPath(t *testing.T) {
	testutil.RequireRoot(t)
	requireConstructor(t)
	becomeSubreaper(t)
	for _, userns := range []bool{false, true} {
		t.Run(fmt.Sprintf("userns=%v", userns), func(t *testing.T) {
			h := startHolder(t, userns)
			kinds := []specs.LinuxNamespaceType{
				specs.MountNamespace, specs.UTSNamespace, specs.PIDNamespace,
				specs.NetworkNamespace, specs.IPCNamespace, specs.CgroupNamespace,
			}
			if userns {
				// Listed last on purpose: the constructor joins it first.
				kinds = append(kinds, specs.UserNamespace)
			}
			o, pid := enter(t, Config{Namespaces: h.paths(kinds...)})

			want := nsOf(t, h.pid)
			for _, k := range nsKinds {
				if o.NS[k] != want[k] {
					t.Errorf("%s namespace: child in %s, holder in %s", k, o.NS[k], want[k])
				}
			}
			if o.Hostname != holderHostname {
				t.Errorf("hostname %q, want %q", o.Hostname, holderHostname)
			}
			if !strings.Contains(o.Mountinfo, " "+h.mark+" ") || !strings.Contains(o.Mountinfo, "berth-mark") {
				t.Errorf("holder's tmpfs on %s not in the child's mount table:\n%s", h.mark, o.Mountinfo)
			}
			if !strings.Contains(o.Pid1, "nsenter-holder") {
				t.Errorf("pid 1 is %q, want the holder", o.Pid1)
			}
			if o.Pid <= 1 || o.Pid == pid {
				t.Errorf("child's own pid %d (host pid %d): not inside the holder's pid namespace", o.Pid, pid)
			}
			if userns {
				if o.UIDMap != "0 100000 65536" || o.GIDMap != "0 100000 65536" || o.UID != 0 || o.GID != 0 {
					t.Errorf("uid_map %q gid_map %q uid %d gid %d, want root of 0 100000 65536", o.UIDMap, o.GIDMap, o.UID, o.GID)
				}
			}
		})
	}
}

func TestJoinWithoutForkKeepsThePid(t *testing.T) {
	testutil.RequireRoot(t)
	requireConstructor(t)
	h := startHolder(t, false)
	before := openFDs(t)
	o, pid := enter(t, Config{Namespaces: h.paths(specs.UTSNamespace, specs.NetworkNamespace)})
	if after := openFDs(t); after != before {
		t.Errorf("%d fds open before, %d after: the session leaked one", before, after)
	}
	want := nsOf(t, h.pid)
	if o.NS["uts"] != want["uts"] || o.NS["net"] != want["net"] {
		t.Errorf("child in uts %s net %s, want %s %s", o.NS["uts"], o.NS["net"], want["uts"], want["net"])
	}
	if o.Pid != pid {
		t.Errorf("child's pid %d, Wait said %d: no fork expected", o.Pid, pid)
	}
	if o.Hostname != holderHostname {
		t.Errorf("hostname %q, want %q", o.Hostname, holderHostname)
	}
}

func TestCreateNewNamespaces(t *testing.T) {
	testutil.RequireRoot(t)
	requireConstructor(t)
	becomeSubreaper(t)
	h := startHolder(t, false)
	cfg := Config{
		// Mixed, as `create` sees it: one namespace given by path, the rest new.
		Namespaces: append(h.paths(specs.NetworkNamespace),
			specs.LinuxNamespace{Type: specs.UserNamespace},
			specs.LinuxNamespace{Type: specs.UTSNamespace},
			specs.LinuxNamespace{Type: specs.PIDNamespace},
			specs.LinuxNamespace{Type: specs.MountNamespace},
			specs.LinuxNamespace{Type: specs.TimeNamespace},
		),
		UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 1000}},
		GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 300000, Size: 1000}},
		TimeOffsets: map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 86400, Nanosecs: 7}},
	}
	o, _ := enter(t, cfg)
	host := nsOf(t, os.Getpid())
	for _, k := range []string{"user", "uts", "pid", "mnt", "time"} {
		if o.NS[k] == host[k] {
			t.Errorf("%s namespace is the host's %s, want a new one", k, host[k])
		}
	}
	if o.NS["net"] != nsOf(t, h.pid)["net"] {
		t.Errorf("net namespace %s, want the holder's", o.NS["net"])
	}
	if o.Pid != 1 {
		t.Errorf("pid %d in the new pid namespace, want 1", o.Pid)
	}
	if o.UIDMap != "0 200000 1000" || o.GIDMap != "0 300000 1000" || o.UID != 0 || o.GID != 0 {
		t.Errorf("uid_map %q gid_map %q uid %d gid %d", o.UIDMap, o.GIDMap, o.UID, o.GID)
	}
	if offs := strings.Join(strings.Fields(o.TimensOffsets), " "); !strings.Contains(offs, "monotonic 86400 7") {
		t.Errorf("timens_offsets %q, want monotonic 86400 7", o.TimensOffsets)
	}
}

func TestChildErrorsAreReportedAndReaped(t *testing.T) {
	testutil.RequireRoot(t)
	requireConstructor(t)
	uts := fmt.Sprintf("/proc/%d/ns/uts", os.Getpid())
	for _, tc := range []struct {
		name      string
		cfg       Config
		want      string
		wantClass error
		wantErrno error
	}{
		{
			name:      "missing path",
			cfg:       Config{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/nonexistent/ns/net"}}},
			want:      "nsenter: open network namespace /nonexistent/ns/net: no such file or directory",
			wantClass: errdefs.ErrNotFound,
			wantErrno: fs.ErrNotExist,
		},
		{
			name:      "path of another type",
			cfg:       Config{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: uts}}},
			want:      "nsenter: join network namespace " + uts + ": invalid argument",
			wantClass: errdefs.ErrInvalidArgument,
			wantErrno: unix.EINVAL,
		},
		{
			name: "not a namespace",
			cfg: Config{Namespaces: []specs.LinuxNamespace{
				{Type: specs.UTSNamespace, Path: uts},
				{Type: specs.IPCNamespace, Path: "/etc/hostname"},
			}},
			want:      "nsenter: join ipc namespace /etc/hostname: invalid argument",
			wantClass: errdefs.ErrInvalidArgument,
			wantErrno: unix.EINVAL,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(self(t), "nsenter-report")
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			s, err := Prepare(cmd, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				_ = s.Close()
				t.Fatal(err)
			}
			pid, err := s.Wait(context.Background())
			if err == nil {
				t.Fatalf("Wait = %d, nil; want an error", pid)
			}
			var ce *ChildError
			if err.Error() != tc.want || !errors.As(err, &ce) || !errors.Is(err, tc.wantClass) || !errors.Is(err, tc.wantErrno) {
				t.Fatalf("got %q (%T), want %q wrapping %v and %v", err, err, tc.want, tc.wantClass, tc.wantErrno)
			}
			if cmd.ProcessState == nil || cmd.ProcessState.Success() {
				t.Errorf("child not reaped, or exited 0: %v", cmd.ProcessState)
			}
			if stdout.Len()+stderr.Len() > 0 {
				t.Errorf("the child wrote to its stdio: %q %q", stdout.String(), stderr.String())
			}
		})
	}
}

func TestBinaryWithoutConstructor(t *testing.T) {
	requireConstructor(t)
	// /bin/true ignores the config; Wait must notice instead of hanging.
	cmd := exec.Command("/bin/true")
	s, err := Prepare(cmd, Config{Namespaces: []specs.LinuxNamespace{{Type: specs.UTSNamespace, Path: "/proc/self/ns/uts"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		_ = s.Close()
		t.Fatal(err)
	}
	_, err = s.Wait(context.Background())
	if err == nil || !strings.Contains(err.Error(), "exited before entering its namespaces") {
		t.Fatalf("got %v", err)
	}
}

func TestWaitGivesUpWithContext(t *testing.T) {
	requireConstructor(t)
	// sleep never reads its config; the context ends the wait and the
	// child is killed and reaped.
	cmd := exec.Command("sleep", "60")
	s, err := Prepare(cmd, Config{Namespaces: []specs.LinuxNamespace{{Type: specs.UTSNamespace, Path: "/proc/self/ns/uts"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		_ = s.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's error", err)
	}
	if cmd.ProcessState == nil {
		t.Fatal("child not reaped")
	}
}

func TestPrepareRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown type", Config{Namespaces: []specs.LinuxNamespace{{Type: "bogus"}}}, `unknown namespace type "bogus"`},
		{"twice", Config{Namespaces: []specs.LinuxNamespace{{Type: "uts"}, {Type: "uts", Path: "/proc/1/ns/uts"}}}, "uts namespace listed twice"},
		{"relative path", Config{Namespaces: []specs.LinuxNamespace{{Type: "network", Path: "proc/1/ns/net"}}}, "is not absolute"},
		{"new user without maps", Config{Namespaces: []specs.LinuxNamespace{{Type: "user"}}}, "needs uid and gid mappings"},
		{"maps without new user", Config{UIDMappings: []specs.LinuxIDMapping{{Size: 1}}}, "need a new user namespace"},
		{"offsets without new time", Config{TimeOffsets: map[string]specs.LinuxTimeOffset{"boottime": {}}}, "need a new time namespace"},
		{"unknown clock", Config{
			Namespaces:  []specs.LinuxNamespace{{Type: "time"}},
			TimeOffsets: map[string]specs.LinuxTimeOffset{"realtime": {}},
		}, `unknown clock "realtime"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("/bin/true")
			s, err := Prepare(cmd, tc.cfg)
			if err == nil {
				_ = s.Close()
				t.Fatal("Prepare accepted it")
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an invalid-argument error containing %q", err, tc.want)
			}
			if cmd.Env != nil || cmd.ExtraFiles != nil {
				t.Fatalf("cmd changed: env %d entries, extra files %v", len(cmd.Env), cmd.ExtraFiles)
			}
		})
	}
}

func TestPrepareKeepsOtherExtraFilesAndEnv(t *testing.T) {
	requireConstructor(t)
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("/bin/true")
	cmd.Env = []string{"A=1", envFD + "=99"}
	cmd.ExtraFiles = []*os.File{f}
	s, err := Prepare(cmd, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(cmd.ExtraFiles) != 2 || cmd.ExtraFiles[0] != f {
		t.Fatalf("extra files %v", cmd.ExtraFiles)
	}
	if want := []string{"A=1", envFD + "=4"}; strings.Join(cmd.Env, ",") != strings.Join(want, ",") {
		t.Fatalf("env %q, want %q", cmd.Env, want)
	}
}

// BenchmarkJoin measures starting a re-exec'd child that joins a holder's
// namespaces, against the same child started plainly.
func BenchmarkJoin(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	requireConstructor(b)
	for _, tc := range []struct {
		name  string
		kinds []specs.LinuxNamespaceType
	}{
		{"plain", nil},
		{"uts+net", []specs.LinuxNamespaceType{specs.UTSNamespace, specs.NetworkNamespace}},
		{"all", []specs.LinuxNamespaceType{specs.MountNamespace, specs.UTSNamespace, specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace, specs.CgroupNamespace}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := startHolder(b, false)
			if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) }()
			for b.Loop() {
				cmd := exec.Command(self(b), "nsenter-exit")
				if tc.kinds == nil {
					if err := cmd.Run(); err != nil {
						b.Fatal(err)
					}
					continue
				}
				s, err := Prepare(cmd, Config{Namespaces: h.paths(tc.kinds...)})
				if err != nil {
					b.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				pid, err := s.Wait(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if pid == cmd.Process.Pid {
					err = cmd.Wait()
				} else {
					_, err = unix.Wait4(pid, nil, 0, nil)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	e, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(e)
}

func TestCloseAfterFailedStart(t *testing.T) {
	requireConstructor(t)
	before := openFDs(t)
	cmd := exec.Command("/nonexistent/berth-runtime")
	s, err := Prepare(cmd, Config{Namespaces: []specs.LinuxNamespace{{Type: specs.UTSNamespace, Path: "/proc/self/ns/uts"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err == nil {
		t.Fatal("started a missing binary")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if after := openFDs(t); after != before {
		t.Fatalf("%d fds open before, %d after Close", before, after)
	}
	if _, err := s.Wait(context.Background()); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("Wait after a failed start: %v", err)
	}
}

// TestConstructorRejectsMalformedConfig feeds the C parser bytes Prepare
// would never write: it must report, not crash or read out of bounds.
func TestConstructorRejectsMalformedConfig(t *testing.T) {
	requireConstructor(t)
	ne := binary.NativeEndian
	header := func(magic uint32, n int) []byte {
		return ne.AppendUint32(ne.AppendUint32(nil, magic), uint32(n))
	}
	record := func(typ uint16, n uint32, data []byte) []byte {
		b := ne.AppendUint16(nil, typ)
		b = ne.AppendUint16(b, 0)
		b = ne.AppendUint32(b, n)
		return append(b, data...)
	}
	withBody := func(body []byte) []byte { return append(header(wireMagic, len(body)), body...) }
	for _, tc := range []struct {
		name string
		wire []byte
		want string
	}{
		{"bad magic", header(0xdeadbeef, 0), "bad header"},
		{"too long", header(wireMagic, wireMaxLen+1), "bad header"},
		{"truncated record header", withBody([]byte{1, 0, 0}), "truncated record"},
		{"record longer than body", withBody(record(recJoin, 1000, []byte("xxxx"))), "truncated record"},
		{"unknown record", withBody(record(99, 0, nil)), "unknown record type 99"},
		{"join without path", withBody(record(recJoin, 4, ne.AppendUint32(nil, unix.CLONE_NEWNET))), "bad join record"},
		{"join of unknown type", withBody(record(recJoin, 6, append(ne.AppendUint32(nil, 0x1), "/x"...))), "unknown namespace type 0x1"},
		{"bad unshare", withBody(record(recUnshare, 2, []byte{0, 0})), "bad unshare record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(self(t), "nsenter-report")
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			s, err := prepare(cmd, Config{}, tc.wire)
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				_ = s.Close()
				t.Fatal(err)
			}
			_, err = s.Wait(context.Background())
			var ce *ChildError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a child error containing %q", err, tc.want)
			}
			if stdout.Len()+stderr.Len() > 0 {
				t.Errorf("the child wrote to its stdio: %q %q", stdout.String(), stderr.String())
			}
		})
	}
}

// TestJoinTimeNamespaceByPath chains two sessions: the first creates a
// holder in new time, pid, mount and uts namespaces (the clone flags of
// exec.Cmd cannot make a time namespace), the second joins them by path.
func TestJoinTimeNamespaceByPath(t *testing.T) {
	testutil.RequireRoot(t)
	requireConstructor(t)
	becomeSubreaper(t)
	dir := t.TempDir()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	cmd := exec.Command(self(t), "nsenter-holder", dir)
	cmd.Stdin, cmd.Stdout = inR, outW
	s, err := Prepare(cmd, Config{
		Namespaces:  []specs.LinuxNamespace{{Type: specs.TimeNamespace}, {Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.UTSNamespace}},
		TimeOffsets: map[string]specs.LinuxTimeOffset{"boottime": {Secs: 3600}, "monotonic": {Secs: -5, Nanosecs: 100}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		_ = s.Close()
		t.Fatal(err)
	}
	inR.Close()
	outW.Close()
	holderPid, err := s.Wait(context.Background())
	if err != nil {
		inW.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		inW.Close()
		_, _ = unix.Wait4(holderPid, nil, 0, nil)
	})
	if line, _ := bufio.NewReader(outR).ReadString('\n'); line != "ready\n" {
		t.Fatalf("holder did not start: %q", line)
	}

	h := holderProc{pid: holderPid, mark: dir}
	o, _ := enter(t, Config{Namespaces: h.paths(specs.TimeNamespace, specs.PIDNamespace, specs.MountNamespace, specs.UTSNamespace)})
	want := nsOf(t, holderPid)
	for _, k := range []string{"time", "pid", "mnt", "uts"} {
		if o.NS[k] != want[k] {
			t.Errorf("%s namespace: child in %s, holder in %s", k, o.NS[k], want[k])
		}
	}
	offs := strings.Join(strings.Fields(o.TimensOffsets), " ")
	if offs != "monotonic -5 100 boottime 3600 0" {
		t.Errorf("timens_offsets %q", offs)
	}
	if o.Hostname != holderHostname || !strings.Contains(o.Pid1, "nsenter-holder") {
		t.Errorf("hostname %q, pid 1 %q: not the holder's namespaces", o.Hostname, o.Pid1)
	}
}

func TestPrepareWithoutCgo(t *testing.T) {
	if linked {
		t.Skip("built with cgo")
	}
	_, err := Prepare(exec.Command("/bin/true"), Config{})
	if !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Fatalf("got %v, want not implemented", err)
	}
}
