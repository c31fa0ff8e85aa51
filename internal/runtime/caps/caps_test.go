package caps

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// The test binary re-execs itself as the process whose capabilities change,
// so the test process keeps its own.
//
//	caps-child status <json>  Apply, then print Current() as JSON (status-twice: Apply twice)
//	caps-child user <json>    keepcaps, become uid/gid 1000, Apply, exec cat /proc/self/status
func init() {
	if len(os.Args) < 4 || os.Args[1] != "caps-child" {
		return
	}
	// init runs on the main thread, locked to it until main starts; lock
	// it for good so Apply and exec happen on one thread.
	runtime.LockOSThread()
	var c *specs.LinuxCapabilities
	if err := json.Unmarshal([]byte(os.Args[3]), &c); err != nil {
		fail(err)
	}
	switch os.Args[2] {
	case "status", "status-twice":
		if err := Apply(c); err != nil {
			fail(err)
		}
		if os.Args[2] == "status-twice" {
			if err := Apply(c); err != nil {
				fail(fmt.Errorf("second apply: %w", err))
			}
		}
		s, err := Current()
		if err != nil {
			fail(err)
		}
		_ = json.NewEncoder(os.Stdout).Encode(s)
		os.Exit(0)
	case "user":
		if err := SetKeepCaps(true); err != nil {
			fail(err)
		}
		if err := syscall.Setgroups(nil); err != nil {
			fail(err)
		}
		if err := syscall.Setresgid(1000, 1000, 1000); err != nil {
			fail(err)
		}
		if err := syscall.Setresuid(1000, 1000, 1000); err != nil {
			fail(err)
		}
		if err := Apply(c); err != nil {
			fail(err)
		}
		fail(syscall.Exec("/bin/cat", []string{"cat", "/proc/self/status"}, nil))
	}
	fail(fmt.Errorf("unknown mode %q", os.Args[2]))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(2)
}

func runChild(t *testing.T, mode string, c *specs.LinuxCapabilities) []byte {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "caps-child", mode, string(b))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v: %s", err, stderr.String())
	}
	return out
}

func mustMask(t *testing.T, names []string) uint64 {
	t.Helper()
	cs, err := Parse(names)
	if err != nil {
		t.Fatal(err)
	}
	return Mask(cs)
}

// dockerDefault is the set docker and runc give a container by default.
var dockerDefault = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []string
		want    []uintptr
		wantErr string
	}{
		{name: "empty", in: nil, want: []uintptr{}},
		{name: "known", in: []string{"CAP_CHOWN", "CAP_NET_ADMIN", "CAP_CHECKPOINT_RESTORE"}, want: []uintptr{0, 12, 40}},
		{name: "any case", in: []string{"cap_sys_admin"}, want: []uintptr{21}},
		{name: "unknown names all reported", in: []string{"CAP_CHOWN", "CAP_BOGUS", "NET_ADMIN"}, wantErr: `"CAP_BOGUS", "NET_ADMIN"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.wantErr != "" {
				if err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an invalid-argument error naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNamesMatchKernel(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		t.Skip("no /proc/sys/kernel/cap_last_cap:", err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if Last() != uintptr(n) {
		t.Fatalf("Last() = %d, kernel says %d", Last(), n)
	}
	for i, name := range Known() {
		cs, err := Parse([]string{name})
		if err != nil || cs[0] != uintptr(i) || Name(uintptr(i)) != name {
			t.Fatalf("%s: Parse = %v, %v; Name(%d) = %s", name, cs, err, i, Name(uintptr(i)))
		}
	}
	if Name(63) != "CAP_63" {
		t.Fatalf("Name(63) = %s", Name(63))
	}
}

func TestApplyUnknownNameChangesNothing(t *testing.T) {
	// Parsing happens before any syscall, so a typo leaves the thread as it
	// was; safe to run in the test process itself.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	err = Apply(&specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}, Effective: []string{"CAP_NOPE"}})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "CAP_NOPE") {
		t.Fatalf("got %v, want an invalid-argument error naming CAP_NOPE", err)
	}
	if after, _ := Current(); after != before {
		t.Fatalf("sets changed: %+v -> %+v", before, after)
	}
}

func TestApplySetsAllFive(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tc := range []struct {
		name  string
		caps  *specs.LinuxCapabilities
		again bool // Apply twice: the second time without CAP_SETPCAP
	}{
		{name: "nil drops everything", caps: nil},
		{name: "docker default", caps: &specs.LinuxCapabilities{
			Bounding: dockerDefault, Effective: dockerDefault, Permitted: dockerDefault,
		}},
		{name: "ambient", caps: &specs.LinuxCapabilities{
			Bounding:    []string{"CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_SETPCAP"},
			Effective:   []string{"CAP_NET_BIND_SERVICE", "CAP_CHOWN"},
			Permitted:   []string{"CAP_NET_BIND_SERVICE", "CAP_CHOWN"},
			Inheritable: []string{"CAP_NET_BIND_SERVICE"},
			Ambient:     []string{"CAP_NET_BIND_SERVICE"},
		}},
		{name: "without CAP_SETPCAP", caps: &specs.LinuxCapabilities{
			Bounding:  []string{"CAP_KILL", "CAP_CHOWN"},
			Effective: []string{"CAP_KILL"},
			Permitted: []string{"CAP_KILL"},
		}, again: true},
		{name: "bounding narrower than permitted", caps: &specs.LinuxCapabilities{
			Bounding:  []string{"CAP_KILL"},
			Effective: []string{"CAP_SYS_ADMIN"},
			Permitted: []string{"CAP_SYS_ADMIN", "CAP_KILL"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got Set
			mode := "status"
			if tc.again {
				mode = "status-twice"
			}
			if err := json.Unmarshal(runChild(t, mode, tc.caps), &got); err != nil {
				t.Fatal(err)
			}
			c := tc.caps
			if c == nil {
				c = &specs.LinuxCapabilities{}
			}
			want := Set{
				Bounding:    mustMask(t, c.Bounding),
				Effective:   mustMask(t, c.Effective),
				Permitted:   mustMask(t, c.Permitted),
				Inheritable: mustMask(t, c.Inheritable),
				Ambient:     mustMask(t, c.Ambient),
			}
			if got != want {
				t.Fatalf("got  %s\nwant %s", fmtSet(got), fmtSet(want))
			}
		})
	}
}

func TestApplyKeepsAmbientAcrossUserSwitchAndExec(t *testing.T) {
	testutil.RequireRoot(t)
	c := &specs.LinuxCapabilities{
		Bounding:    []string{"CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_KILL"},
		Effective:   []string{"CAP_NET_BIND_SERVICE", "CAP_KILL"},
		Permitted:   []string{"CAP_NET_BIND_SERVICE", "CAP_KILL"},
		Inheritable: []string{"CAP_NET_BIND_SERVICE"},
		Ambient:     []string{"CAP_NET_BIND_SERVICE"},
	}
	out := runChild(t, "user", c)
	got := map[string]string{}
	for line := range strings.Lines(string(out)) {
		if k, v, ok := strings.Cut(line, ":"); ok {
			got[k] = strings.TrimSpace(v)
		}
	}
	// capabilities(7): a non-root program without file capabilities gets
	// permitted = effective = ambient after execve; inheritable and
	// bounding pass through unchanged.
	amb := mustMask(t, c.Ambient)
	for k, want := range map[string]uint64{
		"CapBnd": mustMask(t, c.Bounding),
		"CapInh": mustMask(t, c.Inheritable),
		"CapPrm": amb,
		"CapEff": amb,
		"CapAmb": amb,
	} {
		if got[k] != fmt.Sprintf("%016x", want) {
			t.Errorf("%s = %s, want %016x", k, got[k], want)
		}
	}
	if !strings.HasPrefix(got["Uid"], "1000\t") {
		t.Errorf("Uid = %q, want 1000", got["Uid"])
	}
}

func fmtSet(s Set) string {
	return fmt.Sprintf("bnd=%016x eff=%016x prm=%016x inh=%016x amb=%016x", s.Bounding, s.Effective, s.Permitted, s.Inheritable, s.Ambient)
}
