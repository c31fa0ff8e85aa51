package snapshot_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/snapshot/drivers"
)

// A base layer, committed, and a container's writable snapshot on top of
// it. The snapshotter only hands out mounts; the caller mounts them. (Not
// run as a test: it needs root; snapshottest covers the same ground.)
func ExampleSnapshotter() {
	ctx := context.Background()
	var sn snapshot.Snapshotter
	sn, driver, err := drivers.Open(ctx, drivers.Options{Root: "/var/lib/berth"})
	if err != nil {
		panic(err)
	}
	defer sn.Close()

	ms, err := sn.Prepare(ctx, "layer-1-work", "")
	if err != nil {
		panic(err)
	}
	err = mount.WithTempMount(ctx, ms, func(root string) error {
		return os.WriteFile(filepath.Join(root, "hello"), []byte("hi\n"), 0o644)
	})
	if err != nil {
		panic(err)
	}
	if err := sn.Commit(ctx, "layer-1", "layer-1-work"); err != nil {
		panic(err)
	}

	ms, err = sn.Prepare(ctx, "container-web", "layer-1")
	if err != nil {
		panic(err)
	}
	fmt.Println(driver, ms[0].Type) // e.g. "overlay overlay": give ms to the runtime as the rootfs
}
