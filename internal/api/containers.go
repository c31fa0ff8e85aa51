package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
)

// containerBackend is the container side of the Engine. The container
// engineer implements it; until then the routes answer 501 and handler
// tests use fakeBackend. Every method takes the container by ID, ID
// prefix or name, and is safe for concurrent use. Errors carry errdefs
// classes: ErrNotFound ("No such container: x"), ErrConflict (a name in
// use, removing a running container without force), ErrNotModified
// (start of a started or stop of a stopped container: 304),
// ErrInvalidArgument (bad config, unknown signal).
//
// The option structs are declared here, beside the interface, because
// internal/daemon may not import this package; the Engine's methods can
// take them as they are through a small adapter, or the daemon can
// declare its own and this interface switch to them.
type containerBackend interface {
	ContainerCreate(ctx context.Context, opts CreateOptions) (container.CreateResponse, error)
	ContainerStart(ctx context.Context, id string) error
	ContainerStop(ctx context.Context, id string, opts StopOptions) error
	ContainerRestart(ctx context.Context, id string, opts StopOptions) error
	// ContainerKill sends signal (a name such as "SIGTERM" or "TERM", or a
	// number; "" is SIGKILL).
	ContainerKill(ctx context.Context, id, signal string) error
	ContainerPause(ctx context.Context, id string) error
	ContainerUnpause(ctx context.Context, id string) error
	// ContainerWait checks the container and registers the wait before
	// returning (the docker CLI waits for next-exit before it starts a
	// container, and must not miss a fast exit); the channel then yields
	// one response when the condition is met, and is closed if ctx ends.
	ContainerWait(ctx context.Context, id string, cond container.WaitCondition) (<-chan container.WaitResponse, error)
	ContainerRemove(ctx context.Context, id string, opts RemoveOptions) error
	ContainerRename(ctx context.Context, id, newName string) error
	ContainerUpdate(ctx context.Context, id string, cfg container.UpdateConfig) (container.UpdateResponse, error)
	ContainerTop(ctx context.Context, id, psArgs string) (container.TopResponse, error)
	ContainerInspect(ctx context.Context, id string, size bool) (container.InspectResponse, error)
	ContainerList(ctx context.Context, opts ListOptions) ([]container.Summary, error)
	// ContainerLogs returns the log lines; Messages is closed at the end
	// (at once without Follow; when the container stops, or ctx ends,
	// with it).
	ContainerLogs(ctx context.Context, id string, opts LogsOptions) (LogsResult, error)
	// ContainerAttach checks the container, then calls opts.Streams once
	// with its tty mode to get the client's streams, and returns when the
	// attach ends (the container's output closed, or detach).
	ContainerAttach(ctx context.Context, id string, opts AttachOptions) error
	ContainerResize(ctx context.Context, id string, height, width uint) error
	// ContainerStats yields samples (one without Stream), closing the
	// channel at the end or when ctx ends.
	ContainerStats(ctx context.Context, id string, opts StatsOptions) (<-chan container.StatsResponse, error)
	ContainerChanges(ctx context.Context, id string) ([]container.FilesystemChange, error)
	// ContainerExport writes the container's filesystem as a tar to out;
	// nothing is written before the container is found.
	ContainerExport(ctx context.Context, id string, out io.Writer) error
	ContainerStatPath(ctx context.Context, id, path string) (container.PathStat, error)
	// ContainerArchive returns a tar of path; the caller closes it.
	ContainerArchive(ctx context.Context, id, path string) (io.ReadCloser, container.PathStat, error)
	ContainerExtract(ctx context.Context, id, path string, opts ExtractOptions, tar io.Reader) error
	ContainerCommit(ctx context.Context, opts CommitOptions) (container.CommitResponse, error)
	ContainersPrune(ctx context.Context, filters map[string][]string) (container.PruneReport, error)
}

// CreateOptions are POST /containers/create's.
type CreateOptions struct {
	Name     string // "" lets the engine choose
	Platform string
	Request  container.CreateRequest
}

// StopOptions are stop's and restart's: the signal (the container's stop
// signal when empty) and seconds to wait before SIGKILL (nil: the
// container's stop timeout; -1: wait forever).
type StopOptions struct {
	Signal  string
	Timeout *int
}

// RemoveOptions are DELETE /containers/{id}'s.
type RemoveOptions struct {
	Force, RemoveVolumes, RemoveLink bool
}

// ListOptions are GET /containers/json's.
type ListOptions struct {
	All     bool
	Limit   int // <= 0: no limit
	Size    bool
	Filters map[string][]string
}

// LogsOptions select log lines.
type LogsOptions struct {
	Follow, Stdout, Stderr, Timestamps, Details bool
	Since, Until                                time.Time // zero: unbounded
	Tail                                        string    // "all" or a number of lines
}

// LogsResult is a container's log stream.
type LogsResult struct {
	// Tty says the container has a terminal: output is sent raw, without
	// the stdout/stderr framing.
	Tty      bool
	Messages <-chan LogMessage
}

// LogMessage is one line (or chunk) of output.
type LogMessage struct {
	Stream string // "stdout" or "stderr"
	Line   []byte
	Time   time.Time
	Attrs  map[string]string // with Details
	// Err ends the stream with an error in band.
	Err error
}

// AttachOptions are POST /containers/{id}/attach's.
type AttachOptions struct {
	Stdin, Stdout, Stderr, Stream, Logs bool
	DetachKeys                          string
	// Streams takes the connection over and returns the client's end.
	// tty selects raw output instead of the multiplexed framing.
	Streams func(tty bool) (Streams, error)
}

// Streams are a hijacked client's stdio. Stdin is nil unless asked for;
// Stdout and Stderr are nil unless asked for (and, with a tty, Stderr is
// Stdout). Close ends the session (half-closing output first).
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Close          func()
}

// StatsOptions are GET /containers/{id}/stats's.
type StatsOptions struct {
	Stream, OneShot bool
}

// ExtractOptions are PUT /containers/{id}/archive's.
type ExtractOptions struct {
	NoOverwriteDirNonDir, CopyUIDGID bool
}

// CommitOptions are POST /commit's.
type CommitOptions struct {
	Container, Reference, Comment, Author string
	Pause                                 bool
	Changes                               []string
	Config                                *container.Config
}

func (s *Server) containerRoutes() {
	c := s.needContainers
	s.handle("POST /containers/create", c(s.containerCreate))
	s.handle("GET /containers/json", c(s.containerList))
	s.handle("POST /containers/prune", c(s.containersPrune))
	s.handle("GET /containers/{id}/json", c(s.containerInspect))
	s.handle("POST /containers/{id}/start", c(s.containerStart))
	s.handle("POST /containers/{id}/stop", c(s.containerStop))
	s.handle("POST /containers/{id}/restart", c(s.containerRestart))
	s.handle("POST /containers/{id}/kill", c(s.containerKill))
	s.handle("POST /containers/{id}/pause", c(s.containerPause))
	s.handle("POST /containers/{id}/unpause", c(s.containerUnpause))
	s.handle("POST /containers/{id}/wait", c(s.containerWait))
	s.handle("DELETE /containers/{id}", c(s.containerRemove))
	s.handle("POST /containers/{id}/rename", c(s.containerRename))
	s.handle("POST /containers/{id}/update", c(s.containerUpdate))
	s.handle("GET /containers/{id}/top", c(s.containerTop))
	s.handle("GET /containers/{id}/logs", c(s.containerLogs))
	s.handle("POST /containers/{id}/attach", c(s.containerAttach))
	s.handle("POST /containers/{id}/resize", c(s.containerResize))
	s.handle("GET /containers/{id}/stats", c(s.containerStats))
	s.handle("GET /containers/{id}/changes", c(s.containerChanges))
	s.handle("GET /containers/{id}/export", c(s.containerExport))
	s.handle("GET /containers/{id}/archive", c(s.containerArchive))
	s.handle("HEAD /containers/{id}/archive", c(s.containerStatPath))
	s.handle("PUT /containers/{id}/archive", c(s.containerExtract))
	s.handle("POST /commit", c(s.containerCommit))
}

var errNoContainers = fmt.Errorf("containers are not supported by this daemon yet: %w", errdefs.ErrNotImplemented)

func (s *Server) needContainers(h handlerFunc) handlerFunc {
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		if s.b.Containers == nil {
			return errNoContainers
		}
		return h(ctx, w, r)
	}
}

// validName is docker's rule for container names.
var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func (s *Server) containerCreate(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	name := r.URL.Query().Get("name")
	if name != "" && !validName.MatchString(name) {
		return fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalidArgument) //nolint:staticcheck // docker's words
	}
	var req container.CreateRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	if req.Config == nil {
		return fmt.Errorf("config cannot be empty in order to create a container: %w", errdefs.ErrInvalidArgument)
	}
	res, err := s.b.Containers.ContainerCreate(ctx, CreateOptions{Name: strings.TrimPrefix(name, "/"), Platform: r.URL.Query().Get("platform"), Request: req})
	if err != nil {
		return err
	}
	if res.Warnings == nil {
		res.Warnings = []string{}
	}
	return writeJSON(w, http.StatusCreated, res)
}

func (s *Server) containerList(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	all, err := boolQuery(r, "all")
	if err != nil {
		return err
	}
	size, err := boolQuery(r, "size")
	if err != nil {
		return err
	}
	limit, err := intQuery(r, "limit", -1)
	if err != nil {
		return err
	}
	f, err := filtersQuery(r)
	if err != nil {
		return err
	}
	for _, k := range []string{"before", "since"} {
		if v := r.URL.Query().Get(k); v != "" {
			f[k] = append(f[k], v)
		}
	}
	list, err := s.b.Containers.ContainerList(ctx, ListOptions{All: all, Limit: limit, Size: size, Filters: f})
	if err != nil {
		return err
	}
	if list == nil {
		list = []container.Summary{}
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) containersPrune(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	f, err := filtersQuery(r)
	if err != nil {
		return err
	}
	rep, err := s.b.Containers.ContainersPrune(ctx, f)
	if err != nil {
		return err
	}
	if rep.ContainersDeleted == nil {
		rep.ContainersDeleted = []string{}
	}
	return writeJSON(w, http.StatusOK, rep)
}

func (s *Server) containerInspect(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	size, err := boolQuery(r, "size")
	if err != nil {
		return err
	}
	res, err := s.b.Containers.ContainerInspect(ctx, r.PathValue("id"), size)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

func noContent(w http.ResponseWriter, err error) error {
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerStart(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	// API < 1.24 allowed a HostConfig body here; docker refuses it since,
	// and so do we rather than ignore settings the client meant.
	if r.ContentLength > 0 {
		var body map[string]any
		if err := decodeJSON(r, &body, false); err != nil {
			return err
		}
		if len(body) > 0 {
			return fmt.Errorf("starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24: %w", errdefs.ErrInvalidArgument)
		}
	}
	return noContent(w, s.b.Containers.ContainerStart(ctx, r.PathValue("id")))
}

func stopOptions(r *http.Request) (StopOptions, error) {
	t, err := optIntQuery(r, "t")
	if err != nil {
		return StopOptions{}, err
	}
	return StopOptions{Signal: r.URL.Query().Get("signal"), Timeout: t}, nil
}

func (s *Server) containerStop(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	opts, err := stopOptions(r)
	if err != nil {
		return err
	}
	return noContent(w, s.b.Containers.ContainerStop(ctx, r.PathValue("id"), opts))
}

func (s *Server) containerRestart(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	opts, err := stopOptions(r)
	if err != nil {
		return err
	}
	return noContent(w, s.b.Containers.ContainerRestart(ctx, r.PathValue("id"), opts))
}

func (s *Server) containerKill(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	return noContent(w, s.b.Containers.ContainerKill(ctx, r.PathValue("id"), r.URL.Query().Get("signal")))
}

func (s *Server) containerPause(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	return noContent(w, s.b.Containers.ContainerPause(ctx, r.PathValue("id")))
}

func (s *Server) containerUnpause(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	return noContent(w, s.b.Containers.ContainerUnpause(ctx, r.PathValue("id")))
}

// containerWait answers 200 at once, once the wait is registered, and the
// body when the condition is met: the docker CLI's `run` starts the
// container only after this response began.
func (s *Server) containerWait(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	cond := container.WaitCondition(r.URL.Query().Get("condition"))
	switch cond {
	case "":
		cond = container.WaitConditionNotRunning
	case container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return fmt.Errorf("invalid condition: %q: %w", cond, errdefs.ErrInvalidArgument)
	}
	ch, err := s.b.Containers.ContainerWait(ctx, r.PathValue("id"), cond)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush(w)
	select {
	case res, ok := <-ch:
		if !ok {
			return nil
		}
		return json.NewEncoder(w).Encode(res)
	case <-ctx.Done():
		return nil
	case <-s.streamsDone:
		return nil
	}
}

func (s *Server) containerRemove(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var opts RemoveOptions
	var err error
	if opts.Force, err = boolQuery(r, "force"); err != nil {
		return err
	}
	if opts.RemoveVolumes, err = boolQuery(r, "v"); err != nil {
		return err
	}
	if opts.RemoveLink, err = boolQuery(r, "link"); err != nil {
		return err
	}
	return noContent(w, s.b.Containers.ContainerRemove(ctx, r.PathValue("id"), opts))
}

func (s *Server) containerRename(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	name := r.URL.Query().Get("name")
	if name == "" || !validName.MatchString(name) {
		return fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalidArgument) //nolint:staticcheck // docker's words
	}
	return noContent(w, s.b.Containers.ContainerRename(ctx, r.PathValue("id"), strings.TrimPrefix(name, "/")))
}

func (s *Server) containerUpdate(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var cfg container.UpdateConfig
	if err := decodeJSON(r, &cfg, true); err != nil {
		return err
	}
	res, err := s.b.Containers.ContainerUpdate(ctx, r.PathValue("id"), cfg)
	if err != nil {
		return err
	}
	if res.Warnings == nil {
		res.Warnings = []string{}
	}
	return writeJSON(w, http.StatusOK, res)
}

func (s *Server) containerTop(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	res, err := s.b.Containers.ContainerTop(ctx, r.PathValue("id"), r.URL.Query().Get("ps_args"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

func (s *Server) containerLogs(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var opts LogsOptions
	var err error
	for key, dst := range map[string]*bool{"follow": &opts.Follow, "stdout": &opts.Stdout, "stderr": &opts.Stderr, "timestamps": &opts.Timestamps, "details": &opts.Details} {
		if *dst, err = boolQuery(r, key); err != nil {
			return err
		}
	}
	if !opts.Stdout && !opts.Stderr {
		return fmt.Errorf("Bad parameters: you must choose at least one stream: %w", errdefs.ErrInvalidArgument) //nolint:staticcheck // docker's words
	}
	if opts.Since, err = parseEventTime("since", r.URL.Query().Get("since")); err != nil {
		return err
	}
	if opts.Until, err = parseEventTime("until", r.URL.Query().Get("until")); err != nil {
		return err
	}
	opts.Tail = r.URL.Query().Get("tail")
	if opts.Tail == "" {
		opts.Tail = "all"
	}
	if opts.Tail != "all" {
		if _, err := intQuery(r, "tail", 0); err != nil {
			return err
		}
	}
	res, err := s.b.Containers.ContainerLogs(ctx, r.PathValue("id"), opts)
	if err != nil {
		return err
	}
	contentType := "application/vnd.docker.raw-stream"
	if !res.Tty && versionAtLeast(ctx, "1.42") {
		contentType = "application/vnd.docker.multiplexed-stream"
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	flush(w)
	stdout, stderr := io.Writer(w), io.Writer(w)
	if !res.Tty {
		stdout, stderr = NewMuxWriters(w)
	}
	for {
		var m LogMessage
		var ok bool
		select {
		case m, ok = <-res.Messages:
		case <-s.streamsDone:
			return nil
		}
		if !ok {
			return nil
		}
		if m.Err != nil {
			log.From(ctx).Warn("logs: stream ended with an error", log.KeyErr, m.Err)
			return nil
		}
		out := stdout
		if m.Stream == "stderr" {
			out = stderr
		}
		line := m.Line
		if opts.Details && len(m.Attrs) > 0 {
			line = append([]byte(formatAttrs(m.Attrs)+" "), line...)
		}
		if opts.Timestamps {
			line = append([]byte(m.Time.UTC().Format(time.RFC3339Nano)+" "), line...)
		}
		if _, err := out.Write(line); err != nil {
			return nil // the client went away
		}
		if res.Tty {
			flush(w)
		}
	}
}

func formatAttrs(a map[string]string) string {
	var parts []string
	for k, v := range a {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

// attachStreams hijacks the connection and hands the backend the client's
// end, in the framing the container's tty mode asks for.
func attachStreams(ctx context.Context, w http.ResponseWriter, r *http.Request, stdin, stdout, stderr bool, tty bool) (Streams, error) {
	conn, in, err := hijack(ctx, w, r, !tty)
	if err != nil {
		return Streams{}, err
	}
	st := Streams{Close: func() { closeWrite(conn); conn.Close() }}
	if stdin {
		st.Stdin = in
	}
	o, e := io.Writer(conn), io.Writer(conn)
	if !tty {
		o, e = NewMuxWriters(conn)
	}
	if stdout {
		st.Stdout = o
	}
	if stderr {
		st.Stderr = e
	}
	return st, nil
}

func (s *Server) containerAttach(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var opts AttachOptions
	var err error
	for key, dst := range map[string]*bool{"stdin": &opts.Stdin, "stdout": &opts.Stdout, "stderr": &opts.Stderr, "stream": &opts.Stream, "logs": &opts.Logs} {
		if *dst, err = boolQuery(r, key); err != nil {
			return err
		}
	}
	opts.DetachKeys = r.URL.Query().Get("detachKeys")
	sess := s.newSession()
	opts.Streams = func(tty bool) (Streams, error) {
		return sess.open(ctx, w, r, opts.Stdin, opts.Stdout, opts.Stderr, tty)
	}
	err = s.b.Containers.ContainerAttach(ctx, r.PathValue("id"), opts)
	sess.close()
	return err
}

// session is a hijacked connection a backend asked for through a Streams
// callback, which it may call from any goroutine; mu guards closeFn. Open
// sessions are registered with the server so StopStreams can end them.
type session struct {
	srv     *Server
	mu      sync.Mutex
	closeFn func()
}

func (s *Server) newSession() *session { return &session{srv: s} }

func (s *session) open(ctx context.Context, w http.ResponseWriter, r *http.Request, stdin, stdout, stderr, tty bool) (Streams, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeFn != nil {
		return Streams{}, fmt.Errorf("streams asked for twice: %w", errdefs.ErrConflict)
	}
	st, err := attachStreams(ctx, w, r, stdin, stdout, stderr, tty)
	if err != nil {
		return st, err
	}
	var once sync.Once
	closeConn := st.Close
	st.Close = func() { once.Do(closeConn) }
	s.closeFn = st.Close
	s.srv.track(s, true)
	return st, nil
}

// close ends the session, if one was opened; it reports whether one was.
func (s *session) close() bool {
	s.mu.Lock()
	fn := s.closeFn
	s.mu.Unlock()
	if fn == nil {
		return false
	}
	fn()
	s.srv.track(s, false)
	return true
}

func resizeQuery(r *http.Request) (uint, uint, error) {
	h, err := intQuery(r, "h", 0)
	if err != nil {
		return 0, 0, err
	}
	wd, err := intQuery(r, "w", 0)
	if err != nil {
		return 0, 0, err
	}
	if h < 0 || wd < 0 {
		return 0, 0, fmt.Errorf("invalid terminal size %dx%d: %w", h, wd, errdefs.ErrInvalidArgument)
	}
	return uint(h), uint(wd), nil
}

func (s *Server) containerResize(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	h, wd, err := resizeQuery(r)
	if err != nil {
		return err
	}
	if err := s.b.Containers.ContainerResize(ctx, r.PathValue("id"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) containerStats(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	opts := StatsOptions{Stream: true}
	if r.URL.Query().Has("stream") {
		v, err := boolQuery(r, "stream")
		if err != nil {
			return err
		}
		opts.Stream = v
	}
	oneShot, err := boolQuery(r, "one-shot")
	if err != nil {
		return err
	}
	if oneShot && opts.Stream {
		return fmt.Errorf("cannot have stream=true and one-shot=true: %w", errdefs.ErrInvalidArgument)
	}
	opts.OneShot = oneShot
	ch, err := s.b.Containers.ContainerStats(ctx, r.PathValue("id"), opts)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for {
		var st container.StatsResponse
		var ok bool
		select {
		case st, ok = <-ch:
		case <-s.streamsDone:
			return nil
		}
		if !ok {
			return nil
		}
		if err := enc.Encode(st); err != nil {
			return nil
		}
		flush(w)
		if !opts.Stream {
			return nil
		}
	}
}

func (s *Server) containerChanges(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	ch, err := s.b.Containers.ContainerChanges(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if ch == nil {
		ch = []container.FilesystemChange{}
	}
	return writeJSON(w, http.StatusOK, ch)
}

func (s *Server) containerExport(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/x-tar")
	return s.b.Containers.ContainerExport(ctx, r.PathValue("id"), w)
}

func archivePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", fmt.Errorf("path cannot be empty: %w", errdefs.ErrInvalidArgument)
	}
	return p, nil
}

// setPathStat sets the header docker's cp reads the source's stat from.
func setPathStat(w http.ResponseWriter, st container.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	w.Header().Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(b))
	return nil
}

func (s *Server) containerStatPath(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	st, err := s.b.Containers.ContainerStatPath(ctx, r.PathValue("id"), p)
	if err != nil {
		return err
	}
	if err := setPathStat(w, st); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) containerArchive(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	rc, st, err := s.b.Containers.ContainerArchive(ctx, r.PathValue("id"), p)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := setPathStat(w, st); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil && !errors.Is(err, context.Canceled) {
		log.From(ctx).Warn("archive: copy to client", log.KeyErr, err)
	}
	return nil
}

func (s *Server) containerExtract(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	var opts ExtractOptions
	if opts.NoOverwriteDirNonDir, err = boolQuery(r, "noOverwriteDirNonDir"); err != nil {
		return err
	}
	if opts.CopyUIDGID, err = boolQuery(r, "copyUIDGID"); err != nil {
		return err
	}
	if err := s.b.Containers.ContainerExtract(ctx, r.PathValue("id"), p, opts, r.Body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) containerCommit(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	opts := CommitOptions{Container: q.Get("container"), Comment: q.Get("comment"), Author: q.Get("author"), Changes: q["changes"]}
	if opts.Container == "" {
		return fmt.Errorf("container is required: %w", errdefs.ErrInvalidArgument)
	}
	if repo := q.Get("repo"); repo != "" {
		opts.Reference = repo
		if tag := q.Get("tag"); tag != "" {
			opts.Reference += ":" + tag
		}
	}
	opts.Pause = true
	if q.Has("pause") {
		p, err := boolQuery(r, "pause")
		if err != nil {
			return err
		}
		opts.Pause = p
	}
	var cfg container.Config
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &cfg, false); err != nil {
			return err
		}
		opts.Config = &cfg
	}
	res, err := s.b.Containers.ContainerCommit(ctx, opts)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, res)
}
