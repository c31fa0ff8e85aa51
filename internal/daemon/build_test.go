package daemon

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	containertypes "github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/build"
	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/testutil"
)

// contextTar is a build context of name → content ("dir/" names a
// directory).
func contextTar(t testing.TB, files map[string]string) io.Reader {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(name, "/") {
			h = &tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, body)
		}
	}
	tw.Close()
	return &buf
}

func buildEngine(t *testing.T) (*Engine, *Builder) {
	e := ctrEngine(t)
	b, err := NewBuilder(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	return e, b
}

// runOutput runs cmd in a new container of img and returns its output.
func buildRunOutput(t *testing.T, e *Engine, img string, cmd ...string) string {
	t.Helper()
	ctx := context.Background()
	id := create(t, e, "", containertypes.Config{Image: img, Cmd: cmd}, &containertypes.HostConfig{NetworkMode: "none"})
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitExit(t, e, id, containertypes.WaitConditionNotRunning)
	res, err := e.ContainerLogs(ctx, id, ContainerLogsOptions{Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for m := range res.Messages {
		out.Write(m.Line)
	}
	if err := e.ContainerRemove(ctx, id, ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestBuildMultiStageAndCache(t *testing.T) {
	testutil.RequireRoot(t)
	e, b := buildEngine(t)
	ctx := context.Background()
	files := map[string]string{
		"Dockerfile": `FROM busybox AS gen
ARG WORD=hello
RUN echo "$WORD from run" > /gen.txt && echo built-step
FROM busybox
ENV APP=/app
WORKDIR $APP
COPY --from=gen /gen.txt ./
COPY files/ ./files/
COPY --chown=1:2 --chmod=600 one.txt /etc/one.txt
LABEL stage=final
CMD ["cat", "/app/gen.txt"]
`,
		"files/":      "",
		"files/a.txt": "A",
		"one.txt":     "one",
	}
	var out bytes.Buffer
	res, err := b.Build(ctx, build.Options{Context: contextTar(t, files), Tags: []string{"built:1"}, Output: &out})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	log := out.String()
	t.Logf("first build:\n%s", log)
	for _, want := range []string{"Step 1/11 : FROM busybox AS gen", "built-step", "Successfully built", "Successfully tagged built:1"} {
		if !strings.Contains(log, want) {
			t.Errorf("output lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "Using cache") {
		t.Errorf("first build used the cache:\n%s", log)
	}
	if got := buildRunOutput(t, e, "built:1"); got != "hello from run\n" {
		t.Errorf("run the image: %q", got)
	}
	if got := buildRunOutput(t, e, "built:1", "sh", "-c", "cat files/a.txt; stat -c '%u:%g %a' /etc/one.txt"); got != "A1:2 600\n" {
		t.Errorf("copied files: %q", got)
	}
	insp, err := e.ImageInspect(ctx, "built:1")
	if err != nil {
		t.Fatal(err)
	}
	if insp.Config.WorkingDir != "/app" || insp.Config.Labels["stage"] != "final" || !strings.Contains(strings.Join(insp.Config.Env, " "), "APP=/app") {
		t.Errorf("config: %+v", insp.Config)
	}
	// Intermediates: the untagged bases of later steps (ARG's image in
	// the first stage; ENV, WORKDIR, the three COPYs and LABEL in the
	// second), not the tagged ends.
	if im := b.Intermediates(ctx); len(im) != 7 || im[res.ID] {
		t.Errorf("intermediates: %v", im)
	}
	// No step container is left.
	if l, err := e.ContainerList(ctx, ContainerListOptions{All: true}); err != nil || len(l) != 0 {
		t.Errorf("containers after build: %v %v", l, err)
	}

	// Again: every step from the cache, the same image.
	out.Reset()
	res2, err := b.Build(ctx, build.Options{Context: contextTar(t, files), Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	if res2.ID != res.ID {
		t.Errorf("rebuild made %s, want %s\n%s", res2.ID, res.ID, out.String())
	}
	if n := strings.Count(out.String(), "Using cache"); n != 9 {
		t.Errorf("rebuild: %d steps from the cache, want 9:\n%s", n, out.String())
	}

	// One file changed: its COPY and what follows are built again.
	files["files/a.txt"] = "B"
	out.Reset()
	res3, err := b.Build(ctx, build.Options{Context: contextTar(t, files), Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "Using cache"); n != 5 || res3.ID == res.ID {
		t.Errorf("after a change: %d steps from the cache, want 5:\n%s", n, out.String())
	}

	// A daemon restart keeps the cache: a new Builder on the same root.
	b2, err := NewBuilder(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if res4, err := b2.Build(ctx, build.Options{Context: contextTar(t, files), Output: &out}); err != nil || res4.ID != res3.ID {
		t.Errorf("cache after restart: %v %s", err, out.String())
	}
}

func TestBuildFailuresLeaveNothing(t *testing.T) {
	testutil.RequireRoot(t)
	e, b := buildEngine(t)
	// The absent base's pull fails at once, without retries.
	SetRegistry(e, distribution.Config{Retries: 1, Backoff: time.Millisecond})
	ctx := context.Background()
	before, err := e.ImageList(ctx, ImageListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		files map[string]string
		opts  build.Options
		want  string
		class error
	}{
		{name: "run fails", files: map[string]string{"Dockerfile": "FROM busybox\nRUN false\n"},
			want: "The command '/bin/sh -c false' returned a non-zero code: 1"},
		{name: "run exit 3 exec form", files: map[string]string{"Dockerfile": "FROM busybox\nRUN [\"sh\", \"-c\", \"exit 3\"]\n"},
			want: "returned a non-zero code: 3"},
		{name: "missing dockerfile", files: map[string]string{"x": "y"},
			want: "Cannot locate specified Dockerfile: Dockerfile", class: errdefs.ErrInvalidArgument},
		{name: "parse error", files: map[string]string{"Dockerfile": "FROM busybox\nENV\n"}, class: errdefs.ErrInvalidArgument},
		{name: "unknown instruction", files: map[string]string{"Dockerfile": "FROM busybox\nFROBNICATE x\n"},
			want: "unknown instruction: FROBNICATE", class: errdefs.ErrInvalidArgument},
		{name: "copy outside context", files: map[string]string{"Dockerfile": "FROM busybox\nCOPY ../x /x\n"},
			want: "outside the build context", class: errdefs.ErrInvalidArgument},
		{name: "copy missing", files: map[string]string{"Dockerfile": "FROM busybox\nCOPY nope /x\n"},
			want: "file not found in build context", class: errdefs.ErrNotFound},
		// Absent: pulled, from a registry that is not there (a closed
		// loopback port: no waiting on DNS or the internet).
		{name: "no such base", files: map[string]string{"Dockerfile": "FROM 127.0.0.1:1/nosuchimage\n"}, want: "FROM 127.0.0.1:1/nosuchimage: pull"},
		{name: "add url", files: map[string]string{"Dockerfile": "FROM busybox\nADD http://example.com/x /x\n"},
			class: errdefs.ErrNotImplemented},
		{name: "dockerfile outside context", files: map[string]string{"Dockerfile": "FROM busybox\n"},
			opts: build.Options{Dockerfile: "../Dockerfile"}, want: "outside the build context"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.Context = contextTar(t, tc.files)
			_, err := b.Build(ctx, opts)
			if err == nil {
				t.Fatal("build succeeded")
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			if tc.class != nil && !errors.Is(err, tc.class) {
				t.Errorf("error %q is not %v", err, tc.class)
			}
		})
	}
	after, err := e.ImageList(ctx, ImageListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Images) != len(before.Images) {
		t.Errorf("images: %d before, %d after", len(before.Images), len(after.Images))
	}
	if l, err := e.ContainerList(ctx, ContainerListOptions{All: true}); err != nil || len(l) != 0 {
		t.Errorf("containers after failed builds: %v %v", l, err)
	}
	e.snaps.Walk(ctx, func(i snapshot.Info) error {
		if i.Kind != snapshot.KindCommitted {
			t.Errorf("snapshot left: %s (%v)", i.Name, i.Kind)
		}
		return nil
	})
	if m, _ := filepath.Glob(filepath.Join(e.Root(), "build", "ctx-*")); len(m) != 0 {
		t.Errorf("contexts left: %v", m)
	}
}

// lockedBuffer is a bytes.Buffer safe to read while a build writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBuildCancelled: a client that goes away mid-RUN leaves no
// container and no working snapshot.
func TestBuildCancelled(t *testing.T) {
	testutil.RequireRoot(t)
	e, b := buildEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		_, err := b.Build(ctx, build.Options{Context: contextTar(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo started; sleep 30\n"}), Output: &out})
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "started") {
		if time.Now().After(deadline) {
			t.Fatalf("RUN did not start:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled build: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("cancelled build still running")
	}
	bg := context.Background()
	if l, err := e.ContainerList(bg, ContainerListOptions{All: true}); err != nil || len(l) != 0 {
		t.Errorf("containers after a cancelled build: %v %v", l, err)
	}
	e.snaps.Walk(bg, func(i snapshot.Info) error {
		if i.Kind != snapshot.KindCommitted {
			t.Errorf("snapshot left: %s (%v)", i.Name, i.Kind)
		}
		return nil
	})
}

// TestBuildHostileImageAndContext: a symlink in the image pointing out
// of it, an ADD'ed tar climbing out, scratch plus COPY --from an image.
func TestBuildHostileImageAndContext(t *testing.T) {
	testutil.RequireRoot(t)
	e, b := buildEngine(t)
	ctx := context.Background()
	outside := filepath.Join(t.TempDir(), "victim")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	var evil bytes.Buffer
	tw := tar.NewWriter(&evil)
	for _, name := range []string{"../../../../" + strings.TrimPrefix(outside, "/") + "/from-tar", "ok.txt"} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
		tw.Write([]byte("x"))
	}
	tw.Close()
	df := "FROM busybox\n" +
		// An image symlink aiming at the host's directory, by absolute
		// path and by climbing.
		"RUN ln -s " + outside + " /abs && ln -s ../../../../../../" + strings.TrimPrefix(outside, "/") + " /up\n" +
		"COPY f /abs/\nCOPY f /up/g\nWORKDIR /abs/w\nADD evil.tar /unpacked/\n"
	var out bytes.Buffer
	res, err := b.Build(ctx, build.Options{Context: contextTar(t, map[string]string{"Dockerfile": df, "f": "F", "evil.tar": evil.String()}), Output: &out, Tags: []string{"hostile:1"}})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("the build wrote on the host through the image's symlinks: %v", ents)
	}
	got := buildRunOutput(t, e, "hostile:1", "sh", "-c", "cat "+outside+"/f "+outside+"/g /unpacked/ok.txt; ls "+outside+" /unpacked")
	if !strings.HasPrefix(got, "FFx") || !strings.Contains(got, "ok.txt") {
		t.Errorf("inside the image: %q", got)
	}
	_ = res

	// FROM scratch, its files copied from an image: it runs.
	out.Reset()
	if _, err := b.Build(ctx, build.Options{Context: contextTar(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY --from=busybox / /\nCMD [\"echo\", \"from scratch\"]\n"}), Output: &out, Tags: []string{"scratchy:1"}}); err != nil {
		t.Fatalf("scratch build: %v\n%s", err, out.String())
	}
	if got := buildRunOutput(t, e, "scratchy:1"); got != "from scratch\n" {
		t.Errorf("scratch image: %q", got)
	}
}

// TestNewBuilderCleansUpAfterACrash: a step container and a working
// snapshot a crashed build left are gone once the builder starts.
func TestNewBuilderCleansUpAfterACrash(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx := context.Background()
	id := create(t, e, "", containertypes.Config{Image: "busybox", Cmd: []string{"true"}, Labels: map[string]string{buildStepLabel: "1"}}, &containertypes.HostConfig{NetworkMode: "none"})
	keep := create(t, e, "keep", containertypes.Config{Image: "busybox", Cmd: []string{"true"}}, &containertypes.HostConfig{NetworkMode: "none"})
	if _, err := e.snaps.Prepare(ctx, buildSnapshotPrefix+"crashed", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := NewBuilder(ctx, e); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.lookup(id); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("step container still there: %v", err)
	}
	if _, _, err := e.lookup(keep); err != nil {
		t.Errorf("another container went too: %v", err)
	}
	if _, err := e.snaps.Stat(ctx, buildSnapshotPrefix+"crashed"); err == nil {
		t.Error("working snapshot still there")
	}
}

// TestBuildRunNetwork: RUN has no network unless the build asks
// (docker's legacy builder gives the default bridge; berth none).
func TestBuildRunNetwork(t *testing.T) {
	testutil.RequireRoot(t)
	e, b := buildEngine(t)
	ctx := context.Background()
	df := map[string]string{"Dockerfile": "FROM busybox\nRUN grep -c : /proc/net/dev > /ifaces\n"}
	for _, tc := range []struct{ mode, want string }{{"", "1\n"}, {"host", ""}} {
		res, err := b.Build(ctx, build.Options{Context: contextTar(t, df), NetworkMode: tc.mode, Tags: []string{"net:" + map[string]string{"": "none", "host": "host"}[tc.mode]}})
		if err != nil {
			t.Fatalf("networkmode %q: %v", tc.mode, err)
		}
		got := buildRunOutput(t, e, res.ID.String(), "cat", "/ifaces")
		if tc.want != "" && got != tc.want || tc.want == "" && got == "1\n" {
			t.Errorf("networkmode %q: %q interfaces", tc.mode, got)
		}
	}
}
