package api

import (
	"context"
	"net/http"
)

// routes registers every route. Anything else is docker's 404 "page not
// found" (also a known path with a method it does not take).
func (s *Server) routes() {
	s.systemRoutes()
	s.imageRoutes()
	s.containerRoutes()
	s.execRoutes()
	s.handle("/", func(context.Context, http.ResponseWriter, *http.Request) error { return notFoundRoute() })
}
