package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/volume"

	"github.com/berth-dev/berth/internal/daemon"
	"github.com/berth-dev/berth/internal/errdefs"
)

// volFake is an in-memory volumeBackend that records its calls, so a
// refused request can be shown to have reached nothing.
type volFake struct {
	mu    sync.Mutex
	calls []string
	vols  map[string]bool // name → in use
}

func (f *volFake) record(c string) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
}

func (f *volFake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func filterString(fl daemon.Filters) string {
	var parts []string
	for k, vs := range fl {
		for _, v := range vs {
			parts = append(parts, k+"="+v)
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (f *volFake) VolumeList(_ context.Context, fl daemon.Filters) (volume.ListResponse, error) {
	f.record("list " + filterString(fl))
	return volume.ListResponse{}, nil
}

func (f *volFake) VolumeInspect(_ context.Context, name string) (volume.Volume, error) {
	f.record("inspect " + name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.vols[name]; !ok {
		return volume.Volume{}, fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
	}
	return volume.Volume{Name: name, Driver: "local", Scope: "local"}, nil
}

func (f *volFake) VolumeCreate(_ context.Context, req volume.CreateRequest) (volume.Volume, error) {
	f.record("create " + req.Name + " " + req.Driver)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vols[req.Name] = false
	return volume.Volume{Name: req.Name, Driver: "local", Scope: "local", Labels: req.Labels}, nil
}

func (f *volFake) VolumeRemove(_ context.Context, name string, force bool) error {
	f.record(fmt.Sprintf("remove %s %v", name, force))
	f.mu.Lock()
	defer f.mu.Unlock()
	used, ok := f.vols[name]
	switch {
	case !ok:
		return fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
	case used:
		return fmt.Errorf("remove %s: volume is in use - [abc]: %w", name, errdefs.ErrConflict)
	}
	delete(f.vols, name)
	return nil
}

func (f *volFake) VolumesPrune(_ context.Context, fl daemon.Filters) (volume.PruneReport, error) {
	f.record("prune " + filterString(fl))
	return volume.PruneReport{}, nil
}

func serveVolumes(t *testing.T, vf *volFake) *httptest.Server {
	t.Helper()
	f := newFake()
	srv := New(Config{Backend: Backend{Images: f, System: f, Containers: f, Exec: f, Volumes: vf}})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { srv.StopStreams(); ts.Close() })
	return ts
}

func TestVolumeRoutes(t *testing.T) {
	vf := &volFake{vols: map[string]bool{"busy": true, "free": false}}
	ts := serveVolumes(t, vf)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		call                     string // "" when the backend must not be reached
		inBody                   string
	}{
		{"list", "GET", "/volumes", "", 200, "list ", `"Volumes":[]`},
		{"list trailing slash", "GET", "/v1.50/volumes/", "", 200, "list ", `"Volumes":[]`},
		{"list filters", "GET", `/volumes?filters={"dangling":{"true":true},"name":{"da":true}}`, "", 200, "list dangling=true,name=da", ""},
		{"list bad filters", "GET", "/volumes?filters=nope", "", 400, "", ""},
		{"create", "POST", "/volumes/create", `{"Name":"v1","Driver":"local","Labels":{"a":"b"}}`, 201, "create v1 local", `"Labels":{"a":"b"}`},
		{"create no body", "POST", "/volumes/create", "", 201, "create  ", ""},
		{"create bad JSON", "POST", "/volumes/create", `{"Name":`, 400, "", "invalid JSON"},
		{"create trailing data", "POST", "/volumes/create", `{"Name":"a"} {}`, 400, "", "invalid JSON"},
		{"create wrong field type", "POST", "/volumes/create", `{"Labels":"x"}`, 400, "", "invalid JSON"},
		{"inspect", "GET", "/volumes/free", "", 200, "inspect free", `"Scope":"local"`},
		{"inspect missing", "GET", "/volumes/nope", "", 404, "inspect nope", "get nope: no such volume"},
		{"remove", "DELETE", "/volumes/free", "", 204, "remove free false", ""},
		{"remove in use", "DELETE", "/volumes/busy?force=1", "", 409, "remove busy true", "remove busy: volume is in use - [abc]"},
		{"remove bad force", "DELETE", "/volumes/busy?force=maybe", "", 400, "", "force"},
		{"prune", "POST", `/volumes/prune?filters={"label":{"a":true}}`, "", 200, "prune label=a", `"VolumesDeleted":[]`},
		// API 1.41 and older pruned named volumes too.
		{"prune old API", "POST", "/v1.41/volumes/prune", "", 200, "prune all=true", ""},
		{"prune old API keeps all", "POST", `/v1.41/volumes/prune?filters={"all":{"false":true}}`, "", 200, "prune all=false", ""},
		{"update is swarm's", "PUT", "/volumes/free?version=1", "{}", 503, "", "swarm is unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(vf.Calls())
			var body *strings.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			var resp, b = callBody(t, ts, tc.method, tc.path, body)
			if resp != tc.status {
				t.Fatalf("status %d, want %d: %s", resp, tc.status, b)
			}
			if tc.inBody != "" && !strings.Contains(string(b), tc.inBody) {
				t.Fatalf("body %s lacks %q", b, tc.inBody)
			}
			calls := vf.Calls()[before:]
			switch {
			case tc.call == "" && len(calls) > 0:
				t.Fatalf("refused request reached the backend: %v", calls)
			case tc.call != "" && (len(calls) != 1 || calls[0] != tc.call):
				t.Fatalf("calls %q, want %q", calls, tc.call)
			}
		})
	}
}

// callBody is call with a body that may be nil (no body at all).
func callBody(t *testing.T, ts *httptest.Server, method, path string, body *strings.Reader) (int, []byte) {
	t.Helper()
	if body == nil {
		resp, b := call(t, ts, method, path, nil)
		return resp.StatusCode, b
	}
	resp, b := call(t, ts, method, path, body)
	return resp.StatusCode, b
}

func TestVolumesWithoutBackendAre501(t *testing.T) {
	ts := serve(t, newFake())
	resp, b := call(t, ts, "GET", "/volumes", nil)
	if resp.StatusCode != 501 || !strings.Contains(errorMessage(t, b), "volumes: not supported") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var e struct{ Message string }
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
}
