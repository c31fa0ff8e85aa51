package api

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/version"
)

// The API versions served. The docker CLI (28.x speaks 1.50) asks /_ping
// for API-Version and settles on the lower of the two; MinAPIVersion is
// docker 28's own floor. Shapes that changed inside this range are gated
// on the request's version (see system df).
const (
	MaxAPIVersion = "1.51"
	MinAPIVersion = "1.24"
)

// MaxJSONBody caps a JSON request body (container create, exec create,
// update, auth, commit's config). Real ones are a few KiB; the cap stops
// a client from making the daemon buffer gigabytes. Tar bodies (load,
// import, archive PUT) stream to their consumer and are not capped here.
const MaxJSONBody = 4 << 20

// Backend is what the API serves. Images and System are required;
// Containers and Exec may be nil until berth runs containers, and their
// routes then answer 501 Not Implemented.
type Backend struct {
	Images     imageBackend
	System     systemBackend
	Containers containerBackend
	Exec       execBackend
	// Networks may be nil (a daemon without networking): its routes
	// then answer 501.
	Networks networkBackend
	// Volumes may be nil (a daemon without containers): its routes then
	// answer 501.
	Volumes volumeBackend
	// Build may be nil: POST /build then answers 501 and
	// /build/prune frees nothing.
	Build buildBackend
}

// Config configures a Server.
type Config struct {
	Backend Backend
	// Experimental is reported in the Docker-Experimental header.
	Experimental bool
}

// Server routes Docker API requests to the backend. It is safe for
// concurrent use and holds no state between requests.
type Server struct {
	b            Backend
	experimental bool
	mux          *http.ServeMux
	// streamsDone is closed by StopStreams: endless responses (events,
	// follow, wait) end, so a graceful shutdown waits only for requests
	// that finish on their own.
	streamsDone chan struct{}
	stopOnce    sync.Once

	// mu guards sessions: the hijacked attach and exec connections open
	// now, which http.Server.Shutdown no longer sees.
	mu       sync.Mutex
	sessions map[*session]struct{}
}

// New builds a Server and its routes.
func New(cfg Config) *Server {
	s := &Server{b: cfg.Backend, experimental: cfg.Experimental, mux: http.NewServeMux(), streamsDone: make(chan struct{})}
	s.routes()
	return s
}

// StopStreams ends the endless responses (events, logs -f, stats,
// wait) and hijacked sessions (attach, exec) in flight, and any started
// later. Call it when shutting down, e.g. from
// http.Server.RegisterOnShutdown.
func (s *Server) StopStreams() {
	s.stopOnce.Do(func() { close(s.streamsDone) })
	s.mu.Lock()
	open := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		open = append(open, ss)
	}
	s.mu.Unlock()
	for _, ss := range open {
		ss.close()
	}
}

// track adds or removes an open session; a session opened after
// StopStreams is closed at once.
func (s *Server) track(ss *session, open bool) {
	s.mu.Lock()
	if !open {
		delete(s.sessions, ss)
		s.mu.Unlock()
		return
	}
	if s.sessions == nil {
		s.sessions = map[*session]struct{}{}
	}
	s.sessions[ss] = struct{}{}
	s.mu.Unlock()
	select {
	case <-s.streamsDone:
		go ss.close()
	default:
	}
}

// handlerFunc is a route: parse, one backend call, encode. An error
// returned before anything was written becomes docker's error response;
// after that (a stream under way) it can only end the response.
type handlerFunc func(ctx context.Context, w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(pattern string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		err := h(r.Context(), w, r)
		if err == nil {
			return
		}
		if rw, ok := w.(*responseWriter); ok && (rw.status != 0 || rw.hijacked) {
			log.From(r.Context()).Warn("api: error after the response began", log.KeyErr, err)
			return
		}
		if statusFor(err) >= 500 {
			log.From(r.Context()).Error("api: request failed", log.KeyErr, err)
		}
		writeError(w, err)
	})
}

// Handler is the server's http.Handler: version gate, request log and
// panic guard around the routes.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

type ctxKey int

const versionKey ctxKey = iota

// VersionFrom is the API version of the request in ctx (MaxAPIVersion
// when the client named none, as docker does).
func VersionFrom(ctx context.Context) string {
	if v, ok := ctx.Value(versionKey).(string); ok {
		return v
	}
	return MaxAPIVersion
}

var versionPrefix = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`)

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var rnd [6]byte
	rand.Read(rnd[:])
	reqID := hex.EncodeToString(rnd[:])
	ctx := log.With(r.Context(), log.KeyRequest, reqID)
	rw := &responseWriter{ResponseWriter: w}
	apiVersion := MaxAPIVersion
	path := r.URL.Path
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			log.From(ctx).Error("api: handler panicked", "panic", fmt.Sprint(p))
			if rw.status == 0 && !rw.hijacked {
				writeError(rw, fmt.Errorf("internal error: %v", p))
			}
		}
		status := rw.status
		if rw.hijacked {
			status = http.StatusSwitchingProtocols
		}
		log.From(ctx).Info("api request", "method", r.Method, "path", path, "version", apiVersion,
			"status", status, "duration", time.Since(start))
	}()

	h := rw.Header()
	h.Set("Api-Version", MaxAPIVersion)
	h.Set("Docker-Experimental", strconv.FormatBool(s.experimental))
	h.Set("Ostype", "linux")
	h.Set("Server", "berth/"+version.Version+" (linux)")

	if m := versionPrefix.FindStringSubmatch(r.URL.Path); m != nil {
		apiVersion = m[1]
		if compareVersions(apiVersion, MaxAPIVersion) > 0 {
			writeError(rw, fmt.Errorf("client version %s is too new. Maximum supported API version is %s: %w", apiVersion, MaxAPIVersion, errdefs.ErrInvalidArgument))
			return
		}
		if compareVersions(apiVersion, MinAPIVersion) < 0 {
			writeError(rw, fmt.Errorf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version: %w", apiVersion, MinAPIVersion, errdefs.ErrInvalidArgument))
			return
		}
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path = m[2]
		u.RawPath = ""
		if r.URL.RawPath != "" {
			if rm := versionPrefix.FindStringSubmatch(r.URL.RawPath); rm != nil {
				u.RawPath = rm[2]
			}
		}
		r2.URL = &u
		r = r2
	}
	ctx = context.WithValue(ctx, versionKey, apiVersion)
	s.mux.ServeHTTP(rw, r.WithContext(ctx))
}

// compareVersions compares "major.minor" versions numerically (1.9 <
// 1.10): -1, 0 or 1.
func compareVersions(a, b string) int {
	am, an := splitVersion(a)
	bm, bn := splitVersion(b)
	switch {
	case am != bm:
		return cmpInt(am, bm)
	default:
		return cmpInt(an, bn)
	}
}

func splitVersion(v string) (int, int) {
	maj, min, _ := strings.Cut(v, ".")
	a, _ := strconv.Atoi(maj)
	b, _ := strconv.Atoi(min)
	return a, b
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// versionAtLeast reports whether the request speaks v or newer.
func versionAtLeast(ctx context.Context, v string) bool {
	return compareVersions(VersionFrom(ctx), v) >= 0
}

// responseWriter records the status for the request log and whether a
// handler took the connection over.
type responseWriter struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends what is buffered: streams (progress, logs, events) call it
// after each message so the client sees it now.
func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands the connection to the handler (attach, exec start).
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, brw, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
