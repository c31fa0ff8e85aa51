package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/build"
	"github.com/berth-dev/berth/internal/errdefs"
)

// fakeBuilder answers builds in memory: it writes lines, then fails with
// err (if set) or returns id.
type fakeBuilder struct {
	lines []string
	err   error
	got   build.Options
	body  string
}

const fakeBuildID = digest.Digest("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")

func (f *fakeBuilder) Build(_ context.Context, opts build.Options) (build.Result, error) {
	f.got = opts
	b, _ := io.ReadAll(opts.Context)
	f.body = string(b)
	for _, l := range f.lines {
		if opts.Output != nil {
			io.WriteString(opts.Output, l)
		}
	}
	if f.err != nil {
		return build.Result{}, f.err
	}
	opts.Aux(fakeBuildID)
	return build.Result{ID: fakeBuildID}, nil
}

func (f *fakeBuilder) BuildPrune(context.Context) (build.PruneResult, error) {
	return build.PruneResult{Entries: 2, SpaceReclaimed: 42}, nil
}

func serveBuild(t *testing.T, fb *fakeBuilder) *httptest.Server {
	f := newFake()
	srv := New(Config{Backend: Backend{Images: f, System: f, Containers: f, Exec: f, Build: fb}})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { srv.StopStreams(); ts.Close() })
	return ts
}

// buildMessages decodes the stream of JSON messages.
func buildMessages(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("stream %q: %v", b, err)
		}
		out = append(out, m)
	}
	return out
}

func TestBuildStream(t *testing.T) {
	tests := []struct {
		name     string
		query    string
		fb       fakeBuilder
		status   int
		want     []string // substrings of the body, in order
		wantCode float64  // errorDetail.code, when the stream fails
	}{
		{name: "success", query: "?t=app:1&t=app:2&dockerfile=sub/Dockerfile&buildargs=%7B%22A%22%3A%221%22%7D&labels=%7B%22l%22%3A%22v%22%7D&target=final&networkmode=host&extrahosts=%5B%22db%3A10.0.0.2%22%5D&shmsize=1048576&memory=8388608&cpusetcpus=0",
			fb:     fakeBuilder{lines: []string{"Step 1/1 : FROM busybox\n", " ---> abc\n"}},
			status: 200, want: []string{`{"stream":"Step 1/1 : FROM busybox\n"}`, `{"aux":{"ID":"` + fakeBuildID.String() + `"}}`}},
		{name: "quiet", query: "?q=1", fb: fakeBuilder{lines: []string{"Step 1/1 : FROM busybox\n"}},
			status: 200, want: []string{`"aux"`, `{"stream":"` + fakeBuildID.String() + `\n"}`}},
		{name: "error before output", fb: fakeBuilder{err: fmt.Errorf("Cannot locate specified Dockerfile: Dockerfile: %w", errdefs.ErrInvalidArgument)},
			status: 400, want: []string{"Cannot locate specified Dockerfile"}},
		{name: "run fails", fb: fakeBuilder{lines: []string{"Step 2/2 : RUN false\n"}, err: &build.ExitError{Code: 3, Command: "/bin/sh -c false"}},
			status: 200, want: []string{"Step 2/2", `"error":"The command '/bin/sh -c false' returned a non-zero code: 3"`}, wantCode: 3},
		{name: "bad buildargs", query: "?buildargs=nope", status: 400, want: []string{"invalid buildargs"}},
		{name: "bad nocache", query: "?nocache=maybe", status: 400, want: []string{"nocache"}},
		{name: "bad memory", query: "?memory=lots", status: 400, want: []string{"memory"}},
		{name: "buildkit", query: "?version=2", status: 501, want: []string{"BuildKit"}},
		{name: "squash", query: "?squash=1", status: 501, want: []string{"squash"}},
		{name: "remote", query: "?remote=https://example.com/x.git", status: 501, want: []string{"remote build contexts"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fb := tc.fb
			ts := serveBuild(t, &fb)
			resp, b := call(t, ts, "POST", "/v1.47/build"+tc.query, strings.NewReader("context-bytes"))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			rest := string(b)
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("body lacks %q (in order): %s", w, b)
				}
				rest = rest[i+len(w):]
			}
			if tc.status != 200 {
				return
			}
			msgs := buildMessages(t, b)
			last := msgs[len(msgs)-1]
			if tc.wantCode != 0 {
				detail, _ := last["errorDetail"].(map[string]any)
				if detail["code"] != tc.wantCode {
					t.Errorf("errorDetail %v, want code %v", detail, tc.wantCode)
				}
			}
			if tc.name == "success" {
				g := fb.got
				if fb.body != "context-bytes" || g.Dockerfile != "sub/Dockerfile" || strings.Join(g.Tags, ",") != "app:1,app:2" ||
					*g.BuildArgs["A"] != "1" || g.Labels["l"] != "v" || g.Target != "final" || g.NetworkMode != "host" ||
					strings.Join(g.Limits.ExtraHosts, ",") != "db:10.0.0.2" || g.Limits.ShmSize != 1<<20 || g.Limits.Memory != 8<<20 || g.Limits.CPUSetCPUs != "0" {
					t.Errorf("options: %+v body %q", g, fb.body)
				}
			}
		})
	}
}

func TestBuildRegistryConfig(t *testing.T) {
	fb := &fakeBuilder{}
	ts := serveBuild(t, fb)
	hdr := base64.URLEncoding.EncodeToString([]byte(`{"127.0.0.1:5000":{"username":"u","password":"p"},"https://index.docker.io/v1/":{"identitytoken":"tok"}}`))
	req, _ := http.NewRequest("POST", ts.URL+"/build", strings.NewReader(""))
	req.Header.Set("X-Registry-Config", hdr)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if r := fb.got.Registries; resp.StatusCode != 200 || r["127.0.0.1:5000"].Password != "p" || r["https://index.docker.io/v1/"].IdentityToken != "tok" {
		t.Errorf("%d registries %+v", resp.StatusCode, r)
	}
	req, _ = http.NewRequest("POST", ts.URL+"/build", strings.NewReader(""))
	req.Header.Set("X-Registry-Config", "!!not base64")
	resp, err = ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("bad X-Registry-Config: %d", resp.StatusCode)
	}
}

func TestBuildPrune(t *testing.T) {
	ts := serveBuild(t, &fakeBuilder{})
	resp, b := call(t, ts, "POST", "/build/prune", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"SpaceReclaimed":42`) {
		t.Errorf("%d %s", resp.StatusCode, b)
	}
	// Without a builder (the daemon has none): nothing freed, no error.
	ts = serve(t, newFake())
	resp, b = call(t, ts, "POST", "/build/prune", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"SpaceReclaimed":0`) {
		t.Errorf("no builder: %d %s", resp.StatusCode, b)
	}
}
