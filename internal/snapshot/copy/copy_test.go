package copy

import (
	"context"
	"testing"

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
