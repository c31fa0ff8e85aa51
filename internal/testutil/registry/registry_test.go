package registry_test

import (
	"net/http"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/internal/testutil/registry"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// TestStartSeed starts each kind of registry and writes the test image into
// it with skopeo, which exercises the htpasswd and token setups with a
// client that is not ours.
func TestStartSeed(t *testing.T) {
	images := testutil.Images(t)
	for _, tc := range []struct {
		name string
		auth registry.Auth
	}{
		{"anonymous", registry.Anonymous},
		{"basic", registry.Basic},
		{"token", registry.Token},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := registry.Start(t, registry.Options{Auth: tc.auth})
			resp, err := http.Get("http://" + r.Host + "/v2/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := http.StatusOK
			if tc.auth != registry.Anonymous {
				want = http.StatusUnauthorized
			}
			if resp.StatusCode != want {
				t.Fatalf("GET /v2/: status %d, want %d", resp.StatusCode, want)
			}
			r.Seed(t, images.OCILayout, "test/busybox:latest")
			if tc.auth == registry.Token {
				if n, _ := r.TokenServer.Requests(); n == 0 {
					t.Fatal("skopeo got no token from the token server")
				}
			}
		})
	}
}

func TestProxyFaults(t *testing.T) {
	r := registry.Start(t, registry.Options{})
	p := registry.NewProxy(t, r)
	p.Inject(registry.Fault{Path: "/v2/", Times: 1, Status: http.StatusServiceUnavailable})
	for i, want := range []int{http.StatusServiceUnavailable, http.StatusOK} {
		resp, err := http.Get("http://" + p.Host + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("request %d: status %d, want %d", i, resp.StatusCode, want)
		}
	}
	if n := p.Count("GET", "/v2/"); n != 2 {
		t.Fatalf("count %d, want 2", n)
	}
}
