package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "volumes"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// removeAll removes every volume of s at the end of t, so no mount stays.
func removeAll(t *testing.T, s *Store) {
	t.Cleanup(func() {
		vs, _ := s.List()
		for _, v := range vs {
			if err := s.Remove(v.Name); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
}

func TestCreateGetRemove(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	v, created, err := s.Create(ctx, CreateOptions{Name: "data", Labels: map[string]string{"a": "b"}})
	if err != nil || !created {
		t.Fatal(err, created)
	}
	if _, err := os.Stat(v.Mountpoint); err != nil {
		t.Fatal(err)
	}
	// docker's idempotence: the existing volume comes back as it was.
	again, created, err := s.Create(ctx, CreateOptions{Name: "data", Labels: map[string]string{"other": "x"}})
	if err != nil || created || again.Labels["a"] != "b" || again.Labels["other"] != "" {
		t.Fatalf("second create: %+v %v %v", again, created, err)
	}
	anon, _, err := s.Create(ctx, CreateOptions{})
	if err != nil || len(anon.Name) != 64 || !anon.IsAnonymous() {
		t.Fatalf("%+v %v", anon, err)
	}
	if _, ok := anon.Labels[AnonymousLabel]; !ok {
		t.Fatalf("anonymous volume without docker's label: %v", anon.Labels)
	}
	list, _ := s.List()
	if len(list) != 2 {
		t.Fatalf("%d volumes", len(list))
	}
	if err := s.Remove("data"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("data"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatal(err)
	}
	if err := s.Remove("data"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatal(err)
	}
}

func TestCreateRefusesBadInput(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		o    CreateOptions
		want error
	}{
		{"dotdot", CreateOptions{Name: "../x"}, errdefs.ErrInvalidArgument},
		{"slash", CreateOptions{Name: "a/b"}, errdefs.ErrInvalidArgument},
		{"leading dash", CreateOptions{Name: "-x"}, errdefs.ErrInvalidArgument},
		{"one character", CreateOptions{Name: "x"}, errdefs.ErrInvalidArgument},
		{"hidden", CreateOptions{Name: ".removing-x"}, errdefs.ErrInvalidArgument},
		{"unknown option", CreateOptions{Name: "v1", Options: map[string]string{"foo": "bar"}}, errdefs.ErrInvalidArgument},
		{"size", CreateOptions{Name: "v1", Options: map[string]string{"size": "10m"}}, errdefs.ErrInvalidArgument},
		{"device without type", CreateOptions{Name: "v1", Options: map[string]string{"device": "/x"}}, errdefs.ErrInvalidArgument},
		{"o alone", CreateOptions{Name: "v1", Options: map[string]string{"o": "size=1m"}}, errdefs.ErrInvalidArgument},
		{"nfs", CreateOptions{Name: "v1", Options: map[string]string{"type": "nfs", "device": ":/x", "o": "addr=1.2.3.4"}}, errdefs.ErrNotImplemented},
		{"relative bind", CreateOptions{Name: "v1", Options: map[string]string{"type": "none", "device": "rel", "o": "bind"}}, errdefs.ErrInvalidArgument},
		{"none without bind", CreateOptions{Name: "v1", Options: map[string]string{"type": "none", "device": "/tmp"}}, errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := s.Create(ctx, tc.o); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if vs, _ := s.List(); len(vs) != 0 {
				t.Fatalf("a refused create left %v", vs)
			}
			if ents, _ := os.ReadDir(s.dir); len(ents) != 0 {
				t.Fatalf("a refused create left %v", ents)
			}
		})
	}
}

func TestSubpathRefusesWithoutOpening(t *testing.T) {
	for _, sub := range []string{"", "/etc", "../x", "a/../../x", "a\x00b"} {
		if err := checkSubpath(sub); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: %v", sub, err)
		}
	}
	for _, sub := range []string{"a", "a/b", "./a", "a..b"} {
		if err := checkSubpath(sub); err != nil {
			t.Errorf("%q: %v", sub, err)
		}
	}
}

func TestTmpfsVolume(t *testing.T) {
	testutil.RequireRoot(t)
	s := openStore(t)
	removeAll(t, s)
	v, _, err := s.Create(context.Background(), CreateOptions{Name: "scratch", Options: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,mode=0700"}})
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(v.Mountpoint, &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		t.Fatalf("_data is not a tmpfs: %x %v", st.Type, err)
	}
	if fi, _ := os.Stat(v.Mountpoint); fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode %v", fi.Mode())
	}
	// A reboot: the mount is gone; the store mounts it again on open.
	if err := unix.Unmount(v.Mountpoint, 0); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	if !isMountPoint(v.Mountpoint) {
		t.Fatal("not mounted again after open")
	}
	if err := s2.Remove("scratch"); err != nil {
		t.Fatal(err)
	}
	if isMountPoint(v.Mountpoint) {
		t.Fatal("still mounted after remove")
	}
}

func TestBindVolumeKeepsHostData(t *testing.T) {
	testutil.RequireRoot(t)
	s := openStore(t)
	removeAll(t, s)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	v, _, err := s.Create(context.Background(), CreateOptions{Name: "hostdir", Options: map[string]string{"type": "none", "device": host, "o": "bind"}})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(v.Mountpoint, "keep")); err != nil || string(b) != "x" {
		t.Fatalf("%q %v", b, err)
	}
	if err := s.Remove("hostdir"); err != nil {
		t.Fatal(err)
	}
	// Removing the volume unmounts it; the host's directory keeps its
	// files.
	if _, err := os.Stat(filepath.Join(host, "keep")); err != nil {
		t.Fatalf("host data lost: %v", err)
	}
	if _, _, err := s.Create(context.Background(), CreateOptions{Name: "missing", Options: map[string]string{"type": "none", "device": filepath.Join(host, "nope"), "o": "bind"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("bind of a missing directory: %v", err)
	}
	if _, err := s.Get("missing"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("refused create left a volume: %v", err)
	}
}

func TestSubpath(t *testing.T) {
	testutil.RequireRoot(t)
	s := openStore(t)
	removeAll(t, s)
	ctx := context.Background()
	v, _, err := s.Create(ctx, CreateOptions{Name: "data"})
	if err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(v.Mountpoint, "app/conf"), 0o755))
	must(os.WriteFile(filepath.Join(v.Mountpoint, "app/conf/x"), []byte("in"), 0o644))
	must(os.WriteFile(filepath.Join(v.Mountpoint, "file"), []byte("f"), 0o644))
	must(os.Symlink("/", filepath.Join(v.Mountpoint, "root")))
	must(os.Symlink(outside, filepath.Join(v.Mountpoint, "out")))
	must(os.Symlink("../../..", filepath.Join(v.Mountpoint, "app/up")))
	must(os.Symlink("app/conf", filepath.Join(v.Mountpoint, "inside")))

	p, err := s.Subpath(ctx, "data", "app/conf")
	must(err)
	if b, err := os.ReadFile(filepath.Join(p, "x")); err != nil || string(b) != "in" {
		t.Fatalf("pin shows %q %v", b, err)
	}
	// The same subpath again shares the pin.
	if p2, err := s.Subpath(ctx, "data", "app/conf"); err != nil || p2 != p {
		t.Fatalf("second pin %s %v, first %s", p2, err, p)
	}
	// A symlink that stays inside the volume is followed.
	if p3, err := s.Subpath(ctx, "data", "inside"); err != nil {
		t.Fatal(err)
	} else if _, err := os.Stat(filepath.Join(p3, "x")); err != nil {
		t.Fatal(err)
	}
	if fp, err := s.Subpath(ctx, "data", "file"); err != nil {
		t.Fatal(err)
	} else if b, _ := os.ReadFile(fp); string(b) != "f" {
		t.Fatalf("file pin shows %q", b)
	}
	// The pin holds what was resolved: swapping the path for a symlink
	// out of the volume afterwards changes nothing behind it.
	must(os.Rename(filepath.Join(v.Mountpoint, "app/conf"), filepath.Join(v.Mountpoint, "app/old")))
	must(os.Symlink("/etc", filepath.Join(v.Mountpoint, "app/conf")))
	if _, err := os.Stat(filepath.Join(p, "x")); err != nil {
		t.Fatalf("pin followed the swap: %v", err)
	}
	if _, err := os.Stat(filepath.Join(p, "passwd")); err == nil {
		t.Fatal("pin shows the host's /etc")
	}

	for _, tc := range []struct{ name, sub string }{
		{"absolute symlink", "root/etc"},
		{"symlink to a host directory", "out"},
		{"relative symlink climbing out", "app/up"},
		{"swapped for a symlink", "app/conf"},
		{"missing", "nope"},
		{"dotdot", "app/../.."},
		{"absolute", "/etc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Subpath(ctx, "data", tc.sub); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("%q: %v", tc.sub, err)
			}
		})
	}
	if _, err := s.Subpath(ctx, "nosuch", "a"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatal(err)
	}

	// A reboot unmounts the pins; opening the store pins them again.
	must(os.Rename(filepath.Join(v.Mountpoint, "app/old"), filepath.Join(v.Mountpoint, "app/back")))
	must(unix.Unmount(p, 0))
	if _, err := Open(s.dir); err != nil {
		t.Fatal(err)
	}
	if isMountPoint(p) {
		t.Fatal("a pin whose subpath is a symlink out of the volume was bound again")
	}
	must(os.Remove(filepath.Join(v.Mountpoint, "app/conf")))
	must(os.Rename(filepath.Join(v.Mountpoint, "app/back"), filepath.Join(v.Mountpoint, "app/conf")))
	if _, err := Open(s.dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(p, "x")); err != nil {
		t.Fatalf("pin not bound again: %v", err)
	}
	must(s.Remove("data"))
	if strings.Contains(mustRead(t, "/proc/self/mountinfo"), s.dir) {
		t.Fatal("a mount under the store remains after remove")
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSize(t *testing.T) {
	s := openStore(t)
	v, _, err := s.Create(context.Background(), CreateOptions{Name: "sized"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "a"), make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(v.Mountpoint, "a"), filepath.Join(v.Mountpoint, "b")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Size("sized"); err != nil || n != 1000 {
		t.Fatalf("size %d %v", n, err)
	}
}

func TestBadMountOptionsLeaveNothing(t *testing.T) {
	testutil.RequireRoot(t)
	s := openStore(t)
	removeAll(t, s)
	for _, tc := range []struct {
		name string
		opts map[string]string
	}{
		{"bad tmpfs size", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=lots"}},
		{"unknown tmpfs option", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "colour=red"}},
		{"bind of a file", map[string]string{"type": "none", "device": "/etc/hostname", "o": "bind"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.Create(context.Background(), CreateOptions{Name: "bad", Options: tc.opts})
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("got %v", err)
			}
			if ents, _ := os.ReadDir(s.dir); len(ents) != 0 {
				t.Fatalf("a refused create left %v", ents)
			}
		})
	}
	// A read-only bind is read-only.
	v, _, err := s.Create(context.Background(), CreateOptions{Name: "robind", Options: map[string]string{"type": "none", "device": t.TempDir(), "o": "bind,ro"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Fatalf("write to a read-only bind volume: %v", err)
	}
}

// BenchmarkCreateRemove is one named volume made and removed: the cost
// docker volume create and rm add to the API round trip.
func BenchmarkCreateRemove(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "volumes"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		if _, _, err := s.Create(ctx, CreateOptions{Name: "bench", Labels: map[string]string{"a": "b"}}); err != nil {
			b.Fatal(err)
		}
		if err := s.Remove("bench"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/var/lib/berth/volumes/a/_data`: "/var/lib/berth/volumes/a/_data",
		`/tmp/with\040space`:             "/tmp/with space",
		`/tmp/tab\011and\012newline`:     "/tmp/tab\tand\nnewline",
		`/tmp/back\134slash`:             `/tmp/back\slash`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}
