package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/moby/moby/api/types/volume"

	"github.com/berth-dev/berth/internal/daemon"
	"github.com/berth-dev/berth/internal/errdefs"
)

// volumeBackend is the Engine's volumes: the local driver's, by name. All
// methods are safe for concurrent use. Errors carry errdefs classes in
// docker's words: ErrNotFound ("get x: no such volume"), ErrConflict
// ("remove x: volume is in use - [ids]"), ErrInvalidArgument (a bad name,
// driver option or filter), ErrNotImplemented (drivers other than local,
// cluster volumes, filesystems berth does not mount).
type volumeBackend interface {
	VolumeList(ctx context.Context, filters daemon.Filters) (volume.ListResponse, error)
	VolumeInspect(ctx context.Context, name string) (volume.Volume, error)
	// VolumeCreate returns the existing volume of that name unchanged.
	VolumeCreate(ctx context.Context, req volume.CreateRequest) (volume.Volume, error)
	// VolumeRemove with force makes a missing volume no error; a volume
	// in use is refused either way.
	VolumeRemove(ctx context.Context, name string, force bool) error
	VolumesPrune(ctx context.Context, filters daemon.Filters) (volume.PruneReport, error)
}

func (s *Server) volumeRoutes() {
	v := s.needVolumes
	s.handle("GET /volumes", v(s.volumeList))
	s.handle("GET /volumes/{$}", v(s.volumeList))
	s.handle("POST /volumes/create", v(s.volumeCreate))
	s.handle("POST /volumes/prune", v(s.volumesPrune))
	s.handle("GET /volumes/{name}", v(s.volumeInspect))
	s.handle("DELETE /volumes/{name}", v(s.volumeRemove))
	// Updating a volume is for cluster volumes only: docker answers so
	// when it is not a swarm manager, and berth never is.
	s.handle("PUT /volumes/{name}", func(context.Context, http.ResponseWriter, *http.Request) error {
		return fmt.Errorf("volume update only valid for cluster volumes, but swarm is unavailable: %w", errdefs.ErrUnavailable)
	})
}

// errNoVolumes keeps the words of the unsupported areas for a daemon
// without containers (whose side owns the volume store).
var errNoVolumes = fmt.Errorf("volumes: not supported by this daemon: %w", errdefs.ErrNotImplemented)

func (s *Server) needVolumes(h handlerFunc) handlerFunc {
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		if s.b.Volumes == nil {
			return errNoVolumes
		}
		return h(ctx, w, r)
	}
}

func (s *Server) volumeList(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	f, err := filtersQuery(r)
	if err != nil {
		return err
	}
	res, err := s.b.Volumes.VolumeList(ctx, daemon.Filters(f))
	if err != nil {
		return err
	}
	if res.Volumes == nil {
		res.Volumes = []volume.Volume{}
	}
	return writeJSON(w, http.StatusOK, res)
}

func (s *Server) volumeInspect(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	v, err := s.b.Volumes.VolumeInspect(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) volumeCreate(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var req volume.CreateRequest
	// No body is an anonymous volume, as an empty object is.
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	v, err := s.b.Volumes.VolumeCreate(ctx, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, v)
}

func (s *Server) volumeRemove(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	force, err := boolQuery(r, "force")
	if err != nil {
		return err
	}
	if err := s.b.Volumes.VolumeRemove(ctx, r.PathValue("name"), force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) volumesPrune(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	f, err := filtersQuery(r)
	if err != nil {
		return err
	}
	// Before API 1.42 (docker 23) prune took every unused volume, named
	// or not; a client speaking that version expects it still.
	if !versionAtLeast(ctx, "1.42") && len(f["all"]) == 0 {
		f["all"] = []string{"true"}
	}
	rep, err := s.b.Volumes.VolumesPrune(ctx, daemon.Filters(f))
	if err != nil {
		return err
	}
	if rep.VolumesDeleted == nil {
		rep.VolumesDeleted = []string{}
	}
	return writeJSON(w, http.StatusOK, rep)
}
