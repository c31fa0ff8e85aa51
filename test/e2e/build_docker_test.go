package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/internal/testutil/registry"
)

// buildDir writes a build context of name → content into a new directory.
func buildDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const multiStageDockerfile = `FROM busybox AS gen
ARG GREETING=hello
RUN echo "$GREETING from the gen stage" > /gen.txt
FROM busybox
WORKDIR /app
COPY --from=gen /gen.txt ./
COPY conf/ ./conf/
COPY main.sh ./
ENV MODE=prod
EXPOSE 8080
CMD ["sh", "/app/main.sh"]
`

// TestBuildDockerCLI drives docker build (the CLI falls back to the
// legacy builder's API without buildx) on a multi-stage Dockerfile, runs
// the result, and checks the cache: all hits on a rebuild, a changed
// file invalidating from its COPY on.
func TestBuildDockerCLI(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	d.DockerOK(t, "load", "-i", testutil.Images(t).DockerArchive)
	files := map[string]string{
		"Dockerfile":    multiStageDockerfile,
		"conf/app.conf": "level=1\n",
		"main.sh":       "cat /app/gen.txt /app/conf/app.conf; echo mode=$MODE\n",
		".dockerignore": "*.tmp\n",
		"junk.tmp":      "ignored",
	}
	dir := buildDir(t, files)
	env := []string{"DOCKER_BUILDKIT=0"}
	r := run(t, append(d.dockerEnv(t), env...), nil, DockerCLI, "build", "-t", "app:1", dir)
	if r.Code != 0 {
		t.Fatalf("docker build: %s\n%s", r, d.logTail())
	}
	t.Logf("docker build:\n%s\nstderr:\n%s", r.Stdout, r.Stderr)
	for _, want := range []string{"Step 1/11 : FROM busybox AS gen", "Step 11/11 : CMD", "Successfully built", "Successfully tagged app:1"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("docker build output lacks %q:\n%s", want, r.Stdout)
		}
	}
	if got := d.DockerOK(t, "run", "--rm", "--network", "none", "app:1"); got != "hello from the gen stage\nlevel=1\nmode=prod\n" {
		t.Errorf("run the built image: %q", got)
	}
	if got := d.DockerOK(t, "run", "--rm", "--network", "none", "app:1", "ls", "/app"); strings.Contains(got, "junk") || strings.Contains(got, "Dockerfile") {
		t.Errorf("/app holds %q", got)
	}
	if got := d.DockerOK(t, "ps", "-aq"); strings.TrimSpace(got) != "" {
		t.Errorf("docker ps -a after the build shows %q", got)
	}
	insp := d.DockerOK(t, "image", "inspect", "-f", "{{.Config.WorkingDir}} {{.Config.ExposedPorts}} {{.Config.Cmd}}", "app:1")
	if strings.TrimSpace(insp) != "/app map[8080/tcp:{}] [sh /app/main.sh]" {
		t.Errorf("config: %q", insp)
	}
	hist := d.DockerOK(t, "history", "--no-trunc", "--format", "{{.CreatedBy}}", "app:1")
	if !strings.Contains(hist, "#(nop)  ENV MODE=prod") || !strings.Contains(hist, "#(nop)  CMD [\"sh\" \"/app/main.sh\"]") {
		t.Errorf("history:\n%s", hist)
	}

	id := strings.TrimSpace(d.DockerOK(t, "image", "inspect", "-f", "{{.Id}}", "app:1"))
	// Plain docker build (no DOCKER_BUILDKIT): without buildx the CLI
	// falls back to the legacy builder too.
	r = run(t, d.dockerEnv(t), nil, DockerCLI, "build", "-q", dir)
	t.Logf("plain docker build: %s", r)
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != id {
		t.Errorf("plain docker build: want %s: %s", id, r)
	}

	// A rebuild: every step but the FROMs from the cache, the same image.
	r = run(t, append(d.dockerEnv(t), env...), nil, DockerCLI, "build", "-q", "-t", "app:2", dir)
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != id {
		t.Fatalf("quiet rebuild: want %s: %s", id, r)
	}
	// The steps' images are hidden, as docker's intermediates (-a shows
	// them). The gen stage's result has no child: dangling, as docker's
	// legacy builder leaves it, so image prune removes it and a rebuild
	// redoes that one step.
	shown := strings.Fields(d.DockerOK(t, "images", "-q", "--filter", "dangling=true"))
	all := strings.Fields(d.DockerOK(t, "images", "-aq", "--filter", "dangling=true"))
	if len(shown) != 1 || len(all) <= len(shown) {
		t.Errorf("dangling images: %d listed, %d with -a; want 1 (the gen stage's) and more", len(shown), len(all))
	}
	d.DockerOK(t, "image", "prune", "-f")
	r = run(t, append(d.dockerEnv(t), env...), nil, DockerCLI, "build", dir)
	if n := strings.Count(r.Stdout, "Using cache"); r.Code != 0 || n != 8 {
		t.Errorf("rebuild after image prune: %d cache hits, want 8: %s", n, r)
	}

	// A changed file: its COPY and the steps after it run again.
	if err := os.WriteFile(filepath.Join(dir, "main.sh"), []byte("echo changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, append(d.dockerEnv(t), env...), nil, DockerCLI, "build", "-t", "app:3", dir)
	if n := strings.Count(r.Stdout, "Using cache"); r.Code != 0 || n != 5 {
		t.Errorf("after a change: %d cache hits, want 5 (up to COPY conf/): %s", n, r)
	}
	if got := d.DockerOK(t, "run", "--rm", "--network", "none", "app:3"); got != "changed\n" {
		t.Errorf("run the rebuilt image: %q", got)
	}
	// --no-cache: nothing from the cache.
	r = run(t, append(d.dockerEnv(t), env...), nil, DockerCLI, "build", "--no-cache", "--target", "gen", "--build-arg", "GREETING=hi", "-t", "gen:1", dir)
	if r.Code != 0 || strings.Contains(r.Stdout, "Using cache") || !strings.Contains(r.Stdout, "Step 3/3") {
		t.Errorf("--no-cache --target gen: %s", r)
	}
	if got := d.DockerOK(t, "run", "--rm", "--network", "none", "gen:1", "cat", "/gen.txt"); got != "hi from the gen stage\n" {
		t.Errorf("--build-arg: %q", got)
	}
	// docker builder prune empties the cache: the next build hits nothing.
	if out := d.DockerOK(t, "builder", "prune", "-f"); !strings.Contains(out, "Total") {
		t.Errorf("builder prune: %q", out)
	}
	r = run(t, append(d.dockerEnv(t), env...), nil, DockerCLI, "build", dir)
	if r.Code != 0 || strings.Contains(r.Stdout, "Using cache") {
		t.Errorf("build after builder prune: %s", r)
	}
}

// TestBuildDockerCLIFailures: a failing RUN exits with its code and
// docker's words, bad Dockerfiles and contexts get clear errors, and
// none leaves a container or an image behind.
func TestBuildDockerCLIFailures(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	d.DockerOK(t, "load", "-i", testutil.Images(t).DockerArchive)
	tests := []struct {
		name       string
		dockerfile string
		code       int
		want       string
	}{
		{name: "run fails", dockerfile: "FROM busybox\nRUN echo before && exit 3\n", code: 3, want: "The command '/bin/sh -c echo before && exit 3' returned a non-zero code: 3"},
		{name: "unknown instruction", dockerfile: "FROM busybox\nFROBNICATE now\n", code: 1, want: "unknown instruction: FROBNICATE"},
		{name: "copy outside", dockerfile: "FROM busybox\nCOPY ../../etc/passwd /x\n", code: 1, want: "outside the build context"},
		{name: "copy missing", dockerfile: "FROM busybox\nCOPY nothere /x\n", code: 1, want: "nothere"},
		// An image ID no store has (a name would be pulled: see
		// TestBuildPullsBase).
		{name: "missing base", dockerfile: "FROM 0123456789abcdef\n", code: 1, want: "No such image: 0123456789abcdef"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := buildDir(t, map[string]string{"Dockerfile": tc.dockerfile})
			r := run(t, append(d.dockerEnv(t), "DOCKER_BUILDKIT=0"), nil, DockerCLI, "build", "-t", "bad:1", dir)
			t.Logf("%s", r)
			if r.Code != tc.code || !strings.Contains(r.Stdout+r.Stderr, tc.want) {
				t.Errorf("want exit %d and %q: %s", tc.code, tc.want, r)
			}
		})
	}
	// A symlink in the context that points out of it is not followed out.
	dir := buildDir(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY link /x\n"})
	if err := os.Symlink("/etc/hostname", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	r := run(t, append(d.dockerEnv(t), "DOCKER_BUILDKIT=0"), nil, DockerCLI, "build", "-t", "bad:1", dir)
	if r.Code == 0 {
		t.Errorf("COPY of a symlink out of the context succeeded: %s", r)
	}
	if got := d.DockerOK(t, "ps", "-aq"); strings.TrimSpace(got) != "" {
		t.Errorf("containers left: %q", got)
	}
	if got := d.DockerOK(t, "images", "-q", "bad"); strings.TrimSpace(got) != "" {
		t.Errorf("images made: %q", got)
	}
}

// TestBuildPullsBase: a FROM image the daemon lacks is pulled from its
// registry (docker's legacy builder does the same).
func TestBuildPullsBase(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	reg := registry.Start(t, registry.Options{})
	reg.Seed(t, testutil.Images(t).OCILayout, "test/busybox:latest")
	dir := buildDir(t, map[string]string{"Dockerfile": "FROM " + reg.Ref("test/busybox") + "\nRUN echo pulled > /p\n"})
	r := run(t, append(d.dockerEnv(t), "DOCKER_BUILDKIT=0"), nil, DockerCLI, "build", "-t", "frompull:1", dir)
	if r.Code != 0 || !strings.Contains(r.Stdout, "Status: Downloaded newer image for "+reg.Ref("test/busybox:latest")) {
		t.Fatalf("build from an absent base: %s", r)
	}
	if got := d.DockerOK(t, "run", "--rm", "--network", "none", "frompull:1", "cat", "/p"); got != "pulled\n" {
		t.Errorf("run: %q", got)
	}
}

// TestBuildPullsPrivateBase: after docker login, docker build sends the
// credential (X-Registry-Config) and FROM pulls from a registry that
// wants it.
func TestBuildPullsPrivateBase(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	reg := registry.Start(t, registry.Options{Auth: registry.Basic})
	reg.Seed(t, testutil.Images(t).OCILayout, "team/busybox:latest")
	dir := buildDir(t, map[string]string{"Dockerfile": "FROM " + reg.Ref("team/busybox") + "\nCMD [\"true\"]\n"})
	if r := run(t, append(d.dockerEnv(t), "DOCKER_BUILDKIT=0"), nil, DockerCLI, "build", dir); r.Code == 0 {
		t.Fatalf("build from a private registry without a login: %s", r)
	}
	if r := d.DockerIn(t, []byte(reg.Password+"\n"), "login", "-u", reg.User, "--password-stdin", reg.Host); r.Code != 0 {
		t.Fatalf("docker login: %s", r)
	}
	r := run(t, append(d.dockerEnv(t), "DOCKER_BUILDKIT=0"), nil, DockerCLI, "build", "-t", "private:1", dir)
	if r.Code != 0 || !strings.Contains(r.Stdout, "Status: Downloaded newer image") {
		t.Fatalf("build after docker login: %s", r)
	}
}

// TestBuildRunSettings: docker build --add-host and --shm-size reach
// the RUN containers.
func TestBuildRunSettings(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	d.DockerOK(t, "load", "-i", testutil.Images(t).DockerArchive)
	dir := buildDir(t, map[string]string{"Dockerfile": "FROM busybox\nRUN grep myhost /etc/hosts > /h && df -k /dev/shm | tail -1 > /shm\n"})
	r := run(t, append(d.dockerEnv(t), "DOCKER_BUILDKIT=0"), nil, DockerCLI, "build", "--add-host", "myhost:10.1.2.3", "--shm-size", "8m", "-t", "settings:1", dir)
	if r.Code != 0 {
		t.Fatalf("docker build: %s", r)
	}
	if got := d.DockerOK(t, "run", "--rm", "--network", "none", "settings:1", "cat", "/h", "/shm"); !strings.Contains(got, "10.1.2.3") || !strings.Contains(got, " 8192 ") {
		t.Errorf("in the RUN container: %q", got)
	}
	// The same through berth build.
	if r := d.Berth(t, "build", "--no-cache", "--add-host", "myhost:10.1.2.3", "--shm-size", "8m", "-t", "settings:2", dir); r.Code != 0 {
		t.Fatalf("berth build: %s", r)
	}
	if got := d.DockerOK(t, "run", "--rm", "--network", "none", "settings:2", "cat", "/h", "/shm"); !strings.Contains(got, "10.1.2.3") || !strings.Contains(got, " 8192 ") {
		t.Errorf("berth build: in the RUN container: %q", got)
	}
}

// TestBuildBerthCLI: berth build from a directory and from stdin.
func TestBuildBerthCLI(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	d.DockerOK(t, "load", "-i", testutil.Images(t).DockerArchive)
	dir := buildDir(t, map[string]string{"Dockerfile": "FROM busybox\nARG V\nLABEL v=$V\nCOPY a.txt /a.txt\nCMD [\"cat\", \"/a.txt\"]\n", "a.txt": "from berth\n"})
	r := d.Berth(t, "build", "-t", "bb:1", "--build-arg", "V=7", "--label", "x=y", dir)
	if r.Code != 0 || !strings.Contains(r.Stdout, "Step 5/6 : CMD") || !strings.Contains(r.Stdout, "Successfully tagged bb:1") {
		t.Fatalf("berth build: %s", r)
	}
	if got := d.DockerOK(t, "run", "--rm", "--network", "none", "bb:1"); got != "from berth\n" {
		t.Errorf("run: %q", got)
	}
	if got := d.DockerOK(t, "image", "inspect", "-f", "{{.Config.Labels.v}} {{.Config.Labels.x}}", "bb:1"); strings.TrimSpace(got) != "7 y" {
		t.Errorf("labels: %q", got)
	}
	r = run(t, []string{"BERTH_HOST=" + d.Host}, []byte("FROM busybox\nRUN exit 4\n"), bins.berth, "build", "-")
	if r.Code != 4 || !strings.Contains(r.Stderr, "returned a non-zero code: 4") {
		t.Errorf("berth build - with a failing RUN: %s", r)
	}
	r = run(t, []string{"BERTH_HOST=" + d.Host}, []byte("FROM busybox\nENV A=1\n"), bins.berth, "build", "-q", "-")
	if r.Code != 0 || !strings.HasPrefix(strings.TrimSpace(r.Stdout), "sha256:") {
		t.Errorf("berth build -q -: %s", r)
	}
	if r := d.Berth(t, "builder", "prune", "-f"); r.Code != 0 || !strings.Contains(r.Stdout, "Total reclaimed space:") {
		t.Errorf("berth builder prune: %s", r)
	}
	r = run(t, []string{"BERTH_HOST=" + d.Host}, []byte("FROM busybox\nENV A=1\n"), bins.berth, "builder", "build", "-")
	if r.Code != 0 || strings.Contains(r.Stdout, "Using cache") {
		t.Errorf("berth builder build after prune: %s", r)
	}
}

const dockerPyBuild = `
import sys, docker
url, path = sys.argv[1:3]
c = docker.DockerClient(base_url=url, version="auto")
img, logs = c.images.build(path=path, tag="py/built:1", rm=True)
lines = "".join(l.get("stream", "") for l in logs)
assert "Successfully built" in lines, lines
assert "py/built:1" in img.tags, img.tags
out = c.containers.run("py/built:1", remove=True, network_mode="none")
assert out == b"built by docker-py\n", out
try:
    c.images.build(path=path, dockerfile="Dockerfile.bad")
    sys.exit("a failing build did not raise")
except docker.errors.BuildError as e:
    assert "returned a non-zero code: 2" in str(e), e
print("ok")
`

// TestBuildDockerPy: docker-py's images.build, and its BuildError.
func TestBuildDockerPy(t *testing.T) {
	requireDockerPy(t)
	d := StartDaemon(t, DaemonOptions{})
	d.DockerOK(t, "load", "-i", testutil.Images(t).DockerArchive)
	dir := buildDir(t, map[string]string{
		"Dockerfile":     "FROM busybox\nCOPY msg /msg\nCMD [\"cat\", \"/msg\"]\n",
		"Dockerfile.bad": "FROM busybox\nRUN exit 2\n",
		"msg":            "built by docker-py\n",
		"session.py":     dockerPyBuild,
	})
	r := run(t, nil, nil, "python3", filepath.Join(dir, "session.py"), d.Host, dir)
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "ok" {
		t.Errorf("docker-py build session: %s\n%s", r, d.logTail())
	}
}
