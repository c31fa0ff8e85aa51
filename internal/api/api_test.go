package api

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	evtypes "github.com/moby/moby/api/types/events"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func serve(t *testing.T, f *fakeBackend) *httptest.Server {
	t.Helper()
	srv := New(Config{Backend: Backend{Images: f, System: f, Containers: f, Exec: f}})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { srv.StopStreams(); ts.Close() })
	return ts
}

func call(t *testing.T, ts *httptest.Server, method, path string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func errorMessage(t *testing.T, b []byte) string {
	t.Helper()
	var e struct{ Message string }
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body %q is not docker's {\"message\"}: %v", b, err)
	}
	return e.Message
}

func TestVersionGate(t *testing.T) {
	ts := serve(t, newFake())
	tests := []struct {
		path   string
		status int
		msg    string
	}{
		{"/v1.99/info", 400, "client version 1.99 is too new. Maximum supported API version is " + MaxAPIVersion},
		{"/v1.12/info", 400, "client version 1.12 is too old. Minimum supported API version is " + MinAPIVersion + ", please upgrade your client to a newer version"},
		{"/v1.50/info", 200, ""},
		{"/v" + MinAPIVersion + "/info", 200, ""},
		{"/info", 200, ""},
		{"/vx.y/info", 404, "page not found"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, b := call(t, ts, "GET", tc.path, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if tc.msg != "" {
				if got := errorMessage(t, b); got != tc.msg {
					t.Errorf("message %q, want %q", got, tc.msg)
				}
			}
			if resp.Header.Get("Api-Version") != MaxAPIVersion {
				t.Errorf("Api-Version header %q", resp.Header.Get("Api-Version"))
			}
		})
	}
}

func TestPing(t *testing.T) {
	ts := serve(t, newFake())
	for _, method := range []string{"GET", "HEAD"} {
		resp, b := call(t, ts, method, "/_ping", nil)
		if resp.StatusCode != 200 || resp.Header.Get("Api-Version") != MaxAPIVersion || resp.Header.Get("Ostype") != "linux" || resp.Header.Get("Docker-Experimental") != "false" {
			t.Errorf("%s /_ping: %d %v", method, resp.StatusCode, resp.Header)
		}
		want := "OK"
		if method == "HEAD" {
			want = ""
		}
		if string(b) != want {
			t.Errorf("%s /_ping body %q, want %q", method, b, want)
		}
	}
	_, b := call(t, ts, "GET", "/version", nil)
	var v struct{ ApiVersion, MinAPIVersion string }
	if err := json.Unmarshal(b, &v); err != nil || v.ApiVersion != MaxAPIVersion || v.MinAPIVersion != MinAPIVersion {
		t.Errorf("/version = %s", b)
	}
}

func TestErrorClasses(t *testing.T) {
	tests := []struct {
		err    error
		status int
		msg    string
	}{
		{fmt.Errorf("No such container: web: %w", errdefs.ErrNotFound), 404, "No such container: web"},
		{fmt.Errorf("name in use: %w", errdefs.ErrConflict), 409, "name in use"},
		{fmt.Errorf("exists: %w", errdefs.ErrAlreadyExists), 409, "exists"},
		{fmt.Errorf("bad: %w", errdefs.ErrInvalidArgument), 400, "bad"},
		{fmt.Errorf("denied: %w", errdefs.ErrUnauthorized), 401, "denied"},
		{fmt.Errorf("no: %w", errdefs.ErrForbidden), 403, "no"},
		{fmt.Errorf("later: %w", errdefs.ErrUnavailable), 503, "later"},
		{fmt.Errorf("nope: %w", errdefs.ErrNotImplemented), 501, "nope"},
		{errors.New("disk on fire"), 500, "disk on fire"},
		// The class in the middle of a message stays: only a trailing tag goes.
		{fmt.Errorf("outer: %w: inner", errdefs.ErrNotFound), 404, "outer: not found: inner"},
	}
	for _, tc := range tests {
		t.Run(tc.msg, func(t *testing.T) {
			f := newFake()
			f.err = tc.err
			ts := serve(t, f)
			resp, b := call(t, ts, "GET", "/containers/web/json", nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if got := errorMessage(t, b); got != tc.msg {
				t.Errorf("message %q, want %q", got, tc.msg)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	t.Run("not modified has no body", func(t *testing.T) {
		f := newFake()
		f.err = fmt.Errorf("already started: %w", errdefs.ErrNotModified)
		ts := serve(t, f)
		resp, b := call(t, ts, "POST", "/containers/web/start", nil)
		if resp.StatusCode != 304 || len(b) != 0 {
			t.Errorf("status %d body %q, want 304 and none", resp.StatusCode, b)
		}
	})
}

func TestUnknownRoute(t *testing.T) {
	ts := serve(t, newFake())
	for _, p := range []string{"/nothing", "/v1.50/containers/x/frobnicate", "/images/busybox/frobnicate"} {
		resp, b := call(t, ts, "GET", p, nil)
		if resp.StatusCode != 404 || errorMessage(t, b) != "page not found" {
			t.Errorf("GET %s: %d %s", p, resp.StatusCode, b)
		}
	}
}

// TestHostileInput sends what a broken or hostile client might, and checks
// each gets docker's 400 and never reaches the backend.
func TestHostileInput(t *testing.T) {
	huge := `{"Image":"busybox","Env":["` + strings.Repeat("A", MaxJSONBody) + `"]}`
	tests := []struct {
		name, method, path, body, wantMsg string
	}{
		{"bad json", "POST", "/containers/create", `{"Image":`, "invalid JSON"},
		{"not an object", "POST", "/containers/create", `[1,2]`, "invalid JSON"},
		{"trailing data", "POST", "/containers/create", `{"Image":"busybox"} {"Image":"x"}`, "unexpected data"},
		{"empty body", "POST", "/containers/create", ``, "request body is empty"},
		{"huge body", "POST", "/containers/create", huge, "request body too large"},
		{"bad name", "POST", "/containers/create?name=..bad/name", `{"Image":"busybox"}`, "Invalid container name"},
		{"no config", "POST", "/containers/create", `{"HostConfig":{}}`, "config cannot be empty"},
		{"bad bool", "DELETE", "/containers/web?force=maybe", ``, "want a boolean"},
		{"bad timeout", "POST", "/containers/web/stop?t=soon", ``, "want an integer"},
		{"bad condition", "POST", "/containers/web/wait?condition=whenever", ``, "invalid condition"},
		{"bad filters", "GET", "/containers/json?filters=%7Bnot-json", ``, "invalid filter"},
		{"no stream chosen", "GET", "/containers/web/logs", ``, "you must choose at least one stream"},
		{"exec without cmd", "POST", "/containers/web/exec", `{"Cmd":[]}`, "No exec command specified"},
		{"bad event filter", "GET", "/events?filters=%7B%22bogus%22%3A%7B%22x%22%3Atrue%7D%7D", ``, "invalid filter 'bogus'"},
		{"bad since", "GET", "/events?since=yesterday", ``, "invalid value for since"},
		{"bad df type", "GET", "/system/df?type=socks", ``, "unknown object type"},
		{"tag without repo", "POST", "/images/busybox/tag", ``, "repository name"},
		{"bad reference", "POST", "/images/create?fromImage=UPPER%20case", ``, "invalid reference format"},
		{"bad auth header", "POST", "/images/create?fromImage=busybox&tag=1", ``, ""},
		{"start with host config", "POST", "/containers/web/start", `{"Binds":["/:/host"]}`, "removed in v1.24"},
		{"bad resize", "POST", "/containers/web/resize?h=-1&w=10", ``, "invalid terminal size"},
		{"form body", "POST", "/containers/create", `Image=busybox`, "must be 'application/json'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			ts := serve(t, f)
			req, _ := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader(tc.body))
			if tc.name == "form body" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if tc.name == "bad auth header" {
				req.Header.Set("X-Registry-Auth", "!!!not base64!!!")
				tc.wantMsg = "X-Registry-Auth"
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Fatalf("status %d, want 400: %s", resp.StatusCode, b)
			}
			if msg := errorMessage(t, b); !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("message %q, want it to contain %q", msg, tc.wantMsg)
			}
			if calls := f.Calls(); len(calls) != 0 {
				t.Errorf("backend was called: %v", calls)
			}
		})
	}
}

func TestImageNamesWithSlashes(t *testing.T) {
	f := newFake()
	ts := serve(t, f)
	name := "127.0.0.1:5000/team/app:1"
	call(t, ts, "GET", "/v1.50/images/"+name+"/json", nil)
	call(t, ts, "GET", "/images/"+name+"/history", nil)
	call(t, ts, "POST", "/images/"+name+"/tag?repo=other/app&tag=2", nil)
	call(t, ts, "DELETE", "/images/"+name+"?force=1", nil)
	call(t, ts, "GET", "/images/"+name+"/get", nil)
	want := []string{
		"ImageInspect " + name, "ImageHistory " + name, "ImageTag " + name + " other/app:2",
		"ImageRemove " + name + " force=true", "ImageSave [" + name + "]",
	}
	if got := f.Calls(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func decodeStream(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("stream %q: %v", b, err)
		}
		out = append(out, m)
	}
}

func TestPullProgress(t *testing.T) {
	layer := distribution.Progress{ID: "0123456789ab"}
	t.Run("stream", func(t *testing.T) {
		f := newFake()
		dl := layer
		dl.Status, dl.Current, dl.Total = distribution.StatusDownloading, 10, 100
		done := layer
		done.Status = distribution.StatusPullComplete
		f.progress = []distribution.Progress{{Config: true, Status: distribution.StatusDownloading}, dl, done}
		ts := serve(t, f)
		resp, b := call(t, ts, "POST", "/images/create?fromImage=busybox&tag=latest", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		msgs := decodeStream(t, b)
		if len(msgs) != 5 {
			t.Fatalf("got %d messages, want 5 (header, 2 layer lines, digest, status): %s", len(msgs), b)
		}
		if msgs[0]["status"] != "Pulling from library/busybox" || msgs[0]["id"] != "latest" {
			t.Errorf("first = %v", msgs[0])
		}
		pd, _ := msgs[1]["progressDetail"].(map[string]any)
		if msgs[1]["status"] != "Downloading" || pd["current"] != 10.0 || pd["total"] != 100.0 {
			t.Errorf("download = %v", msgs[1])
		}
		if !strings.HasPrefix(msgs[3]["status"].(string), "Digest: sha256:") || msgs[4]["status"] != "Status: Downloaded newer image for docker.io/library/busybox:latest" {
			t.Errorf("end = %v %v", msgs[3], msgs[4])
		}
		if got := f.Calls(); len(got) != 1 || got[0] != "Pull docker.io/library/busybox:latest" {
			t.Errorf("calls %v", got)
		}
	})
	t.Run("error before progress is a status", func(t *testing.T) {
		f := newFake()
		f.pullErr = fmt.Errorf("pull access denied for nope: %w", errdefs.ErrNotFound)
		ts := serve(t, f)
		resp, b := call(t, ts, "POST", "/images/create?fromImage=nope&tag=1", nil)
		if resp.StatusCode != 404 || errorMessage(t, b) != "pull access denied for nope" {
			t.Errorf("%d %s", resp.StatusCode, b)
		}
	})
	t.Run("error after progress is in band", func(t *testing.T) {
		f := newFake()
		p := layer
		p.Status = distribution.StatusResolved
		f.progress = []distribution.Progress{p}
		f.pullErr = errors.New("fetch layer: unexpected EOF")
		ts := serve(t, f)
		resp, b := call(t, ts, "POST", "/images/create?fromImage=busybox&tag=1", nil)
		msgs := decodeStream(t, b)
		last := msgs[len(msgs)-1]
		detail, _ := last["errorDetail"].(map[string]any)
		if resp.StatusCode != 200 || last["error"] != "fetch layer: unexpected EOF" || detail["message"] != "fetch layer: unexpected EOF" {
			t.Errorf("%d, last = %v", resp.StatusCode, last)
		}
	})
}

func TestPushEndsWithAux(t *testing.T) {
	f := newFake()
	f.progress = []distribution.Progress{{ID: "0123456789ab", Status: distribution.StatusMounted, Detail: "library/busybox"}}
	ts := serve(t, f)
	req, _ := http.NewRequest("POST", ts.URL+"/images/127.0.0.1:5000/app/push?tag=1", nil)
	req.Header.Set("X-Registry-Auth", base64.URLEncoding.EncodeToString([]byte(`{"username":"u","password":"p"}`)))
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	msgs := decodeStream(t, b)
	if msgs[0]["status"] != "The push refers to repository [127.0.0.1:5000/app]" || msgs[1]["status"] != "Mounted from library/busybox" {
		t.Errorf("stream %s", b)
	}
	aux, _ := msgs[len(msgs)-1]["aux"].(map[string]any)
	if aux["Tag"] != "1" || aux["Size"] != 527.0 {
		t.Errorf("aux %v", msgs[len(msgs)-1])
	}
}

func TestLoadAndAuth(t *testing.T) {
	f := newFake()
	ts := serve(t, f)
	_, b := call(t, ts, "POST", "/images/load?quiet=1", strings.NewReader("archive"))
	msgs := decodeStream(t, b)
	if len(msgs) != 1 || msgs[0]["stream"] != "Loaded image: busybox:latest\n" {
		t.Errorf("load: %s", b)
	}
	_, b = call(t, ts, "POST", "/images/load", strings.NewReader("over another"))
	msgs = decodeStream(t, b)
	if len(msgs) != 2 || msgs[0]["stream"] != "The image busybox:latest already exists, renaming the old one with ID "+digest.FromString("old").String()+" to empty string\n" || msgs[1]["stream"] != "Loaded image: busybox:latest\n" {
		t.Errorf("load over another image's tag: %s", b)
	}
	resp, b := call(t, ts, "POST", "/auth", strings.NewReader(`{"username":"u","password":"p","serveraddress":"127.0.0.1:5000"}`))
	if resp.StatusCode != 200 || !strings.Contains(string(b), "Login Succeeded") {
		t.Errorf("auth: %d %s", resp.StatusCode, b)
	}
	if got := f.Calls(); got[0] != "ImageLoad archive" || got[2] != "Login 127.0.0.1:5000 u" {
		t.Errorf("calls %v", got)
	}
}

func TestMuxWriterMatchesDocker(t *testing.T) {
	var buf bytes.Buffer
	out, errw := NewMuxWriters(&buf)
	io.WriteString(out, "hello ")
	io.WriteString(errw, "oops\n")
	io.WriteString(out, "world\n")
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, &buf); err != nil {
		t.Fatal(err)
	}
	if o.String() != "hello world\n" || e.String() != "oops\n" {
		t.Errorf("stdout %q stderr %q", o.String(), e.String())
	}
}

func TestLogs(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	logs := []LogMessage{{Stream: "stdout", Line: []byte("out\n"), Time: now}, {Stream: "stderr", Line: []byte("err\n"), Time: now}}
	t.Run("multiplexed", func(t *testing.T) {
		f := newFake()
		f.logs = logs
		ts := serve(t, f)
		resp, b := call(t, ts, "GET", "/containers/web/logs?stdout=1&stderr=1&timestamps=1&tail=10", nil)
		if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.docker.multiplexed-stream" {
			t.Errorf("Content-Type %q", ct)
		}
		var o, e bytes.Buffer
		if _, err := stdcopy.StdCopy(&o, &e, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		if o.String() != "2026-01-02T03:04:05.000000006Z out\n" || e.String() != "2026-01-02T03:04:05.000000006Z err\n" {
			t.Errorf("stdout %q stderr %q", o.String(), e.String())
		}
	})
	t.Run("tty is raw", func(t *testing.T) {
		f := newFake()
		f.logs, f.tty = logs, true
		ts := serve(t, f)
		resp, b := call(t, ts, "GET", "/containers/web/logs?stdout=1&stderr=1", nil)
		if string(b) != "out\nerr\n" || resp.Header.Get("Content-Type") != "application/vnd.docker.raw-stream" {
			t.Errorf("%q %v", b, resp.Header)
		}
	})
	t.Run("old API is raw-stream typed", func(t *testing.T) {
		f := newFake()
		f.logs = logs
		ts := serve(t, f)
		resp, _ := call(t, ts, "GET", "/v1.41/containers/web/logs?stdout=1", nil)
		if resp.Header.Get("Content-Type") != "application/vnd.docker.raw-stream" {
			t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
		}
	})
}

// hijackRequest sends an attach-style request on a raw connection, as the
// docker CLI does, and returns the response and the connection.
func hijackRequest(t *testing.T, ts *httptest.Server, path, body string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req, _ := http.NewRequest("POST", "http://x"+path, strings.NewReader(body))
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, conn, br
}

func TestAttachHijack(t *testing.T) {
	f := newFake()
	f.attachIn = make(chan string, 1)
	ts := serve(t, f)
	resp, conn, br := hijackRequest(t, ts, "/v1.50/containers/web/attach?stream=1&stdin=1&stdout=1&stderr=1", "")
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "tcp" || resp.Header.Get("Content-Type") != "application/vnd.docker.multiplexed-stream" {
		t.Fatalf("response %d %v", resp.StatusCode, resp.Header)
	}
	io.WriteString(conn, "ping\n")
	if got := <-f.attachIn; got != "ping\n" {
		t.Errorf("stdin %q", got)
	}
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, br); err != nil {
		t.Fatal(err)
	}
	if o.String() != "ping\n" || e.String() != "err\n" {
		t.Errorf("stdout %q stderr %q", o.String(), e.String())
	}
}

func TestAttachUnknownContainerIsPlain404(t *testing.T) {
	f := newFake()
	f.err = fmt.Errorf("No such container: nope: %w", errdefs.ErrNotFound)
	ts := serve(t, f)
	resp, _, br := hijackRequest(t, ts, "/containers/nope/attach?stream=1&stdout=1", "")
	if resp.StatusCode != 404 {
		t.Fatalf("status %d, want 404", resp.StatusCode)
	}
	b, _ := io.ReadAll(io.LimitReader(br, resp.ContentLength))
	if errorMessage(t, b) != "No such container: nope" {
		t.Errorf("body %s", b)
	}
}

func TestExecStart(t *testing.T) {
	f := newFake()
	ts := serve(t, f)
	resp, _, br := hijackRequest(t, ts, "/exec/e1/start", `{"Detach":false,"Tty":true}`)
	if resp.StatusCode != 101 || resp.Header.Get("Content-Type") != "application/vnd.docker.raw-stream" {
		t.Fatalf("response %d %v", resp.StatusCode, resp.Header)
	}
	b, _ := io.ReadAll(br)
	if string(b) != "exec out\n" {
		t.Errorf("tty output %q", b)
	}
	resp2, b2 := call(t, ts, "POST", "/exec/e1/start", strings.NewReader(`{"Detach":true}`))
	if resp2.StatusCode != 200 || len(b2) != 0 {
		t.Errorf("detached: %d %q", resp2.StatusCode, b2)
	}
	resp3, b3 := call(t, ts, "POST", "/containers/web/exec", strings.NewReader(`{"Cmd":["true"]}`))
	if resp3.StatusCode != 201 || !strings.Contains(string(b3), `"Id":"e1"`) {
		t.Errorf("create: %d %s", resp3.StatusCode, b3)
	}
}

func TestWaitAnswersBeforeExit(t *testing.T) {
	f := newFake()
	f.waitRes = make(chan container.WaitResponse, 1)
	ts := serve(t, f)
	resp, err := ts.Client().Post(ts.URL+"/containers/web/wait?condition=next-exit", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The 200 came while the container still "runs".
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	f.waitRes <- container.WaitResponse{StatusCode: 3}
	var w container.WaitResponse
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil || w.StatusCode != 3 {
		t.Errorf("wait = %+v, %v", w, err)
	}
}

func TestContainerRoutes(t *testing.T) {
	f := newFake()
	ts := serve(t, f)
	tests := []struct {
		method, path, body string
		status             int
		call               string
	}{
		{"POST", "/containers/create?name=web", `{"Image":"busybox"}`, 201, "ContainerCreate web busybox"},
		{"POST", "/containers/web/start", ``, 204, "ContainerStart web"},
		{"POST", "/containers/web/stop?t=5&signal=SIGINT", ``, 204, "ContainerStop web SIGINT 5"},
		{"POST", "/containers/web/restart", ``, 204, "ContainerRestart web"},
		{"POST", "/containers/web/kill?signal=HUP", ``, 204, "ContainerKill web HUP"},
		{"POST", "/containers/web/pause", ``, 204, "ContainerPause web"},
		{"POST", "/containers/web/unpause", ``, 204, "ContainerUnpause web"},
		{"DELETE", "/containers/web?force=1&v=1", ``, 204, "ContainerRemove web force=true v=true"},
		{"POST", "/containers/web/rename?name=db", ``, 204, "ContainerRename web db"},
		{"POST", "/containers/web/update", `{"Memory":1048576}`, 200, "ContainerUpdate web mem=1048576"},
		{"GET", "/containers/web/top?ps_args=aux", ``, 200, "ContainerTop web aux"},
		{"GET", "/containers/web/json", ``, 200, "ContainerInspect web"},
		{"GET", "/containers/json?all=1&limit=3&filters=%7B%22status%22%3A%5B%22running%22%5D%7D", ``, 200, "ContainerList all=true limit=3 filters=map[status:[running]]"},
		{"POST", "/containers/web/resize?h=24&w=80", ``, 200, "ContainerResize web 24x80"},
		{"GET", "/containers/web/stats?stream=0", ``, 200, "ContainerStats web stream=false"},
		{"GET", "/containers/web/changes", ``, 200, "ContainerChanges web"},
		{"GET", "/containers/web/export", ``, 200, "ContainerExport web"},
		{"HEAD", "/containers/web/archive?path=/f", ``, 200, "ContainerStatPath web /f"},
		{"GET", "/containers/web/archive?path=/f", ``, 200, "ContainerArchive web /f"},
		{"PUT", "/containers/web/archive?path=/dir", `TAR`, 200, "ContainerExtract web /dir TAR"},
		{"POST", "/commit?container=web&repo=app&tag=2", ``, 201, "ContainerCommit web app:2 pause=true"},
		{"POST", "/containers/prune", ``, 200, "ContainersPrune"},
		{"GET", "/exec/e1/json", ``, 200, "ExecInspect e1"},
		{"POST", "/exec/e1/resize?h=1&w=2", ``, 200, "ExecResize e1 1x2"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			before := len(f.Calls())
			resp, b := call(t, ts, tc.method, tc.path, strings.NewReader(tc.body))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			calls := f.Calls()
			if len(calls) != before+1 || calls[before] != tc.call {
				t.Errorf("calls %v, want %q", calls[before:], tc.call)
			}
			if tc.method == "HEAD" || strings.HasSuffix(tc.path, "archive?path=/f") {
				if resp.Header.Get("X-Docker-Container-Path-Stat") == "" {
					t.Errorf("no path stat header")
				}
			}
		})
	}
	// One-shot stats is a single document.
	_, b := call(t, ts, "GET", "/containers/web/stats?stream=false", nil)
	if n := len(decodeStream(t, b)); n != 1 {
		t.Errorf("stream=false sent %d samples", n)
	}
}

func TestNoContainerBackendIs501(t *testing.T) {
	f := newFake()
	srv := New(Config{Backend: Backend{Images: f, System: f}})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	for _, p := range []string{"/containers/json", "/exec/x/json"} {
		resp, b := call(t, ts, "GET", p, nil)
		if resp.StatusCode != 501 {
			t.Errorf("%s: %d %s", p, resp.StatusCode, b)
		}
	}
}

func TestEventsSinceUntilAndFilters(t *testing.T) {
	f := newFake()
	ts := serve(t, f)
	base := time.Now().Add(-time.Minute)
	for i, a := range []evtypes.Action{evtypes.ActionPull, evtypes.ActionTag, evtypes.ActionStart} {
		typ := evtypes.ImageEventType
		if a == evtypes.ActionStart {
			typ = evtypes.ContainerEventType
		}
		at := base.Add(time.Duration(i) * time.Second)
		f.bus.Publish(evtypes.Message{Type: typ, Action: a, Actor: evtypes.Actor{ID: "x"}, Time: at.Unix(), TimeNano: at.UnixNano()})
	}
	q := fmt.Sprintf("/events?since=%d&until=%d.%09d", base.Unix(), base.Add(1500*time.Millisecond).Unix(), base.Add(1500*time.Millisecond).Nanosecond())
	_, b := call(t, ts, "GET", q, nil)
	msgs := decodeStream(t, b)
	if len(msgs) != 2 || msgs[0]["Action"] != "pull" || msgs[1]["Action"] != "tag" {
		t.Errorf("since/until: %s", b)
	}
	_, b = call(t, ts, "GET", fmt.Sprintf("/events?since=%d&until=%d&filters=%%7B%%22type%%22%%3A%%5B%%22container%%22%%5D%%7D", base.Unix(), time.Now().Unix()), nil)
	msgs = decodeStream(t, b)
	if len(msgs) != 1 || msgs[0]["Action"] != "start" {
		t.Errorf("filtered: %s", b)
	}
}

func TestEventsFollowEndsOnStopStreams(t *testing.T) {
	f := newFake()
	srv := New(Config{Backend: Backend{Images: f, System: f}})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	resp, err := ts.Client().Get(ts.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	f.bus.Publish(evtypes.Message{Type: evtypes.ImageEventType, Action: evtypes.ActionPull, Actor: evtypes.Actor{ID: "live"}})
	var m evtypes.Message
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || m.Actor.ID != "live" {
		t.Fatalf("live event %+v %v", m, err)
	}
	srv.StopStreams()
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, resp.Body); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("events stream did not end after StopStreams")
	}
}

func TestDiskUsageLegacyShape(t *testing.T) {
	ts := serve(t, newFake())
	_, b := call(t, ts, "GET", "/v1.50/system/df", nil)
	var got map[string]json.RawMessage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if string(got["LayersSize"]) != "42" || got["Images"] == nil || got["ImageUsage"] != nil {
		t.Errorf("df for 1.50 = %s", b)
	}
}

func TestMuxWriterFrames(t *testing.T) {
	var buf bytes.Buffer
	out, _ := NewMuxWriters(&buf)
	io.WriteString(out, "abc")
	b := buf.Bytes()
	if len(b) != 11 || b[0] != StreamStdout || binary.BigEndian.Uint32(b[4:8]) != 3 || string(b[8:]) != "abc" {
		t.Errorf("frame % x", b)
	}
}

// TestStopStreamsEndsAttach: shutdown ends a hijacked session that would
// otherwise last as long as the container, on both ends.
func TestStopStreamsEndsAttach(t *testing.T) {
	f := newFake()
	f.attachHold, f.attachDone = true, make(chan struct{})
	srv := New(Config{Backend: Backend{Images: f, System: f, Containers: f, Exec: f}})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	resp, _, br := hijackRequest(t, ts, "/containers/web/attach?stream=1&stdin=1&stdout=1", "")
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	srv.StopStreams()
	select {
	case <-f.attachDone:
	case <-time.After(5 * time.Second):
		t.Fatal("backend's attach still running after StopStreams")
	}
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, br); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("client connection still open after StopStreams")
	}
}

func TestUnsupportedAreasAre501(t *testing.T) {
	ts := serve(t, newFake())
	for _, p := range []string{"/v1.50/networks", "/networks/bridge", "/volumes/prune", "/build", "/images/search?term=x", "/swarm"} {
		method := "GET"
		if strings.HasSuffix(p, "prune") || p == "/build" {
			method = "POST"
		}
		resp, b := call(t, ts, method, p, nil)
		if resp.StatusCode != 501 || !strings.Contains(errorMessage(t, b), "not supported by this daemon") {
			t.Errorf("%s %s: %d %s", method, p, resp.StatusCode, b)
		}
	}
}

func TestAllTagsIs501(t *testing.T) {
	f := newFake()
	ts := serve(t, f)
	for _, tc := range []struct{ method, path string }{
		{"POST", "/images/create?fromImage=busybox"},
		{"POST", "/images/busybox/push"},
	} {
		resp, b := call(t, ts, tc.method, tc.path, nil)
		if resp.StatusCode != 501 || !strings.Contains(errorMessage(t, b), "all tags of busybox") {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, b)
		}
	}
	if calls := f.Calls(); len(calls) != 0 {
		t.Errorf("backend called: %v", calls)
	}
}

func TestImagePlatformQuery(t *testing.T) {
	f := newFake()
	ts := serve(t, f)
	call(t, ts, "GET", "/v1.49/images/busybox/json?platform="+url.QueryEscape(`{"os":"linux","architecture":"amd64"}`), nil)
	call(t, ts, "GET", "/v1.48/images/get?names=busybox&platform=linux%2Farm64", nil)
	got := f.Calls()
	want := []string{`ImageInspect busybox platform={"os":"linux","architecture":"amd64"}`, "ImageSave [busybox] platform=linux/arm64"}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("calls %q, want %q", got, want)
	}
}
