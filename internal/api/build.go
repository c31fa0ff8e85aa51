package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/build"
	"github.com/berth-dev/berth/internal/errdefs"
)

// buildBackend builds images (the daemon's Builder). Build writes its
// progress to opts.Output as it goes, from one goroutine at a time, and
// returns errdefs classes for bad input (ErrInvalidArgument, ErrNotFound
// for a missing base image or source) and a *build.ExitError for a RUN
// that failed. Safe for concurrent use.
type buildBackend interface {
	Build(ctx context.Context, opts build.Options) (build.Result, error)
	BuildPrune(ctx context.Context) (build.PruneResult, error)
}

func (s *Server) buildRoutes() {
	s.handle("POST /build", s.build)
	s.handle("POST /build/prune", s.buildPrune)
}

// buildOptions reads POST /build's query.
func buildOptions(r *http.Request) (build.Options, bool, error) {
	q := r.URL.Query()
	opts := build.Options{
		Dockerfile: q.Get("dockerfile"), Tags: q["t"], Target: q.Get("target"),
		NetworkMode: q.Get("networkmode"), Platform: q.Get("platform"),
	}
	if q.Get("remote") != "" {
		return opts, false, fmt.Errorf("remote build contexts (%s): not supported by this daemon; send the context as a tar: %w", q.Get("remote"), errdefs.ErrNotImplemented)
	}
	if v := q.Get("version"); v == "2" {
		return opts, false, fmt.Errorf("BuildKit builds (version 2): not supported by this daemon; use the legacy builder (DOCKER_BUILDKIT=0): %w", errdefs.ErrNotImplemented)
	}
	var err error
	if squash, err := boolQuery(r, "squash"); err != nil || squash {
		if err == nil {
			err = fmt.Errorf("squash: not supported by this daemon: %w", errdefs.ErrNotImplemented)
		}
		return opts, false, err
	}
	if opts.NoCache, err = boolQuery(r, "nocache"); err != nil {
		return opts, false, err
	}
	if opts.Pull, err = boolQuery(r, "pull"); err != nil {
		return opts, false, err
	}
	quiet, err := boolQuery(r, "q")
	if err != nil {
		return opts, false, err
	}
	// rm and forcerm are taken and ignored: step containers are always
	// removed.
	if v := q.Get("buildargs"); v != "" {
		if err := json.Unmarshal([]byte(v), &opts.BuildArgs); err != nil {
			return opts, false, fmt.Errorf("invalid buildargs: %v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	if v := q.Get("labels"); v != "" {
		if err := json.Unmarshal([]byte(v), &opts.Labels); err != nil {
			return opts, false, fmt.Errorf("invalid labels: %v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	if opts.Limits, err = runLimits(r); err != nil {
		return opts, false, err
	}
	if opts.Registries, err = registryConfig(r); err != nil {
		return opts, false, err
	}
	return opts, quiet, nil
}

// runLimits reads the RUN containers' settings: extrahosts (JSON list
// or repeated), shmsize, memory, memswap, cpushares, cpuperiod,
// cpuquota, cpusetcpus, cpusetmems.
func runLimits(r *http.Request) (build.RunLimits, error) {
	q := r.URL.Query()
	var l build.RunLimits
	for _, h := range q["extrahosts"] {
		var list []string
		if json.Unmarshal([]byte(h), &list) == nil {
			l.ExtraHosts = append(l.ExtraHosts, list...)
		} else if h != "" {
			l.ExtraHosts = append(l.ExtraHosts, h)
		}
	}
	for _, f := range []struct {
		key string
		dst *int64
	}{{"shmsize", &l.ShmSize}, {"memory", &l.Memory}, {"memswap", &l.MemorySwap}, {"cpushares", &l.CPUShares}, {"cpuperiod", &l.CPUPeriod}, {"cpuquota", &l.CPUQuota}} {
		v := q.Get(f.key)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return l, fmt.Errorf("invalid value for %s: %q: want an integer: %w", f.key, v, errdefs.ErrInvalidArgument)
		}
		*f.dst = n
	}
	l.CPUSetCPUs, l.CPUSetMems = q.Get("cpusetcpus"), q.Get("cpusetmems")
	return l, nil
}

// registryConfig reads X-Registry-Config: base64url JSON of registry →
// AuthConfig, every credential the client has (FROM may pull from any).
func registryConfig(r *http.Request) (map[string]build.RegistryAuth, error) {
	h := r.Header.Get("X-Registry-Config")
	if h == "" {
		return nil, nil
	}
	b, err := base64.URLEncoding.DecodeString(h)
	if err != nil {
		// Some clients pad differently or send standard base64.
		if b, err = base64.StdEncoding.DecodeString(h); err != nil {
			return nil, fmt.Errorf("X-Registry-Config: %v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	var cfgs map[string]registry.AuthConfig
	if err := json.Unmarshal(b, &cfgs); err != nil {
		return nil, fmt.Errorf("X-Registry-Config: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	out := make(map[string]build.RegistryAuth, len(cfgs))
	for k, c := range cfgs {
		out[k] = build.RegistryAuth{Username: c.Username, Password: c.Password, IdentityToken: c.IdentityToken, RegistryToken: c.RegistryToken}
	}
	return out, nil
}

// streamWriter turns the builder's text into {"stream": …} messages.
type streamWriter struct{ ps *progressStream }

func (w streamWriter) Write(p []byte) (int, error) {
	w.ps.send(jsonstream.Message{Stream: string(p)})
	return len(p), nil
}

// build is POST /build: the legacy builder's API. The body is the
// context tar; progress streams as JSON messages, the image ID comes as
// {"aux":{"ID":…}}. An error before any progress is a plain error
// response; after, it ends the stream in band, with a RUN's exit code as
// the code (the docker CLI exits with it).
func (s *Server) build(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	if s.b.Build == nil {
		return fmt.Errorf("image builds: not supported by this daemon: %w", errdefs.ErrNotImplemented)
	}
	opts, quiet, err := buildOptions(r)
	if err != nil {
		return err
	}
	ps := newProgressStream(w)
	opts.Context = r.Body
	if !quiet {
		opts.Output = streamWriter{ps}
	}
	opts.Aux = func(id digest.Digest) {
		aux := json.RawMessage(fmt.Sprintf(`{"ID":%q}`, id))
		ps.send(jsonstream.Message{Aux: &aux})
	}
	res, err := s.b.Build.Build(ctx, opts)
	ps.mu.Lock()
	started := ps.started
	ps.mu.Unlock()
	if err != nil {
		if !started {
			return err
		}
		code := 0
		var ee *build.ExitError
		if errors.As(err, &ee) {
			code = ee.Code
		}
		ps.mu.Lock()
		defer ps.mu.Unlock()
		msg := message(err)
		_ = ps.enc.Encode(streamMessage{
			Message:      jsonstream.Message{Error: &jsonstream.Error{Code: code, Message: msg}},
			ErrorMessage: msg,
		})
		flush(w)
		return nil
	}
	if quiet {
		ps.send(jsonstream.Message{Stream: res.ID.String() + "\n"})
	}
	ps.mu.Lock()
	ps.start()
	ps.mu.Unlock()
	return nil
}

// buildPrune is POST /build/prune: the layer cache's images go. docker
// system prune calls it, so a daemon without a builder answers "nothing
// freed" rather than an error.
func (s *Server) buildPrune(ctx context.Context, w http.ResponseWriter, _ *http.Request) error {
	if s.b.Build == nil {
		return writeJSON(w, http.StatusOK, map[string]any{"CachesDeleted": nil, "SpaceReclaimed": 0})
	}
	res, err := s.b.Build.BuildPrune(ctx)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"CachesDeleted": nil, "SpaceReclaimed": res.SpaceReclaimed})
}
