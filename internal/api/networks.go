package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/daemon"
	"github.com/berth-dev/berth/internal/errdefs"
)

// networkBackend is the Engine's networking: bridge networks and the
// predefined host and none. Every method takes the network by ID, ID
// prefix or name, and the container (connect, disconnect) by ID, prefix
// or name; all are safe for concurrent use. Errors carry errdefs classes
// in docker's words: ErrNotFound ("network x not found", "No such
// container: x"), ErrConflict ("network with name x already exists",
// "error while removing network: network x … has active endpoints"),
// ErrForbidden (removing a predefined network, connecting a container
// that shares another's namespace), ErrInvalidArgument (bad options or
// filters), ErrNotImplemented (drivers other than bridge).
type networkBackend interface {
	NetworkList(ctx context.Context, filters daemon.Filters) ([]network.Summary, error)
	NetworkInspect(ctx context.Context, ref string) (network.Inspect, error)
	NetworkCreate(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error)
	NetworkRemove(ctx context.Context, ref string) error
	// NetworksPrune removes the user networks no container uses and
	// returns their names.
	NetworksPrune(ctx context.Context, filters daemon.Filters) ([]string, error)
	NetworkConnect(ctx context.Context, ref string, req network.ConnectRequest) error
	NetworkDisconnect(ctx context.Context, ref string, req network.DisconnectRequest) error
}

func (s *Server) networkRoutes() {
	n := s.needNetworks
	s.handle("GET /networks", n(s.networkList))
	s.handle("GET /networks/{$}", n(s.networkList))
	s.handle("POST /networks/create", n(s.networkCreate))
	s.handle("POST /networks/prune", n(s.networksPrune))
	s.handle("GET /networks/{id}", n(s.networkInspect))
	s.handle("DELETE /networks/{id}", n(s.networkRemove))
	s.handle("POST /networks/{id}/connect", n(s.networkConnect))
	s.handle("POST /networks/{id}/disconnect", n(s.networkDisconnect))
	// `docker rm --link web/db` puts the link's name in the path as it
	// is, slash and all.
	s.handle("DELETE /containers/{parent}/{alias}", s.needContainers(s.linkRemove))
}

// linkRemove is DELETE /containers/{parent}/{alias}: a legacy link's
// removal (?link=1); without link=1 it is the removal of a container of
// that name, which no container has.
func (s *Server) linkRemove(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	r.SetPathValue("id", r.PathValue("parent")+"/"+r.PathValue("alias"))
	return s.containerRemove(ctx, w, r)
}

// errNoNetworks keeps the words of the unsupported areas, so a client
// of a daemon without networking reads the same answer as before.
var errNoNetworks = fmt.Errorf("networks: not supported by this daemon: %w", errdefs.ErrNotImplemented)

func (s *Server) needNetworks(h handlerFunc) handlerFunc {
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		if s.b.Networks == nil {
			return errNoNetworks
		}
		return h(ctx, w, r)
	}
}

func (s *Server) networkList(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	f, err := filtersQuery(r)
	if err != nil {
		return err
	}
	nets, err := s.b.Networks.NetworkList(ctx, daemon.Filters(f))
	if err != nil {
		return err
	}
	if nets == nil {
		nets = []network.Summary{} // docker answers [], never null
	}
	return writeJSON(w, http.StatusOK, nets)
}

func (s *Server) networkInspect(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	// verbose and scope are swarm's: a local network has nothing more to
	// show, and every network here is local.
	if _, err := boolQuery(r, "verbose"); err != nil {
		return err
	}
	if sc := r.URL.Query().Get("scope"); sc != "" && sc != "local" {
		return fmt.Errorf("network %s not found: %w", r.PathValue("id"), errdefs.ErrNotFound)
	}
	res, err := s.b.Networks.NetworkInspect(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

func (s *Server) networkCreate(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var req network.CreateRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	if req.Name == "" {
		return fmt.Errorf("network name is required: %w", errdefs.ErrInvalidArgument)
	}
	res, err := s.b.Networks.NetworkCreate(ctx, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, res)
}

func (s *Server) networkRemove(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	if err := s.b.Networks.NetworkRemove(ctx, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) networksPrune(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	f, err := filtersQuery(r)
	if err != nil {
		return err
	}
	names, err := s.b.Networks.NetworksPrune(ctx, daemon.Filters(f))
	if err != nil {
		return err
	}
	if names == nil {
		names = []string{}
	}
	return writeJSON(w, http.StatusOK, network.PruneReport{NetworksDeleted: names})
}

func (s *Server) networkConnect(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var req network.ConnectRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	if req.Container == "" {
		return fmt.Errorf("no container given to connect: %w", errdefs.ErrInvalidArgument)
	}
	if err := s.b.Networks.NetworkConnect(ctx, r.PathValue("id"), req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) networkDisconnect(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var req network.DisconnectRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	if req.Container == "" {
		return fmt.Errorf("no container given to disconnect: %w", errdefs.ErrInvalidArgument)
	}
	if err := s.b.Networks.NetworkDisconnect(ctx, r.PathValue("id"), req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
