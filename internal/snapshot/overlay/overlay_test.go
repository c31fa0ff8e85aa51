package overlay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/snapshot/snapshottest"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func TestConformance(t *testing.T) {
	snapshottest.Run(t, func(ctx context.Context, dir string) (snapshot.Snapshotter, error) {
		return New(ctx, dir)
	})
}

// A chain of 128 layers overflows the one page mount(2) takes for its
// options; the mount must still work (package mount switches to fsconfig).
func TestDeepChainMounts(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	sn, err := New(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	parent := ""
	for i := range 128 {
		name := fmt.Sprintf("layer-%d", i)
		ms, err := sn.Prepare(ctx, name+"-a", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ms[0].Source, fmt.Sprintf("f%d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := sn.CommitOnto(ctx, name, name+"-a", parent); err != nil {
			t.Fatal(err)
		}
		parent = name
	}
	ms, err := sn.Prepare(ctx, "top", parent)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Join(ms[0].Options, ",")); n < os.Getpagesize() {
		t.Fatalf("options only %d bytes: the test does not exceed a page", n)
	}
	err = mount.WithTempMount(ctx, ms, func(root string) error {
		entries, err := os.ReadDir(root)
		if err != nil {
			return err
		}
		if len(entries) != 128 {
			return fmt.Errorf("%d entries through the mount, want 128", len(entries))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
