package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// killDaemon kills d with SIGKILL, as a crash would, and clears what a
// killed daemon leaves (its socket and pid file) so d's cleanup sees a
// daemon that is gone. The containers' monitors are in sessions of their
// own and are not touched.
func killDaemon(t *testing.T, d *Daemon) {
	t.Helper()
	if err := syscall.Kill(d.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d.exited
	d.exited <- nil
	os.Remove(d.Socket)
	os.Remove(d.Pidfile)
}

// TestContainersSurviveDaemonKill is the live-restore drill: 20 containers
// writing logs, the daemon killed with -9, started again on the same root
// and exec root: all still run (same pids), their logs have no gap, wait
// works, and a restart policy acts on a container that ended while no
// daemon was there.
func TestContainersSurviveDaemonKill(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	const n = 20
	pids := map[string]string{}
	for i := range n {
		name := fmt.Sprintf("w%d", i)
		d.DockerOK(t, "run", "-d", "--name", name, "busybox", "sh", "-c", "i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done")
	}
	d.DockerOK(t, "run", "-d", "--name", "flaky", "--restart", "always", "busybox", "sh", "-c", "sleep 0.5; exit 3")
	d.DockerOK(t, "run", "-d", "--name", "ends", "busybox", "sh", "-c", "sleep 0.5; exit 7")
	for i := range n {
		name := fmt.Sprintf("w%d", i)
		pids[name] = strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.State.Pid}}", name))
	}
	flakyRestarts := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.RestartCount}}", "flaky"))

	killDaemon(t, d)
	time.Sleep(1500 * time.Millisecond) // flaky and ends exit meanwhile

	d2 := StartDaemon(t, DaemonOptions{Root: d.Root, ExecRoot: d.ExecRoot})
	t.Cleanup(func() {
		ids := strings.Fields(d2.DockerOK(t, "ps", "-aq"))
		if len(ids) > 0 {
			d2.DockerOK(t, append([]string{"rm", "-f"}, ids...)...)
		}
	})
	for i := range n {
		name := fmt.Sprintf("w%d", i)
		got := d2.DockerOK(t, "inspect", "-f", "{{.State.Status}} {{.State.Pid}} {{.LogPath}}", name)
		f := strings.Fields(got)
		if len(f) != 3 || f[0] != "running" || f[1] != pids[name] {
			t.Fatalf("%s after the daemon's restart: %q (pid was %s)", name, got, pids[name])
		}
		checkLogContiguous(t, f[2])
	}
	if got := strings.TrimSpace(d2.DockerOK(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "ends")); got != "exited 7" {
		t.Fatalf("ends: %q", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := strings.TrimSpace(d2.DockerOK(t, "inspect", "-f", "{{.RestartCount}}", "flaky"))
		if got != flakyRestarts {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flaky not restarted after the daemon came back (restarts %s)", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// wait on a restored container answers its exit.
	waitOut := make(chan Result, 1)
	go func() { waitOut <- d2.Docker(t, "wait", "w0") }()
	time.Sleep(200 * time.Millisecond)
	d2.DockerOK(t, "kill", "-s", "KILL", "w0")
	if r := <-waitOut; r.Code != 0 || strings.TrimSpace(r.Stdout) != "137" {
		t.Fatalf("wait w0: %s", r)
	}
}

// checkLogContiguous reads a json-file log and checks the counter the
// container prints never skips a number.
func checkLogContiguous(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("log: %v", err)
	}
	defer f.Close()
	next := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l struct{ Log string }
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		v, err := strconv.Atoi(strings.TrimSpace(l.Log))
		if err != nil || v != next {
			t.Fatalf("log %s: got %q, want %d", path, l.Log, next)
		}
		next++
	}
	if next == 0 {
		t.Fatalf("log %s is empty", path)
	}
}

// TestContainersHostileAPI sends what a broken or hostile client might:
// each gets docker's error shape ({"message": ...}) and status, and the
// daemon's containers are as they were.
func TestContainersHostileAPI(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	d.DockerOK(t, "create", "--name", "exists", "busybox", "true")
	t.Cleanup(func() { d.Docker(t, "rm", "-f", "exists") })
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.Socket)
	}}}
	tests := []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		{"bad json", "POST", "/containers/create", `{"Image": "busybox"`, 400, ""},
		// docker ignores unknown fields in create; a body with no config at
		// all is refused.
		{"empty body", "POST", "/containers/create", `{}`, 400, "config cannot be empty"},
		{"no image", "POST", "/containers/create", `{"Cmd": ["true"]}`, 400, ""},
		{"wrong type", "POST", "/containers/create", `{"Image": 5}`, 400, ""},
		{"name exists", "POST", "/containers/create?name=exists", `{"Image": "busybox"}`, 409, "is already in use"},
		{"bad name", "POST", "/containers/create?name=a/b", `{"Image": "busybox"}`, 400, "Invalid container name"},
		{"missing image", "POST", "/containers/create", `{"Image": "nope:1"}`, 404, "No such image: nope:1"},
		{"no such container", "POST", "/containers/nope/start", ``, 404, "No such container: nope"},
		{"bad signal", "POST", "/containers/exists/kill?signal=BOGUS", ``, 400, "invalid signal"},
		{"kill stopped", "POST", "/containers/exists/kill", ``, 409, "is not running"},
		{"huge body", "POST", "/containers/create", `{"Image": "busybox", "Env": ["` + strings.Repeat("x", 20<<20) + `"]}`, 400, ""},
	}
	before := d.DockerOK(t, "ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.State}}")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://berth/v1.43"+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			res, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body struct{ Message string }
			var raw bytes.Buffer
			raw.ReadFrom(res.Body)
			if err := json.Unmarshal(raw.Bytes(), &body); err != nil || body.Message == "" {
				t.Fatalf("body %q is not docker's error shape: %v", raw.String(), err)
			}
			if res.StatusCode != tc.status && !(tc.name == "huge body" && res.StatusCode == 413) {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body.Message)
			}
			if !strings.Contains(body.Message, tc.msg) {
				t.Fatalf("message %q, want %q", body.Message, tc.msg)
			}
		})
	}
	if after := d.DockerOK(t, "ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.State}}"); after != before {
		t.Fatalf("containers changed:\n%s\n%s", before, after)
	}
}
