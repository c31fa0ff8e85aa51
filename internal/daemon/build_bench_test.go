package daemon

import (
	"context"
	"fmt"
	"testing"

	"github.com/berth-dev/berth/internal/build"
	"github.com/berth-dev/berth/internal/testutil"
)

const benchDockerfile = "FROM busybox\nENV A=1\nWORKDIR /app\nCOPY a.txt ./\nRUN echo hi > /b.txt\nCMD [\"sh\"]\n"

// BenchmarkBuildCached times a rebuild whose five steps all come from the
// cache: context upload and hashing, the cache lookups, the tag.
func BenchmarkBuildCached(b *testing.B) {
	testutil.RequireRoot(b)
	e := ctrEngineTB(b)
	bd, err := NewBuilder(context.Background(), e)
	if err != nil {
		b.Fatal(err)
	}
	files := map[string]string{"Dockerfile": benchDockerfile, "a.txt": "a"}
	if _, err := bd.Build(context.Background(), build.Options{Context: contextTar(b, files)}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := bd.Build(context.Background(), build.Options{Context: contextTar(b, files), Tags: []string{"bench:1"}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildSteps times the same five steps built afresh (a changed
// file each time, so COPY, RUN and CMD miss the cache): snapshots,
// diffs, layer commits and one RUN container per build.
func BenchmarkBuildSteps(b *testing.B) {
	testutil.RequireRoot(b)
	e := ctrEngineTB(b)
	bd, err := NewBuilder(context.Background(), e)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		files := map[string]string{"Dockerfile": benchDockerfile, "a.txt": fmt.Sprint(i)}
		if _, err := bd.Build(context.Background(), build.Options{Context: contextTar(b, files)}); err != nil {
			b.Fatal(err)
		}
	}
}
