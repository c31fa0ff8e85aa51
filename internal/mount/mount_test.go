package mount

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func TestParsedSplitsFlagsFromData(t *testing.T) {
	tests := []struct {
		name  string
		m     Mount
		flags uintptr
		data  []string
	}{
		{"bind ro", Mount{Type: "bind", Options: []string{"rbind", "ro"}}, unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY, nil},
		{"rw clears ro", Mount{Type: "tmpfs", Options: []string{"ro", "rw", "size=1m"}}, 0, []string{"size=1m"}},
		{"overlay", Mount{Type: "overlay", Options: []string{"nosuid", "lowerdir=/a:/b", "upperdir=/u"}}, unix.MS_NOSUID, []string{"lowerdir=/a:/b", "upperdir=/u"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, data := tt.m.parsed()
			if f != tt.flags || strings.Join(data, ",") != strings.Join(tt.data, ",") {
				t.Fatalf("got %#x %q, want %#x %q", f, data, tt.flags, tt.data)
			}
		})
	}
}

func mustWrite(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBindReadOnly(t *testing.T) {
	testutil.RequireRoot(t)
	src := t.TempDir()
	mustWrite(t, filepath.Join(src, "f"), "x")
	err := WithTempMount(context.Background(), []Mount{{Type: "bind", Source: src, Options: []string{"rbind", "ro"}}}, func(root string) error {
		if b, err := os.ReadFile(filepath.Join(root, "f")); err != nil || string(b) != "x" {
			return fmt.Errorf("read through bind: %q %v", b, err)
		}
		if err := os.WriteFile(filepath.Join(root, "g"), nil, 0o644); err == nil {
			return fmt.Errorf("write to a read-only bind mount succeeded")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// overlayOf builds n lower layers under base, each with a file naming its
// layer and a file "top" that every layer overwrites, and returns the mount.
func overlayOf(t *testing.T, base string, n int) Mount {
	t.Helper()
	var lowers []string
	for i := range n {
		d := filepath.Join(base, fmt.Sprintf("layer-with-a-rather-long-name-%03d", i))
		mustWrite(t, filepath.Join(d, fmt.Sprintf("f%03d", i)), "x")
		mustWrite(t, filepath.Join(d, "top"), fmt.Sprint(i))
		lowers = append([]string{d}, lowers...) // topmost first
	}
	up, work := filepath.Join(base, "upper"), filepath.Join(base, "work")
	for _, d := range []string{up, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return Mount{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + strings.Join(lowers, ":"), "upperdir=" + up, "workdir=" + work,
	}}
}

func TestOverlay(t *testing.T) {
	for _, n := range []int{2, 128} {
		t.Run(fmt.Sprintf("%d layers", n), func(t *testing.T) {
			testutil.RequireRoot(t)
			m := overlayOf(t, t.TempDir(), n)
			_, data := m.parsed()
			if n == 128 && len(strings.Join(data, ",")) < pageSize {
				t.Fatalf("test does not exceed a page: %d bytes", len(strings.Join(data, ",")))
			}
			err := WithTempMount(context.Background(), []Mount{m}, func(root string) error {
				for i := range n {
					if _, err := os.Stat(filepath.Join(root, fmt.Sprintf("f%03d", i))); err != nil {
						return err
					}
				}
				b, err := os.ReadFile(filepath.Join(root, "top"))
				if err != nil || string(b) != fmt.Sprint(n-1) {
					return fmt.Errorf("top layer wins: got %q %v, want %d", b, err, n-1)
				}
				return os.WriteFile(filepath.Join(root, "new"), []byte("y"), 0o644)
			})
			if err != nil {
				t.Fatal(err)
			}
			up, _ := m.Option("upperdir")
			if _, err := os.Stat(filepath.Join(up, "new")); err != nil {
				t.Fatalf("write did not land in upperdir: %v", err)
			}
		})
	}
}

func TestOverlayBadLowerIsClearError(t *testing.T) {
	testutil.RequireRoot(t)
	base := t.TempDir()
	m := overlayOf(t, base, 128)
	m.Options[0] += ":" + filepath.Join(base, "missing")
	err := WithTempMount(context.Background(), []Mount{m}, func(string) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("want an error naming the missing lower dir, got %v", err)
	}
}

func TestTooLongNonOverlayRefused(t *testing.T) {
	m := Mount{Type: "tmpfs", Source: "tmpfs", Options: []string{"x=" + strings.Repeat("a", pageSize)}}
	if err := m.Mount(t.TempDir()); err == nil || !strings.Contains(err.Error(), "page") {
		t.Fatalf("got %v", err)
	}
}

// Kernels before 6.8 lack "lowerdir+"; the fallback names each layer by a
// short /proc/self/fd path.
func TestOverlayFdPathFallback(t *testing.T) {
	testutil.RequireRoot(t)
	forceFdPaths = true
	t.Cleanup(func() { forceFdPaths = false })
	m := overlayOf(t, t.TempDir(), 128)
	err := WithTempMount(context.Background(), []Mount{m}, func(root string) error {
		b, err := os.ReadFile(filepath.Join(root, "top"))
		if err != nil || string(b) != "127" {
			return fmt.Errorf("top: %q %v", b, err)
		}
		return os.WriteFile(filepath.Join(root, "new"), nil, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	up, _ := m.Option("upperdir")
	if _, err := os.Stat(filepath.Join(up, "new")); err != nil {
		t.Fatalf("write did not land in upperdir: %v", err)
	}
}
