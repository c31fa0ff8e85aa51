package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/daemon"
	"github.com/berth-dev/berth/internal/errdefs"
)

// netFake is an in-memory networkBackend: networks by name, each with the
// containers connected to it. It records calls, so a refused request can
// be shown to have reached nothing.
type netFake struct {
	mu    sync.Mutex
	calls []string
	nets  map[string][]string // name → containers
}

func newNetFake() *netFake {
	return &netFake{nets: map[string][]string{"bridge": nil}}
}

func (f *netFake) record(c string) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
}

func (f *netFake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func fakeNetID(name string) string { return fmt.Sprintf("%064x", len(name)) + name }

func (f *netFake) NetworkList(_ context.Context, fl daemon.Filters) ([]network.Summary, error) {
	f.record("list")
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []network.Summary
	for name := range f.nets {
		if len(fl["name"]) > 0 && !strings.Contains(name, fl["name"][0]) {
			continue
		}
		out = append(out, network.Summary{Network: network.Network{Name: name, ID: fakeNetID(name), Driver: "bridge", Scope: "local"}})
	}
	return out, nil
}

func (f *netFake) NetworkInspect(_ context.Context, ref string) (network.Inspect, error) {
	f.record("inspect " + ref)
	f.mu.Lock()
	defer f.mu.Unlock()
	ctrs, ok := f.nets[ref]
	if !ok {
		return network.Inspect{}, fmt.Errorf("network %s not found: %w", ref, errdefs.ErrNotFound)
	}
	res := network.Inspect{Network: network.Network{Name: ref, ID: fakeNetID(ref), Driver: "bridge", Scope: "local"},
		Containers: map[string]network.EndpointResource{}}
	for _, c := range ctrs {
		res.Containers[c] = network.EndpointResource{Name: c}
	}
	return res, nil
}

func (f *netFake) NetworkCreate(_ context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	f.record("create " + req.Name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.nets[req.Name]; ok {
		return network.CreateResponse{}, fmt.Errorf("network with name %s already exists: %w", req.Name, errdefs.ErrConflict)
	}
	f.nets[req.Name] = nil
	return network.CreateResponse{ID: fakeNetID(req.Name)}, nil
}

func (f *netFake) NetworkRemove(_ context.Context, ref string) error {
	f.record("remove " + ref)
	f.mu.Lock()
	defer f.mu.Unlock()
	ctrs, ok := f.nets[ref]
	switch {
	case !ok:
		return fmt.Errorf("network %s not found: %w", ref, errdefs.ErrNotFound)
	case len(ctrs) > 0:
		return fmt.Errorf("error while removing network: network %s id %s has active endpoints: %w", ref, fakeNetID(ref), errdefs.ErrConflict)
	}
	delete(f.nets, ref)
	return nil
}

func (f *netFake) NetworksPrune(_ context.Context, _ daemon.Filters) ([]string, error) {
	f.record("prune")
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for name, ctrs := range f.nets {
		if name != "bridge" && len(ctrs) == 0 {
			delete(f.nets, name)
			out = append(out, name)
		}
	}
	return out, nil
}

func (f *netFake) NetworkConnect(_ context.Context, ref string, req network.ConnectRequest) error {
	alias := ""
	if req.EndpointConfig != nil {
		alias = strings.Join(req.EndpointConfig.Aliases, ",")
	}
	f.record("connect " + ref + " " + req.Container + " " + alias)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.nets[ref]; !ok {
		return fmt.Errorf("network %s not found: %w", ref, errdefs.ErrNotFound)
	}
	f.nets[ref] = append(f.nets[ref], req.Container)
	return nil
}

func (f *netFake) NetworkDisconnect(_ context.Context, ref string, req network.DisconnectRequest) error {
	f.record(fmt.Sprintf("disconnect %s %s %v", ref, req.Container, req.Force))
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.nets[ref]; !ok {
		return fmt.Errorf("network %s not found: %w", ref, errdefs.ErrNotFound)
	}
	f.nets[ref] = nil
	return nil
}

func serveNetworks(t *testing.T, nf *netFake) *httptest.Server {
	t.Helper()
	f := newFake()
	srv := New(Config{Backend: Backend{Images: f, System: f, Containers: f, Exec: f, Networks: nf}})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { srv.StopStreams(); ts.Close() })
	return ts
}

func TestNetworkRoutes(t *testing.T) {
	nf := newNetFake()
	nf.nets["busy"] = []string{"web"}
	ts := serveNetworks(t, nf)
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string // in the body (the message for errors)
		call                     string // the backend call, "" for none
	}{
		{"list", "GET", "/v1.50/networks", "", 200, `"Name":"bridge"`, "list"},
		{"list trailing slash", "GET", "/networks/", "", 200, `"Name":"bridge"`, "list"},
		{"list filtered to nothing is []", "GET", `/networks?filters={"name":{"nosuch":true}}`, "", 200, "[]", "list"},
		{"list bad filters", "GET", "/networks?filters=nojson", "", 400, "", ""},
		{"inspect", "GET", "/networks/busy", "", 200, `"Containers":{"web":`, "inspect busy"},
		{"inspect missing", "GET", "/networks/nosuch", "", 404, "network nosuch not found", "inspect nosuch"},
		{"inspect swarm scope", "GET", "/networks/busy?scope=swarm", "", 404, "network busy not found", ""},
		{"create", "POST", "/networks/create", `{"Name":"front","Driver":"bridge"}`, 201, `"Id":"`, "create front"},
		{"create again", "POST", "/networks/create", `{"Name":"front"}`, 409, "network with name front already exists", "create front"},
		{"create without name", "POST", "/networks/create", `{"Driver":"bridge"}`, 400, "network name is required", ""},
		{"create without body", "POST", "/networks/create", "", 400, "request body is empty", ""},
		{"create bad json", "POST", "/networks/create", `{"Name":`, 400, "invalid JSON", ""},
		{"remove busy", "DELETE", "/networks/busy", "", 409, "error while removing network: network busy", "remove busy"},
		{"remove missing", "DELETE", "/networks/nosuch", "", 404, "network nosuch not found", "remove nosuch"},
		{"connect", "POST", "/networks/front/connect", `{"Container":"db","EndpointConfig":{"Aliases":["pg"]}}`, 200, "", "connect front db pg"},
		{"connect without container", "POST", "/networks/front/connect", `{}`, 400, "no container given", ""},
		{"connect missing network", "POST", "/networks/nosuch/connect", `{"Container":"db"}`, 404, "network nosuch not found", "connect nosuch db "},
		{"disconnect", "POST", "/networks/front/disconnect", `{"Container":"db","Force":true}`, 200, "", "disconnect front db true"},
		{"remove", "DELETE", "/networks/front", "", 204, "", "remove front"},
		{"prune", "POST", "/networks/prune", "", 200, `{"NetworksDeleted":[]}`, "prune"},
		{"put is not a route", "PUT", "/networks", "", 404, "page not found", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(nf.Calls())
			var body *strings.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			var resp *http.Response
			var b []byte
			if body != nil {
				resp, b = call(t, ts, tc.method, tc.path, body)
			} else {
				resp, b = call(t, ts, tc.method, tc.path, nil)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if tc.status >= 400 {
				if msg := errorMessage(t, b); !strings.Contains(msg, tc.want) {
					t.Errorf("message %q, want %q", msg, tc.want)
				}
			} else if !strings.Contains(string(b), tc.want) {
				t.Errorf("body %s, want %q in it", b, tc.want)
			}
			calls := nf.Calls()[before:]
			switch {
			case tc.call == "" && len(calls) != 0:
				t.Errorf("backend called: %v", calls)
			case tc.call != "" && (len(calls) != 1 || calls[0] != tc.call):
				t.Errorf("backend calls %q, want %q", calls, tc.call)
			}
		})
	}
}

func TestNetworksWithoutBackendAre501(t *testing.T) {
	ts := serve(t, newFake())
	for _, p := range []string{"/v1.50/networks", "/networks/bridge"} {
		resp, b := call(t, ts, "GET", p, nil)
		if resp.StatusCode != 501 || !strings.Contains(errorMessage(t, b), "not supported by this daemon") {
			t.Errorf("GET %s: %d %s", p, resp.StatusCode, b)
		}
	}
}

// TestDockerCLINetworks drives the real docker CLI's network verbs
// against the routes: its requests and its reading of our answers.
func TestDockerCLINetworks(t *testing.T) {
	if _, err := os.Stat(dockerCLIPath); err != nil {
		t.Skipf("needs the docker CLI at %s", dockerCLIPath)
	}
	nf := newNetFake()
	f := newFake()
	srv := New(Config{Backend: Backend{Images: f, System: f, Containers: f, Exec: f, Networks: nf}})
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(l)
	t.Cleanup(func() { srv.StopStreams(); hs.Close() })

	out, errs, code := dockerCLI(t, sock, "", "network", "create", "--label", "a=b", "front")
	if code != 0 || strings.TrimSpace(out) != fakeNetID("front") {
		t.Fatalf("network create: %d %q %q", code, out, errs)
	}
	_, errs, code = dockerCLI(t, sock, "", "network", "create", "front")
	if code == 0 || !strings.Contains(errs, "Error response from daemon: network with name front already exists") {
		t.Errorf("second network create: %d %q", code, errs)
	}
	out, errs, code = dockerCLI(t, sock, "", "network", "ls", "--format", "{{.Name}} {{.Driver}}")
	if code != 0 || !strings.Contains(out, "front bridge") || !strings.Contains(out, "bridge bridge") {
		t.Errorf("network ls: %d %q %q", code, out, errs)
	}
	out, errs, code = dockerCLI(t, sock, "", "network", "inspect", "front")
	var docs []network.Inspect
	if code != 0 || json.Unmarshal([]byte(out), &docs) != nil || len(docs) != 1 || docs[0].Name != "front" {
		t.Errorf("network inspect: %d %q %q", code, out, errs)
	}
	_, errs, code = dockerCLI(t, sock, "", "network", "inspect", "nosuch")
	if code == 0 || !strings.Contains(errs, "nosuch") {
		t.Errorf("network inspect of a missing network: %d %q", code, errs)
	}
	_, errs, code = dockerCLI(t, sock, "", "network", "connect", "--alias", "pg", "front", "db")
	if code != 0 {
		t.Errorf("network connect: %d %q", code, errs)
	}
	_, errs, code = dockerCLI(t, sock, "", "network", "disconnect", "-f", "front", "db")
	if code != 0 {
		t.Errorf("network disconnect: %d %q", code, errs)
	}
	out, errs, code = dockerCLI(t, sock, "", "network", "rm", "front")
	if code != 0 || strings.TrimSpace(out) != "front" {
		t.Errorf("network rm: %d %q %q", code, out, errs)
	}
	want := []string{"create front", "connect front db pg", "disconnect front db true", "remove front"}
	got := strings.Join(nf.Calls(), "|")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("backend calls %s: no %q", got, w)
		}
	}
}
