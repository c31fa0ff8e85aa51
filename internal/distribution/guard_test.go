package distribution

import (
	"errors"
	"net/http"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestPlainHTTPOnlyWhereAllowed checks the guard in front of the transport.
// It never reaches the network: the inner transport is a fake that only
// records, since traffic may go to loopback alone on the test machines.
func TestPlainHTTPOnlyWhereAllowed(t *testing.T) {
	var reached []string
	inner := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		reached = append(reached, r.URL.String())
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
	})
	c := New(Config{Transport: inner, Insecure: []string{"10.0.0.7:5000", "reg.lan"}})
	for _, tc := range []struct {
		url     string
		allowed bool
	}{
		{"http://127.0.0.1:5000/v2/", true},
		{"http://127.9.9.9/v2/", true},
		{"http://localhost:5000/v2/", true},
		{"http://[::1]:5000/v2/", true},
		{"http://10.0.0.7:5000/v2/", true}, // configured insecure
		{"http://reg.lan:8080/v2/", true},  // by host, any port
		{"http://10.0.0.8:5000/v2/", false},
		{"http://192.168.1.1/v2/", false}, // RFC 1918, not configured
		{"http://registry.example.com/v2/", false},
		{"https://registry.example.com/v2/", true},
	} {
		t.Run(tc.url, func(t *testing.T) {
			reached = nil
			req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
			_, err := c.base.RoundTrip(req)
			if tc.allowed && (err != nil || len(reached) != 1) {
				t.Fatalf("allowed request: err %v, reached %v", err, reached)
			}
			if !tc.allowed && (!errors.Is(err, errdefs.ErrForbidden) || len(reached) != 0) {
				t.Fatalf("refused request: err %v, reached %v", err, reached)
			}
		})
	}
}
