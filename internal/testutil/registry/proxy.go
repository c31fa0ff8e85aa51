package registry

import (
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Action is what a Fault does to a request it matches.
type Action int

const (
	// Status answers with Fault.Status (500 when zero) and an empty body.
	Status Action = iota
	// CloseMidBody sends the headers and half the body, then drops the
	// connection.
	CloseMidBody
	// Corrupt flips one byte in the middle of the body; length and headers
	// stay as the registry sent them.
	Corrupt
	// Replace answers with Fault.Body and Fault.ContentType, status 200.
	Replace
	// Stall sends the headers and half the body, then nothing more until
	// the client gives up (or 30 s pass).
	Stall
)

// Fault makes the proxy misbehave on matching requests.
type Fault struct {
	Method string // "" matches any method
	// Path matches when the request path contains it, e.g. "/blobs/" or
	// "/manifests/latest".
	Path   string
	Action Action
	Times  int // how many matching requests it affects; 0 means all
	Status int

	ContentType string
	Body        []byte
}

// Proxy is a reverse proxy in front of a registry that injects faults.
// Host is what clients use in references instead of the registry's.
type Proxy struct {
	Host string

	mu     sync.Mutex
	faults []*Fault
	log    []string
	ranges []string // the Range header of each request in log
}

// NewProxy starts a proxy to r for the life of t.
func NewProxy(t testing.TB, r *Registry) *Proxy {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: r.Host}
	rp := httputil.NewSingleHostReverseProxy(target)
	// NewSingleHostReverseProxy keeps the client's Host header, so the
	// registry builds upload Location URLs that point back at the proxy.
	// Aborted client requests are the point of some tests; keep them out
	// of the test output.
	rp.ErrorLog = log.New(io.Discard, "", 0)
	p := &Proxy{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p.serve(w, req, rp)
	}))
	t.Cleanup(srv.Close)
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// Inject adds a fault; faults are tried in the order they were added.
func (p *Proxy) Inject(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, &f)
}

// Clear removes every fault.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = nil
}

// Count returns how many requests with method whose path contains path
// went through the proxy (faulted or not).
func (p *Proxy) Count(method, path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.log {
		m, rest, _ := strings.Cut(l, " ")
		if (method == "" || m == method) && strings.Contains(rest, path) {
			n++
		}
	}
	return n
}

// Ranges returns the Range headers of the requests with method whose
// path contains path, in order ("" for a request without one).
func (p *Proxy) Ranges(method, path string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for i, l := range p.log {
		m, rest, _ := strings.Cut(l, " ")
		if (method == "" || m == method) && strings.Contains(rest, path) {
			out = append(out, p.ranges[i])
		}
	}
	return out
}

// ResetCount forgets the requests seen so far.
func (p *Proxy) ResetCount() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log, p.ranges = nil, nil
}

func (p *Proxy) take(req *http.Request) *Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, req.Method+" "+req.URL.Path)
	p.ranges = append(p.ranges, req.Header.Get("Range"))
	for _, f := range p.faults {
		if f.Method != "" && f.Method != req.Method {
			continue
		}
		if !strings.Contains(req.URL.Path, f.Path) {
			continue
		}
		if f.Times < 0 {
			continue // used up
		}
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				f.Times = -1
			}
		}
		c := *f
		return &c
	}
	return nil
}

func (p *Proxy) serve(w http.ResponseWriter, req *http.Request, rp *httputil.ReverseProxy) {
	f := p.take(req)
	if f == nil {
		rp.ServeHTTP(w, req)
		return
	}
	switch f.Action {
	case Status:
		code := f.Status
		if code == 0 {
			code = http.StatusInternalServerError
		}
		w.WriteHeader(code)
		return
	case Replace:
		w.Header().Set("Content-Type", f.ContentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(f.Body)))
		w.WriteHeader(http.StatusOK)
		if req.Method != http.MethodHead {
			_, _ = w.Write(f.Body)
		}
		return
	}

	// CloseMidBody and Corrupt need the registry's answer in full first.
	rec := httptest.NewRecorder()
	rp.ServeHTTP(rec, req)
	resp := rec.Result()
	body, _ := io.ReadAll(resp.Body)
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	// Whole bodies (200) and ranges of them (206) are both fair game.
	code := resp.StatusCode
	if (code != http.StatusOK && code != http.StatusPartialContent) || len(body) == 0 {
		w.WriteHeader(code)
		_, _ = w.Write(body)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	switch f.Action {
	case Corrupt:
		body = bytes.Clone(body)
		body[len(body)/2] ^= 0xff
		w.WriteHeader(code)
		_, _ = w.Write(body)
	case Stall:
		w.WriteHeader(code)
		_, _ = w.Write(body[:len(body)/2])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		select {
		case <-req.Context().Done():
		case <-time.After(30 * time.Second):
		}
		panic(http.ErrAbortHandler)
	case CloseMidBody:
		w.WriteHeader(code)
		_, _ = w.Write(body[:len(body)/2])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		// net/http closes the connection without finishing the response:
		// the client sees fewer bytes than Content-Length promised.
		panic(http.ErrAbortHandler)
	}
}
