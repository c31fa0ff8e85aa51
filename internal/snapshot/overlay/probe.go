package overlay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/mount"
)

// Supported reports whether overlay works with its layers in dir (created
// if missing), by mounting a small overlay there and unmounting it. It
// fails when the kernel lacks overlay, and when dir's filesystem cannot be
// an upper layer (overlay on overlay, for instance, inside a container).
func Supported(ctx context.Context, dir string) (err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("overlay probe: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".probe-")
	if err != nil {
		return fmt.Errorf("overlay probe: %w", err)
	}
	defer os.RemoveAll(tmp)
	var lowers []string
	for _, d := range []string{"l1", "l2", "u", "w", "m"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o700); err != nil {
			return fmt.Errorf("overlay probe: %w", err)
		}
	}
	lowers = append(lowers, filepath.Join(tmp, "l1"), filepath.Join(tmp, "l2"))
	m := mount.Mount{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + lowers[0] + ":" + lowers[1],
		"upperdir=" + filepath.Join(tmp, "u"), "workdir=" + filepath.Join(tmp, "w"),
	}}
	target := filepath.Join(tmp, "m")
	if err := m.Mount(target); err != nil {
		return fmt.Errorf("overlay probe in %s: %w: %w", dir, err, errdefs.ErrNotImplemented)
	}
	if err := mount.Unmount(target); err != nil {
		return fmt.Errorf("overlay probe: %w", err)
	}
	return nil
}
