package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

// Bad input fails create with a clear error and leaves no state, cgroup
// or mount behind (RequireRoot's leak check covers the last two).
func TestCreateRejectsBadInput(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	raw := func(text string) func(t *testing.T) string {
		return func(t *testing.T) string {
			b := newBundle(t, nil)
			if err := os.WriteFile(filepath.Join(b, "config.json"), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	edit := func(f func(*specs.Spec)) func(t *testing.T) string {
		return func(t *testing.T) string { return newBundle(t, f) }
	}
	cases := []struct {
		name   string
		bundle func(t *testing.T) string
		class  error
		msg    string
	}{
		{"malformed json", raw(`{"ociVersion": "1.0.0", "process": `), errdefs.ErrInvalidArgument, "config.json"},
		{"no process", raw(`{"ociVersion": "1.0.0", "root": {"path": "rootfs"}, "linux": {}}`), errdefs.ErrInvalidArgument, "process is missing"},
		{"no root", edit(func(s *specs.Spec) { s.Root = nil }), errdefs.ErrInvalidArgument, "root.path is missing"},
		{"no version", edit(func(s *specs.Spec) { s.Version = "" }), errdefs.ErrInvalidArgument, "ociVersion"},
		{"missing config", func(t *testing.T) string { return t.TempDir() }, errdefs.ErrNotFound, "config.json"},
		{"missing rootfs", edit(func(s *specs.Spec) { s.Root.Path = "/does/not/exist" }), errdefs.ErrInvalidArgument, "root.path /does/not/exist"},
		{"bad namespace path", edit(func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces[:1], specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/run/netns/nope"})
		}), errdefs.ErrInvalidArgument, "network namespace path /run/netns/nope"},
		{"namespace path of the wrong type", edit(func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces[:1], specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/proc/self/ns/uts"})
		}), errdefs.ErrInvalidArgument, "is not a network namespace"},
		{"unknown namespace", edit(func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}), errdefs.ErrInvalidArgument, "unknown type"},
		{"empty args", edit(func(s *specs.Spec) { s.Process.Args = nil }), errdefs.ErrInvalidArgument, "process.args is empty"},
		{"relative cwd", edit(func(s *specs.Spec) { s.Process.Cwd = "tmp" }), errdefs.ErrInvalidArgument, "not absolute"},
		{"unknown rlimit", edit(func(s *specs.Spec) { s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}} }), errdefs.ErrInvalidArgument, "RLIMIT_BOGUS"},
		{"hostname without uts", edit(func(s *specs.Spec) {
			s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.MountNamespace}}
		}), errdefs.ErrInvalidArgument, "hostname needs a uts namespace"},
		{"apparmor on a host without it", edit(func(s *specs.Spec) { s.Process.ApparmorProfile = "docker-default" }), errdefs.ErrInvalidArgument, "no AppArmor"},
		{"netDevices", edit(func(s *specs.Spec) {
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth9": {}}
		}), errdefs.ErrNotImplemented, "linux.netDevices"},
		{"terminal without console socket", edit(func(s *specs.Spec) { s.Process.Terminal = true }), errdefs.ErrInvalidArgument, "console-socket"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.bundle(t)
			c, err := rt.Create(ctx, "bad", CreateOptions{Bundle: b})
			if err == nil {
				_ = c.Delete(ctx, true)
				t.Fatal("create succeeded")
			}
			if !errors.Is(err, tc.class) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q, want %v mentioning %q", err, tc.class, tc.msg)
			}
			if entries, _ := os.ReadDir(rt.Root()); len(entries) != 0 {
				t.Fatalf("state left behind: %v", entries)
			}
		})
	}
}

// Failures inside the init (after namespaces and cgroups exist) are undone.
func TestCreateFailsInInitAndCleansUp(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	cases := []struct {
		name string
		edit func(*specs.Spec)
		msg  string
	}{
		{"rlimit above the hard limit", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 30000, Hard: 30000}}
		}, "set rlimit RLIMIT_NOFILE to soft 30000 hard 30000: above the current hard limit"},
		{"missing binary", func(s *specs.Spec) { s.Process.Args = []string{"/bin/nonexistent"} }, `exec: "/bin/nonexistent"`},
		{"binary not in PATH", func(s *specs.Spec) { s.Process.Args = []string{"nonexistent"} }, "nonexistent"},
		{"missing cwd", func(s *specs.Spec) { s.Process.Cwd = "/nope" }, "chdir to cwd /nope"},
		{"bad mount", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/does/not/exist"})
		}, "mount bind on /x"},
		{"bad sysctl", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.bogus": "1"} }, "sysctl kernel.bogus"},
		{"unknown capability", func(s *specs.Spec) { s.Process.Capabilities.Bounding = []string{"CAP_BOGUS"} }, "CAP_BOGUS"},
		{"bad cgroup value", func(s *specs.Spec) {
			v := int64(-5)
			s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &v}
			s.Linux.Resources.CPU = &specs.LinuxCPU{Cpus: "999"}
		}, "cgroups"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBundle(t, tc.edit)
			c, err := rt.Create(ctx, "badinit", CreateOptions{Bundle: b})
			if err == nil {
				_ = c.Delete(ctx, true)
			}
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.msg)
			}
			if entries, _ := os.ReadDir(rt.Root()); len(entries) != 0 {
				t.Fatalf("state left behind: %v", entries)
			}
		})
	}
}

func TestDuplicateIDAndBadID(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	c := startSleeper(t, rt, "dup", nil)
	_, err := rt.Create(ctx, "dup", CreateOptions{Bundle: c.Bundle()})
	if !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("duplicate id: %v, want ErrAlreadyExists", err)
	}
	if c.Status() != StatusRunning {
		t.Fatalf("the first container is %s", c.Status())
	}
	for _, id := range []string{"", "../x", "a/b", ".hidden"} {
		if _, err := rt.Create(ctx, id, CreateOptions{Bundle: c.Bundle()}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("id %q: %v, want ErrInvalidArgument", id, err)
		}
	}
}

// Two state roots, one id: the default cgroup would be shared, so the
// second create fails and leaves the first container alone.
func TestSameIDInAnotherRootRefused(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	a := startSleeper(t, newRuntime(t), "twin", nil)
	rt2 := newRuntime(t)
	_, err := rt2.Create(ctx, "twin", CreateOptions{Bundle: a.Bundle()})
	if !errors.Is(err, errdefs.ErrAlreadyExists) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("create of the same id under another root: %v", err)
	}
	if a.Status() != StatusRunning {
		t.Fatalf("the first container is %s", a.Status())
	}
	if pids, err := a.Processes(ctx); err != nil || len(pids) != 1 {
		t.Fatalf("the first container's cgroup: %v %v", pids, err)
	}
}
