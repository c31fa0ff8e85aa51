package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/internal/errdefs"
)

// routes registers every route. Anything else is docker's 404 "page not
// found" (also a known path with a method it does not take).
func (s *Server) routes() {
	s.systemRoutes()
	s.imageRoutes()
	s.containerRoutes()
	s.execRoutes()
	s.networkRoutes()
	s.volumeRoutes()
	s.buildRoutes()
	s.unsupportedRoutes()
	s.handle("/", func(context.Context, http.ResponseWriter, *http.Request) error { return notFoundRoute() })
}

// unsupported are Docker API areas berth does not serve (yet). They
// answer 501 with their name rather than 404 "page not found", so a
// client (docker system prune, docker network ls) says what is missing.
// A route registered for one of them later (with a method, or a longer
// path) is more specific and takes precedence.
var unsupported = map[string]string{
	"GET /images/search": "registry search", "/swarm": "swarm mode", "/nodes": "swarm mode", "/services": "swarm mode", "/tasks": "swarm mode",
	"/secrets": "swarm mode", "/configs": "swarm mode", "/plugins": "plugins", "/session": "build sessions",
	"/grpc": "build sessions", "/distribution": "registry inspection",
}

func (s *Server) unsupportedRoutes() {
	for prefix, what := range unsupported {
		h := func(context.Context, http.ResponseWriter, *http.Request) error {
			return fmt.Errorf("%s: not supported by this daemon: %w", what, errdefs.ErrNotImplemented)
		}
		s.handle(prefix, h)
		if prefix[0] == '/' {
			s.handle(prefix+"/", h)
		}
	}
}
