package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkRequest measures the API layer's own cost per request (version
// gate, routing, request log, JSON encoding) over the fake backend,
// without a network: what berth adds on top of the Engine call.
func BenchmarkRequest(b *testing.B) {
	f := newFake()
	srv := New(Config{Backend: Backend{Images: f, System: f, Containers: f, Exec: f}})
	h := srv.Handler()
	for _, path := range []string{"/_ping", "/v1.50/containers/web/json"} {
		b.Run(path, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
