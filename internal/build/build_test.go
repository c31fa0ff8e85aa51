package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// entry is one file of a test context.
type entry struct {
	name, body, link string
	mode             int64
	fifo             bool
}

func ctxTar(t testing.TB, entries ...entry) io.Reader {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		switch {
		case strings.HasSuffix(e.name, "/"):
			h = &tar.Header{Name: e.name, Mode: 0o755, Typeflag: tar.TypeDir}
		case e.link != "":
			h = &tar.Header{Name: e.name, Linkname: e.link, Typeflag: tar.TypeSymlink}
		case e.fifo:
			h = &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeFifo}
		}
		if e.mode != 0 {
			h.Mode = e.mode
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	return &buf
}

func dockerfile(s string) entry { return entry{name: "Dockerfile", body: s} }

func newBuilder(t *testing.T) (*Builder, *fakeBackend) {
	fb := newFakeBackend(t)
	b, err := New(fb, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b, fb
}

func mustBuild(t *testing.T, b *Builder, opts Options, entries ...entry) (Result, string) {
	t.Helper()
	var out bytes.Buffer
	opts.Context = ctxTar(t, entries...)
	opts.Output = &out
	res, err := b.Build(context.Background(), opts)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	return res, out.String()
}

func TestStepKey(t *testing.T) {
	base := stepKey("sha256:aa", "/bin/sh -c #(nop)  ENV A=1", "")
	for name, k := range map[string]string{
		"parent":    stepKey("sha256:bb", "/bin/sh -c #(nop)  ENV A=1", ""),
		"createdBy": stepKey("sha256:aa", "/bin/sh -c #(nop)  ENV A=2", ""),
		"extra":     stepKey("sha256:aa", "/bin/sh -c #(nop)  ENV A=1", "x"),
		// Fields are length-prefixed: moving a byte across the seam
		// is another key.
		"seam": stepKey("sha256:aa", "/bin/sh -c #(nop)  ENV A=", "1"),
	} {
		if k == base {
			t.Errorf("%s: same key", name)
		}
	}
	if stepKey("sha256:aa", "/bin/sh -c #(nop)  ENV A=1", "") != base {
		t.Error("key is not stable")
	}
}

func TestBuildConfigAndHistory(t *testing.T) {
	b, fb := newBuilder(t)
	df := `ARG BASE=busybox
FROM $BASE
ARG V=1
ENV NAME=app DIR=/srv/$NAME
LABEL version=$V "with space"="a b"
EXPOSE 80 9000-9001/udp
VOLUME ["/data"]
USER app
STOPSIGNAL SIGQUIT
SHELL ["/bin/ash", "-eo", "pipefail", "-c"]
RUN echo $V
HEALTHCHECK --interval=5s --retries=2 CMD wget -q localhost
ENTRYPOINT ["/entry"]
ONBUILD RUN echo triggered
MAINTAINER someone
`
	res, out := mustBuild(t, b, Options{BuildArgs: map[string]*string{"V": ptr("7"), "UNUSED": ptr("x")}, Tags: []string{"cfg:1"}}, dockerfile(df))
	im, _ := fb.Image(context.Background(), res.ID.String())
	c := im.Config.Config
	if !slices.Contains(c.Env, "NAME=app") || !slices.Contains(c.Env, "DIR=/srv/") {
		// ENV's pairs expand against the env before the line, as docker's.
		t.Errorf("env %v", c.Env)
	}
	if c.Labels["version"] != "7" || c.Labels["with space"] != "a b" {
		t.Errorf("labels %v", c.Labels)
	}
	for _, p := range []string{"80/tcp", "9000/udp", "9001/udp"} {
		if _, ok := c.ExposedPorts[p]; !ok {
			t.Errorf("ports %v lack %s", c.ExposedPorts, p)
		}
	}
	if _, ok := c.Volumes["/data"]; !ok || c.User != "app" || c.StopSignal != "SIGQUIT" {
		t.Errorf("volumes %v user %q stopsignal %q", c.Volumes, c.User, c.StopSignal)
	}
	if c.Healthcheck == nil || strings.Join(c.Healthcheck.Test, "|") != "CMD-SHELL|wget -q localhost" || c.Healthcheck.Interval.Seconds() != 5 || c.Healthcheck.Retries != 2 {
		t.Errorf("healthcheck %+v", c.Healthcheck)
	}
	// ENTRYPOINT drops the CMD the base image had.
	if strings.Join(c.Entrypoint, " ") != "/entry" || c.Cmd != nil {
		t.Errorf("entrypoint %v cmd %v", c.Entrypoint, c.Cmd)
	}
	if strings.Join(c.OnBuild, ";") != "RUN echo triggered" || im.Config.Author != "someone" {
		t.Errorf("onbuild %v author %q", c.OnBuild, im.Config.Author)
	}
	// RUN: the SHELL, the build arg in its env and in the history line.
	if len(fb.runs) != 1 {
		t.Fatalf("runs %d", len(fb.runs))
	}
	run := fb.runs[0]
	if strings.Join(run.Args, "|") != "/bin/ash|-eo|pipefail|-c|echo $V" || !slices.Contains(run.Env, "V=7") || run.NetworkMode != "none" || run.User != "app" {
		t.Errorf("run %+v", run)
	}
	var lines []string
	for _, h := range im.Config.History {
		lines = append(lines, h.CreatedBy)
		if strings.Contains(h.CreatedBy, "#(nop)") != h.EmptyLayer {
			t.Errorf("history %q: empty_layer %v", h.CreatedBy, h.EmptyLayer)
		}
	}
	for _, want := range []string{
		"/bin/sh -c #(nop)  ARG V=1",
		"/bin/sh -c #(nop)  ENV NAME=app DIR=/srv/",
		"|1 V=7 /bin/ash -eo pipefail -c echo $V",
		`/bin/ash -eo pipefail -c #(nop)  ENTRYPOINT ["/entry"]`,
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("history lacks %q:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	if !strings.Contains(out, "[Warning] One or more build-args [UNUSED] were not consumed") || !strings.Contains(out, "Successfully tagged cfg:1") {
		t.Errorf("output:\n%s", out)
	}

	// The image as a base: its ONBUILD trigger runs right after FROM,
	// and the child does not inherit it.
	res2, out := mustBuild(t, b, Options{}, dockerfile("FROM cfg:1\nENV CHILD=1\n"))
	im2, _ := fb.Image(context.Background(), res2.ID.String())
	if !strings.Contains(out, "# Executing 1 build trigger") || len(fb.runs) != 2 || len(im2.Config.Config.OnBuild) != 0 {
		t.Errorf("onbuild: runs %d onbuild %v\n%s", len(fb.runs), im2.Config.Config.OnBuild, out)
	}
}

func ptr(s string) *string { return &s }

func TestBuildCache(t *testing.T) {
	testutil.RequireRoot(t) // COPY writes root-owned files
	b, fb := newBuilder(t)
	files := []entry{
		dockerfile("FROM busybox\nENV A=1\nCOPY a.txt /a.txt\nRUN make\nCOPY b/ /b/\nCMD [\"x\"]\n"),
		{name: "a.txt", body: "a"}, {name: "b/"}, {name: "b/c.txt", body: "c"},
	}
	first, out := mustBuild(t, b, Options{}, files...)
	if strings.Contains(out, "Using cache") {
		t.Fatalf("first build hit the cache:\n%s", out)
	}
	// Every step's base is a parent (busybox and four intermediates),
	// the final image is not.
	if p := b.Parents(); len(p) != 5 || p[first.ID] || !p[fb.names["busybox"]] {
		t.Errorf("parents %v (final %s)", p, first.ID)
	}
	again, out := mustBuild(t, b, Options{}, files...)
	if again.ID != first.ID || strings.Count(out, "Using cache") != 5 || len(fb.runs) != 1 {
		t.Errorf("rebuild: %s vs %s, runs %d\n%s", again.ID, first.ID, len(fb.runs), out)
	}
	// Only a mode change: the content hash sees it.
	files[3].mode = 0o600
	_, out = mustBuild(t, b, Options{}, files...)
	if strings.Count(out, "Using cache") != 3 {
		t.Errorf("after a mode change of b/c.txt:\n%s", out)
	}
	// A changed source invalidates its COPY and everything after.
	files[1].body = "changed"
	_, out = mustBuild(t, b, Options{}, files...)
	if strings.Count(out, "Using cache") != 1 || len(fb.runs) != 2 {
		t.Errorf("after a change of a.txt: runs %d\n%s", len(fb.runs), out)
	}
	// A build arg RUN sees changes RUN's key.
	files[0].body = "FROM busybox\nARG X\nRUN make\n"
	mustBuild(t, b, Options{BuildArgs: map[string]*string{"X": ptr("1")}}, files...)
	_, out = mustBuild(t, b, Options{BuildArgs: map[string]*string{"X": ptr("2")}}, files...)
	if !strings.Contains(out, "Running in") {
		t.Errorf("another build arg: RUN from the cache:\n%s", out)
	}
	_, out = mustBuild(t, b, Options{NoCache: true}, files...)
	if strings.Contains(out, "Using cache") {
		t.Errorf("nocache:\n%s", out)
	}
	// The cache survives a new Builder on the same directory; an entry
	// whose image is gone is a miss.
	b2, err := New(fb, b.dir)
	if err != nil {
		t.Fatal(err)
	}
	_, out = mustBuild(t, b2, Options{BuildArgs: map[string]*string{"X": ptr("2")}}, files...)
	if strings.Count(out, "Using cache") != 2 {
		t.Errorf("new builder:\n%s", out)
	}
	// COPY --from is keyed by what it copies: a rebuilt source stage
	// with the same file still hits.
	two := []entry{dockerfile("FROM busybox AS src\nARG V\nENV X=$V\nFROM busybox\nCOPY --from=src /etc/passwd /p\n")}
	mustBuild(t, b2, Options{BuildArgs: map[string]*string{"V": ptr("1")}}, two...)
	_, out = mustBuild(t, b2, Options{BuildArgs: map[string]*string{"V": ptr("2")}}, two...)
	if !strings.Contains(out, "COPY --from=src /etc/passwd /p\n ---> Using cache") {
		t.Errorf("COPY --from a rebuilt stage:\n%s", out)
	}
	pr, err := b2.Prune(context.Background())
	if err != nil || pr.Entries == 0 {
		t.Errorf("prune: %+v %v", pr, err)
	}
	_, out = mustBuild(t, b2, Options{BuildArgs: map[string]*string{"X": ptr("2")}}, files...)
	if strings.Contains(out, "Using cache") {
		t.Errorf("after prune:\n%s", out)
	}
}

func TestBuildPullAuth(t *testing.T) {
	tests := []struct {
		ref, key string
	}{
		{ref: "127.0.0.1:5000/team/app:1", key: "127.0.0.1:5000"},
		{ref: "someone/private", key: "https://index.docker.io/v1/"},
		{ref: "other.example:443/x", key: ""},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			b, fb := newBuilder(t)
			regs := map[string]RegistryAuth{"127.0.0.1:5000": {Username: "local"}, "https://index.docker.io/v1/": {Username: "hub"}}
			_, err := b.Build(context.Background(), Options{Context: ctxTar(t, dockerfile("FROM "+tc.ref+"\n")), Registries: regs})
			if !errors.Is(err, errdefs.ErrNotFound) || len(fb.pulls) != 1 {
				t.Fatalf("err %v, pulls %v", err, fb.pulls)
			}
			got := fb.pulls[0].auth
			switch {
			case tc.key == "" && got != nil:
				t.Errorf("auth %+v for a registry with none", got)
			case tc.key != "" && (got == nil || got.Username != regs[tc.key].Username):
				t.Errorf("auth %+v, want %+v", got, regs[tc.key])
			}
		})
	}
}

func TestBuildCopy(t *testing.T) {
	testutil.RequireRoot(t) // the copies are owned by root (or --chown's ids)
	b, fb := newBuilder(t)
	var tgz bytes.Buffer
	zw := gzip.NewWriter(&tgz)
	io.Copy(zw, ctxTar(t, entry{name: "pkg/"}, entry{name: "pkg/lib.txt", body: "lib"}))
	zw.Close()
	res, _ := mustBuild(t, b, Options{Dockerfile: ".dockerfile.abc"},
		entry{name: ".dockerfile.abc", body: `FROM busybox
WORKDIR /app
COPY *.txt ./
COPY --chown=app:staff dir /opt/dir
COPY --chmod=751 tool /usr/local/bin/
COPY tool renamed
ADD pkg.tar.gz /vendor/
ADD plain.gz /plain.gz
COPY . /all/
`},
		entry{name: "a.txt", body: "A"}, entry{name: "b.txt", body: "B"},
		entry{name: "dir/"}, entry{name: "dir/sub/"}, entry{name: "dir/sub/f", body: "F"}, entry{name: "dir/l", link: "sub/f"},
		entry{name: "tool", body: "#!/bin/sh\n", mode: 0o644},
		entry{name: "pkg.tar.gz", body: tgz.String()},
		entry{name: "plain.gz", body: "not gzip at all"},
		entry{name: ".dockerignore", body: "secret*\n"}, entry{name: "secret.key", body: "s"},
	)
	root := fb.rootOf(res.ID)
	check := func(p, body string, mode os.FileMode, uid, gid int) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return
		}
		if body != "" {
			if b, _ := os.ReadFile(filepath.Join(root, p)); string(b) != body {
				t.Errorf("%s: %q, want %q", p, b, body)
			}
		}
		if mode != 0 && fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), mode)
		}
		if uid >= 0 {
			if u, g := statOwner(fi); u != uid || g != gid {
				t.Errorf("%s: owner %d:%d, want %d:%d", p, u, g, uid, gid)
			}
		}
	}
	check("app/a.txt", "A", 0o644, 0, 0)
	check("app/b.txt", "B", 0o644, 0, 0)
	check("opt/dir/sub/f", "F", 0o644, 1000, 50)
	check("opt/dir", "", os.ModeDir|0o755, 1000, 50)
	check("opt/dir/l", "", os.ModeSymlink|0o777, 1000, 50)
	check("usr/local/bin/tool", "#!/bin/sh\n", 0o751, 0, 0)
	check("app/renamed", "#!/bin/sh\n", 0o644, 0, 0)
	check("vendor/pkg/lib.txt", "lib", 0, -1, -1)
	check("plain.gz", "not gzip at all", 0, -1, -1)
	check("all/a.txt", "A", 0, -1, -1)
	if _, err := os.Lstat(filepath.Join(root, "all", "secret.key")); err == nil {
		t.Error(".dockerignore'd secret.key was copied")
	}
	if _, err := os.Lstat(filepath.Join(root, "all", ".dockerfile.abc")); err == nil {
		t.Error("the Dockerfile sent from outside the context was copied")
	}
	if _, err := os.Lstat(filepath.Join(root, "all", ".dockerignore")); err != nil {
		t.Error(".dockerignore itself is part of the context")
	}
}

func TestBuildRefusals(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		opts    Options
		want    string
		class   error
	}{
		{name: "empty dockerfile", entries: []entry{dockerfile("# nothing\n")}, want: "no instructions", class: errdefs.ErrInvalidArgument},
		{name: "no from", entries: []entry{dockerfile("RUN true\n")}, want: "no build stage", class: errdefs.ErrInvalidArgument},
		{name: "unknown target", entries: []entry{dockerfile("FROM busybox\n")}, opts: Options{Target: "nope"}, want: "failed to reach build target nope", class: errdefs.ErrInvalidArgument},
		{name: "bad tag", entries: []entry{dockerfile("FROM busybox\n")}, opts: Options{Tags: []string{"UPPER:case"}}, class: errdefs.ErrInvalidArgument},
		{name: "other platform", entries: []entry{dockerfile("FROM busybox\n")}, opts: Options{Platform: "linux/s390x"}, class: errdefs.ErrNotImplemented},
		{name: "unknown flag", entries: []entry{dockerfile("FROM busybox\nCOPY --nope=1 a /a\n")}, want: "unknown flag: nope", class: errdefs.ErrInvalidArgument},
		{name: "buildkit flag", entries: []entry{dockerfile("FROM busybox\nRUN --mount=type=cache,target=/c true\n")}, want: "the --mount option requires BuildKit", class: errdefs.ErrNotImplemented},
		{name: "multi source needs dir", entries: []entry{dockerfile("FROM busybox\nCOPY a b /dest\n"), {name: "a"}, {name: "b"}}, want: "must be a directory and end with a /"},
		{name: "glob no match", entries: []entry{dockerfile("FROM busybox\nCOPY *.nope /\n")}, want: "no source files were specified"},
		{name: "symlink out of context", entries: []entry{dockerfile("FROM busybox\nCOPY l /x\n"), {name: "l", link: "/etc/passwd"}}, want: "COPY failed"},
		{name: "symlink up out of context", entries: []entry{dockerfile("FROM busybox\nCOPY l /x\n"), {name: "l", link: "../../../../etc/passwd"}}, want: "COPY failed"},
		{name: "run fails", entries: []entry{dockerfile("FROM busybox\nRUN false\n")}, want: "The command '/bin/sh -c false' returned a non-zero code: 5"},
		{name: "run on scratch", entries: []entry{dockerfile("FROM scratch\nRUN true\n")}, class: errdefs.ErrInvalidArgument},
		{name: "scratch only", entries: []entry{dockerfile("FROM scratch\n")}, want: "No image was generated"},
		{name: "shell not json", entries: []entry{dockerfile("FROM busybox\nSHELL /bin/bash -c\n")}, want: "JSON form"},
		{name: "onbuild from", entries: []entry{dockerfile("FROM busybox\nONBUILD FROM x\n")}, want: "isn't allowed as an ONBUILD trigger"},
		{name: "heredoc", entries: []entry{dockerfile("FROM busybox\nRUN <<EOF\necho hi\nEOF\n")}, class: errdefs.ErrNotImplemented},
		{name: "bad expose", entries: []entry{dockerfile("FROM busybox\nEXPOSE 80/xyz\n")}, want: "invalid proto"},
		{name: "chmod bad", entries: []entry{dockerfile("FROM busybox\nCOPY --chmod=999 a /a\n"), {name: "a"}}, want: "invalid chmod"},
		{name: "chown unknown user", entries: []entry{dockerfile("FROM busybox\nCOPY --chown=nobody a /a\n"), {name: "a"}}, want: "no such user or group"},
		{name: "absent base is pulled", entries: []entry{dockerfile("FROM nosuch:1\n")}, want: "pull access denied for nosuch:1", class: errdefs.ErrNotFound},
		{name: "dockerfile symlink out", entries: []entry{{name: "Dockerfile", link: "/etc/passwd"}}, want: "Cannot locate specified Dockerfile"},
		{name: "dockerfile is a fifo", entries: []entry{{name: "Dockerfile", fifo: true}}, want: "Cannot locate specified Dockerfile"},
		{name: "dockerignore symlink out", entries: []entry{dockerfile("FROM busybox\n"), {name: ".dockerignore", link: "/etc/passwd"}}, want: "read .dockerignore"},
		{name: "escaping context entry", entries: []entry{dockerfile("FROM busybox\n"), {name: "../../escape", body: "x"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, fb := newBuilder(t)
			fb.runExit = 5
			before := len(fb.images)
			opts := tc.opts
			opts.Context = ctxTar(t, tc.entries...)
			_, err := b.Build(context.Background(), opts)
			if tc.name == "escaping context entry" {
				// The entry cannot leave the context; the build itself
				// is fine, and nothing appeared beside the context.
				if err != nil {
					t.Logf("escaping entry: %v", err)
				}
				if _, serr := os.Stat(filepath.Join(filepath.Dir(b.dir), "escape")); serr == nil {
					t.Error("a context entry was written outside the context")
				}
				return
			}
			if err == nil {
				t.Fatal("build succeeded")
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			if tc.class != nil && !errors.Is(err, tc.class) {
				t.Errorf("error %q is not %v", err, tc.class)
			}
			var ee *ExitError
			if tc.name == "run fails" && (!errors.As(err, &ee) || ee.Code != 5) {
				t.Errorf("run failure is not an ExitError with code 5: %#v", err)
			}
			if tc.name != "run fails" && len(fb.images) != before {
				t.Errorf("%d images made", len(fb.images)-before)
			}
			if m, _ := filepath.Glob(filepath.Join(b.dir, "ctx-*")); len(m) != 0 {
				t.Errorf("contexts left: %v", m)
			}
		})
	}
}

func statOwner(fi os.FileInfo) (int, int) {
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}
