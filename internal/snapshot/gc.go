package snapshot

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
)

// RemoveUnreferenced removes every committed snapshot that keep rejects
// and that no remaining snapshot builds on, repeating until none is left to
// remove, and returns the names removed. Active snapshots and views are
// never removed (a container, or work in progress, owns them), and so
// neither are their ancestors. The image store calls it with the chain IDs
// of the images it still has, to free the layers of removed images.
func RemoveUnreferenced(ctx context.Context, sn Snapshotter, keep func(name string) bool) ([]string, error) {
	var removed []string
	for {
		infos := map[string]Info{}
		children := map[string]int{}
		err := sn.Walk(ctx, func(i Info) error {
			infos[i.Name] = i
			if i.Parent != "" {
				children[i.Parent]++
			}
			return nil
		})
		if err != nil {
			return removed, fmt.Errorf("remove unreferenced snapshots: %w", err)
		}
		progress := false
		for name, i := range infos {
			if i.Kind != KindCommitted || children[name] > 0 || keep(name) {
				continue
			}
			if err := sn.Remove(ctx, name); err != nil {
				if errors.Is(err, errdefs.ErrConflict) || errors.Is(err, errdefs.ErrNotFound) {
					continue // a child appeared, or someone else removed it
				}
				return removed, fmt.Errorf("remove unreferenced snapshots: %w", err)
			}
			removed = append(removed, name)
			progress = true
		}
		if !progress {
			return removed, nil
		}
	}
}
