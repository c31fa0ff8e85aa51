package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// The test binary is its own container init: the runtime re-execs it with
// os.Args[1] == "init".
func init() {
	if IsInit() {
		Init()
	}
}

// newBundle makes a bundle whose config is a copy of the busybox bundle's,
// edited by the test, and whose root is the shared read-only image rootfs
// (copying it costs hundreds of milliseconds on a loaded machine).
func newBundle(t *testing.T, edit func(*specs.Spec)) string {
	return makeBundle(t, edit, false)
}

// newBundleCopy is newBundle with a private copy of the rootfs, for tests
// that write into it or create mount points in it.
func newBundleCopy(t *testing.T, edit func(*specs.Spec)) string {
	return makeBundle(t, edit, true)
}

func makeBundle(t *testing.T, edit func(*specs.Spec), copyRootfs bool) string {
	t.Helper()
	img := testutil.Images(t)
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(img.Bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	s.Root.Path = img.Rootfs
	if copyRootfs {
		if out, err := exec.Command("cp", "-a", img.Rootfs, filepath.Join(dir, "rootfs")).CombinedOutput(); err != nil {
			t.Fatalf("copy rootfs: %v: %s", err, out)
		}
		s.Root.Path = "rootfs"
	}
	if edit != nil {
		edit(&s)
	}
	writeSpec(t, dir, &s)
	return dir
}

func writeSpec(t *testing.T, dir string, s *specs.Spec) {
	t.Helper()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// newRuntime keeps state on tmpfs, as the default /run does: fsync on a
// disk-backed temp dir costs milliseconds per state write.
func newRuntime(t *testing.T) *Runtime {
	t.Helper()
	dir, err := os.MkdirTemp("/run", "berth-runtime-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	rt, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// cmdArgs sets the process to run sh -c script.
func shell(script string) func(*specs.Spec) {
	return func(s *specs.Spec) { s.Process.Args = []string{"/bin/sh", "-c", script} }
}

func chain(edits ...func(*specs.Spec)) func(*specs.Spec) {
	return func(s *specs.Spec) {
		for _, e := range edits {
			if e != nil {
				e(s)
			}
		}
	}
}

// runContainer creates and starts a container from the bundle, waits for it
// and returns its output and exit status. The container is deleted after.
func runContainer(t *testing.T, rt *Runtime, id, bundle string) (string, int) {
	t.Helper()
	ctx := context.Background()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c, err := rt.Create(ctx, id, CreateOptions{Bundle: bundle, IO: IO{Stdout: w, Stderr: w}})
	w.Close()
	if err != nil {
		r.Close()
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() { _ = c.Delete(ctx, true) })
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = io.Copy(&out, r); r.Close(); close(done) }()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	code, err := c.Wait(ctx)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("output not closed")
	}
	if err := c.Delete(ctx, false); err != nil {
		t.Fatalf("delete: %v", err)
	}
	return strings.TrimSpace(out.String()), code
}
