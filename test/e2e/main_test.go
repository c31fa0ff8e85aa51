package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/testutil"
)

// DockerCLI is the real docker client the tests drive.
const DockerCLI = "/usr/local/bin/docker"

// bins are the binaries built once for the package.
var bins struct {
	dir          string
	berth        string
	runtime      string
	runtimeError error // berth-runtime failed to build; tests needing it fail with this
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berth-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		root, err := testutil.RepoRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		bins.dir = dir
		bins.berth = filepath.Join(dir, "berth")
		bins.runtime = filepath.Join(dir, "berth-runtime")
		if err := build(root, bins.berth, "./cmd/berth"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// The runtime is built too for the container tests; its failure
		// (another engineer's work in progress) fails only those.
		bins.runtimeError = build(root, bins.runtime, "./cmd/berth-runtime")
		return testutil.Run(m)
	}()
	os.Exit(code)
}

func build(root, out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// RuntimeBin is the berth-runtime binary, or fails t if it did not build.
func RuntimeBin(t testing.TB) string {
	t.Helper()
	if bins.runtimeError != nil {
		t.Fatal(bins.runtimeError)
	}
	return bins.runtime
}

// Daemon is a running `berth daemon` with its own state.
type Daemon struct {
	Root, ExecRoot, Socket string
	// Host is DOCKER_HOST for it: unix://<Socket>.
	Host    string
	LogFile string
	Pidfile string

	cmd    *exec.Cmd
	exited chan error
}

// DaemonOptions tune StartDaemon.
type DaemonOptions struct {
	// Args are extra flags (e.g. --storage-driver vfs).
	Args []string
	// Root and ExecRoot reuse a daemon's state (a restart: pass the
	// first daemon's Root and ExecRoot); "" makes new ones.
	Root, ExecRoot string
}

// StartDaemon starts berth daemon on a temp root, exec root and socket,
// waits until it answers /_ping, and stops it in t's cleanup (SIGTERM,
// then checks the socket and pid file are gone). It needs root: the
// daemon mounts overlay snapshots.
func StartDaemon(t *testing.T, opts DaemonOptions) *Daemon {
	t.Helper()
	testutil.RequireRoot(t)
	// Unix socket paths are limited to 108 bytes; t.TempDir() can be long.
	short, err := os.MkdirTemp("", "be2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(short) })
	dir := t.TempDir()
	d := &Daemon{
		Root:     filepath.Join(dir, "root"),
		ExecRoot: filepath.Join(short, "run"),
		LogFile:  filepath.Join(dir, "daemon.log"),
		exited:   make(chan error, 1),
	}
	if opts.Root != "" {
		d.Root = opts.Root
	}
	if opts.ExecRoot != "" {
		d.ExecRoot = opts.ExecRoot
	}
	d.Socket = filepath.Join(d.ExecRoot, "berth.sock")
	d.Host = "unix://" + d.Socket
	d.Pidfile = filepath.Join(d.ExecRoot, "berth.pid")
	// An empty config file, so the machine's /etc/berth/daemon.json (if
	// any) does not leak into tests.
	conf := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(conf, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(d.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	args := append([]string{"daemon", "--root", d.Root, "--exec-root", d.ExecRoot, "-H", d.Host,
		"--config-file", conf, "--log-level", "debug"}, opts.Args...)
	d.cmd = exec.Command(bins.berth, args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// Its own process group, and killed with us if the test binary dies.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(func() { d.stop(t) })

	c := d.Client(t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Ping(ctx)
		cancel()
		if err == nil {
			return d
		}
		select {
		case werr := <-d.exited:
			d.exited <- werr
			t.Fatalf("berth daemon exited early: %v\n%s", werr, d.logTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("berth daemon not answering /_ping after 15s: %v\n%s", err, d.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits; a daemon that does not stop in 20 s is
// killed and the test fails. Then nothing of it may remain.
func (d *Daemon) stop(t *testing.T) {
	t.Helper()
	if d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		d.exited <- err
		if err != nil {
			t.Errorf("berth daemon exited with %v after SIGTERM\n%s", err, d.logTail())
		}
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.exited
		t.Errorf("berth daemon did not stop within 20s of SIGTERM\n%s", d.logTail())
	}
	for _, p := range []string{d.Socket, d.Pidfile} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after shutdown %s remains (%v)", p, err)
		}
	}
	if t.Failed() {
		t.Logf("daemon log:\n%s", d.logTail())
	}
}

func (d *Daemon) logTail() string {
	b, _ := os.ReadFile(d.LogFile)
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// Client is an internal/client for the daemon, closed in t's cleanup.
func (d *Daemon) Client(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.New(d.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Result is one CLI run.
type Result struct {
	Stdout, Stderr string
	Code           int
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// run runs a command with env added to ours, and stdin if not nil.
func run(t testing.TB, env []string, stdin []byte, name string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return r
}

// Docker runs the real docker CLI against d, with a config directory of
// its own (no credentials or contexts of the machine's user).
func (d *Daemon) Docker(t testing.TB, args ...string) Result {
	t.Helper()
	if _, err := os.Stat(DockerCLI); err != nil {
		t.Skipf("needs the docker CLI at %s", DockerCLI)
	}
	return run(t, d.dockerEnv(t), nil, DockerCLI, args...)
}

// DockerIn is Docker with stdin.
func (d *Daemon) DockerIn(t testing.TB, stdin []byte, args ...string) Result {
	t.Helper()
	if _, err := os.Stat(DockerCLI); err != nil {
		t.Skipf("needs the docker CLI at %s", DockerCLI)
	}
	return run(t, d.dockerEnv(t), stdin, DockerCLI, args...)
}

// DockerOK runs docker and fails t unless it exits 0; it returns stdout.
func (d *Daemon) DockerOK(t testing.TB, args ...string) string {
	t.Helper()
	r := d.Docker(t, args...)
	if r.Code != 0 {
		t.Fatalf("docker %s: %s", strings.Join(args, " "), r)
	}
	return r.Stdout
}

func (d *Daemon) dockerEnv(t testing.TB) []string {
	cfg := filepath.Join(filepath.Dir(d.Root), "docker-config")
	_ = os.MkdirAll(cfg, 0o700)
	return []string{"DOCKER_HOST=" + d.Host, "DOCKER_CONFIG=" + cfg, "DOCKER_CONTEXT=", "DOCKER_CLI_HINTS=false"}
}

// Berth runs the berth CLI against d (BERTH_HOST and DOCKER_HOST point at
// it, for verbs that speak the API).
func (d *Daemon) Berth(t testing.TB, args ...string) Result {
	t.Helper()
	return run(t, []string{"BERTH_HOST=" + d.Host, "DOCKER_HOST=" + d.Host}, nil, bins.berth, args...)
}
