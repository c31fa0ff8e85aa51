package drivers

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func TestChoice(t *testing.T) {
	tests := []struct{ driver, want string }{
		{"", Overlay}, {"overlay", Overlay}, {"copy", Copy}, {"vfs", Copy},
	}
	for _, tt := range tests {
		t.Run("driver="+tt.driver, func(t *testing.T) {
			testutil.RequireRoot(t)
			root := t.TempDir()
			sn, got, err := Open(context.Background(), Options{Root: root, Driver: tt.driver})
			if err != nil {
				t.Fatal(err)
			}
			defer sn.Close()
			if got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
			if _, err := os.Stat(filepath.Join(root, "snapshots", got, "meta")); err != nil {
				t.Fatalf("state not under snapshots/%s: %v", got, err)
			}
		})
	}
}

func TestUnknownDriver(t *testing.T) {
	_, _, err := Open(context.Background(), Options{Root: t.TempDir(), Driver: "zfs"})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("got %v", err)
	}
}

// On a root that is itself an overlay mount, an upper directory cannot be
// made there and the choice falls back to copy; forcing overlay fails.
func TestOverlayOnOverlayFallsBackToCopy(t *testing.T) {
	testutil.RequireRoot(t)
	base := t.TempDir()
	for _, d := range []string{"l1", "l2", "u", "w", "m"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m := mount.Mount{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + filepath.Join(base, "l1") + ":" + filepath.Join(base, "l2"),
		"upperdir=" + filepath.Join(base, "u"), "workdir=" + filepath.Join(base, "w"),
	}}
	root := filepath.Join(base, "m")
	if err := m.Mount(root); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mount.Unmount(root); err != nil {
			t.Error(err)
		}
	})
	if _, _, err := Open(context.Background(), Options{Root: root, Driver: Overlay}); err == nil {
		t.Fatal("forcing overlay on overlay succeeded")
	} else {
		t.Log(err)
	}
	sn, got, err := Open(context.Background(), Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	if got != Copy {
		t.Fatalf("got %s on an overlay root, want %s", got, Copy)
	}
}

func TestExistingStateKeepsItsDriver(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	root := t.TempDir()
	sn, _, err := Open(ctx, Options{Root: root, Driver: Copy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	sn.Close()
	sn, got, err := Open(ctx, Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	if got != Copy {
		t.Fatalf("got %s, want the copy driver that holds snapshots", got)
	}
}
