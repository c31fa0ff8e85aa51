package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/errdefs"
)

// execBackend runs extra processes in containers. Errors: ErrNotFound
// ("No such exec instance: x" or the container's), ErrConflict (the
// container is not running or paused, or the exec already started).
type execBackend interface {
	ExecCreate(ctx context.Context, containerID string, req container.ExecCreateRequest) (container.ExecCreateResponse, error)
	// ExecStart starts the exec. Detached, it returns once the process
	// runs; otherwise it calls opts.Streams once (when the process is
	// about to start) and returns when the process's output ends.
	ExecStart(ctx context.Context, id string, opts ExecStartOptions) error
	ExecInspect(ctx context.Context, id string) (container.ExecInspectResponse, error)
	ExecResize(ctx context.Context, id string, height, width uint) error
}

// ExecStartOptions are POST /exec/{id}/start's.
type ExecStartOptions struct {
	Detach, Tty bool
	ConsoleSize *[2]uint // height, width
	// Streams takes the connection over (not called when detached).
	Streams func(tty bool) (Streams, error)
}

func (s *Server) execRoutes() {
	e := s.needExec
	s.handle("POST /containers/{id}/exec", e(s.execCreate))
	s.handle("POST /exec/{id}/start", e(s.execStart))
	s.handle("GET /exec/{id}/json", e(s.execInspect))
	s.handle("POST /exec/{id}/resize", e(s.execResize))
}

func (s *Server) needExec(h handlerFunc) handlerFunc {
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		if s.b.Exec == nil {
			return fmt.Errorf("exec is not supported by this daemon yet: %w", errdefs.ErrNotImplemented)
		}
		return h(ctx, w, r)
	}
}

func (s *Server) execCreate(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var req container.ExecCreateRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	if len(req.Cmd) == 0 {
		return fmt.Errorf("No exec command specified: %w", errdefs.ErrInvalidArgument) //nolint:staticcheck // docker's words
	}
	res, err := s.b.Exec.ExecCreate(ctx, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, res)
}

func (s *Server) execStart(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var req container.ExecStartRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	opts := ExecStartOptions{Detach: req.Detach, Tty: req.Tty, ConsoleSize: req.ConsoleSize}
	sess := s.newSession()
	if !req.Detach {
		opts.Streams = func(tty bool) (Streams, error) {
			return sess.open(ctx, w, r, true, true, true, tty)
		}
	}
	err := s.b.Exec.ExecStart(ctx, r.PathValue("id"), opts)
	if sess.close() || err != nil {
		return err
	}
	// Detached: docker answers 200 with no body.
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) execInspect(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	res, err := s.b.Exec.ExecInspect(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

func (s *Server) execResize(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	h, wd, err := resizeQuery(r)
	if err != nil {
		return err
	}
	if err := s.b.Exec.ExecResize(ctx, r.PathValue("id"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
