package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/pkg/authconfig"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"

	"github.com/berth-dev/berth/internal/daemon"
	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
)

// imageBackend is the image side of the Engine (its calls also publish
// image events). Methods are safe for concurrent use and
// return errdefs classes: ErrNotFound for an unknown image, ErrConflict
// for a removal that needs force, ErrInvalidArgument for a bad reference
// or archive, ErrUnauthorized for a refused registry credential.
type imageBackend interface {
	ImageList(ctx context.Context, opts daemon.ImageListOptions) (daemon.ImageListResult, error)
	ImageInspectWith(ctx context.Context, ref string, opts daemon.ImageInspectOptions) (daemon.ImageInspectResult, error)
	ImageHistory(ctx context.Context, ref string) ([]imagetypes.HistoryResponseItem, error)
	ImageTag(ctx context.Context, opts daemon.ImageTagOptions) error
	// ImageRemove may return a partial result with its error.
	ImageRemove(ctx context.Context, ref string, opts daemon.ImageRemoveOptions) (daemon.ImageRemoveResult, error)
	// Pull calls opts.Progress from several goroutines, one at a time.
	Pull(ctx context.Context, ref string, opts daemon.PullOptions) (daemon.PullResult, error)
	Push(ctx context.Context, ref string, opts daemon.PushOptions) (daemon.PushResult, error)
	// ImageSave writes the archive to opts.Output; nothing is written
	// before the references resolve, so a bad name is still a clean 404.
	ImageSave(ctx context.Context, opts daemon.ImageSaveOptions) error
	ImageLoad(ctx context.Context, opts daemon.ImageLoadOptions) (daemon.ImageLoadResult, error)
	ImageImport(ctx context.Context, opts daemon.ImageImportOptions) (daemon.ImageImportResult, error)
	ImagePrune(ctx context.Context, opts daemon.ImagePruneOptions) (daemon.ImagePruneResult, error)
	Login(ctx context.Context, opts daemon.LoginOptions) (daemon.LoginResult, error)
}

func (s *Server) imageRoutes() {
	s.handle("GET /images/json", s.imageList)
	s.handle("GET /images/get", s.imageSaveMany)
	s.handle("POST /images/create", s.imageCreate)
	s.handle("POST /images/load", s.imageLoad)
	s.handle("POST /images/prune", s.imagePrune)
	s.handle("POST /auth", s.auth)
	// Image names contain slashes ("127.0.0.1:5000/team/app:1"), so the
	// routes with a name take the rest of the path and split the verb off
	// its end, as docker's {name:.*} routes do.
	s.handle("GET /images/{rest...}", s.imageGet)
	s.handle("POST /images/{rest...}", s.imagePost)
	s.handle("DELETE /images/{rest...}", s.imageDelete)
}

func notFoundRoute() error {
	return fmt.Errorf("page not found: %w", errdefs.ErrNotFound)
}

func (s *Server) imageGet(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	rest := r.PathValue("rest")
	switch {
	case strings.HasSuffix(rest, "/json"):
		return s.imageInspect(ctx, w, strings.TrimSuffix(rest, "/json"), r.URL.Query().Get("platform"))
	case strings.HasSuffix(rest, "/history"):
		return s.imageHistory(ctx, w, strings.TrimSuffix(rest, "/history"))
	case strings.HasSuffix(rest, "/get"):
		return s.imageSave(ctx, w, []string{strings.TrimSuffix(rest, "/get")}, r.URL.Query().Get("platform"))
	}
	return notFoundRoute()
}

func (s *Server) imagePost(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	rest := r.PathValue("rest")
	switch {
	case strings.HasSuffix(rest, "/tag"):
		return s.imageTag(ctx, w, r, strings.TrimSuffix(rest, "/tag"))
	case strings.HasSuffix(rest, "/push"):
		return s.imagePush(ctx, w, r, strings.TrimSuffix(rest, "/push"))
	}
	return notFoundRoute()
}

func (s *Server) imageList(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	f, err := filtersQuery(r)
	if err != nil {
		return err
	}
	all, err := boolQuery(r, "all")
	if err != nil {
		return err
	}
	// docker's legacy filter= (a reference) before filters= existed.
	if ref := r.URL.Query().Get("filter"); ref != "" {
		f["reference"] = append(f["reference"], ref)
	}
	res, err := s.b.Images.ImageList(ctx, daemon.ImageListOptions{All: all, Filters: daemon.Filters(f)})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res.Images)
}

func (s *Server) imageInspect(ctx context.Context, w http.ResponseWriter, name, platform string) error {
	res, err := s.b.Images.ImageInspectWith(ctx, name, daemon.ImageInspectOptions{Platform: platform})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res.InspectResponse)
}

func (s *Server) imageHistory(ctx context.Context, w http.ResponseWriter, name string) error {
	items, err := s.b.Images.ImageHistory(ctx, name)
	if err != nil {
		return err
	}
	if items == nil {
		items = []imagetypes.HistoryResponseItem{}
	}
	return writeJSON(w, http.StatusOK, items)
}

func (s *Server) imageTag(ctx context.Context, w http.ResponseWriter, r *http.Request, name string) error {
	repo, tag := r.URL.Query().Get("repo"), r.URL.Query().Get("tag")
	if repo == "" {
		return fmt.Errorf("repository name must have at least one component: %w", errdefs.ErrInvalidArgument)
	}
	target := repo
	if tag != "" {
		target += ":" + tag
	}
	if err := s.b.Images.ImageTag(ctx, daemon.ImageTagOptions{Source: name, Target: target}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Server) imageDelete(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	force, err := boolQuery(r, "force")
	if err != nil {
		return err
	}
	if _, err := boolQuery(r, "noprune"); err != nil {
		return err
	}
	res, err := s.b.Images.ImageRemove(ctx, r.PathValue("rest"), daemon.ImageRemoveOptions{Force: force})
	if err != nil {
		return err
	}
	items := res.Items
	if items == nil {
		items = []imagetypes.DeleteResponse{}
	}
	return writeJSON(w, http.StatusOK, items)
}

// registryAuth reads the X-Registry-Auth header (base64url JSON). An
// absent or empty header is anonymous.
func registryAuth(r *http.Request) (*distribution.AuthConfig, error) {
	h := r.Header.Get("X-Registry-Auth")
	if h == "" {
		return nil, nil
	}
	ac, err := authconfig.Decode(h)
	if err != nil {
		return nil, fmt.Errorf("X-Registry-Auth: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return toAuth(ac), nil
}

func toAuth(ac *registry.AuthConfig) *distribution.AuthConfig {
	if ac == nil {
		return nil
	}
	a := &distribution.AuthConfig{Username: ac.Username, Password: ac.Password, IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken}
	if *a == (distribution.AuthConfig{}) {
		return nil
	}
	return a
}

// progressMessage turns one distribution update into docker's JSON
// progress line: byte counts for downloads, uploads and extraction, an
// empty progressDetail otherwise (the CLI draws lines from that).
func progressMessage(p distribution.Progress) jsonstream.Message {
	status := string(p.Status)
	if p.Detail != "" && (p.Status == distribution.StatusMounted || p.Status == distribution.StatusRetrying) {
		status += " " + p.Detail
	}
	m := jsonstream.Message{ID: p.ID, Status: status, Progress: &jsonstream.Progress{}}
	switch p.Status {
	case distribution.StatusDownloading, distribution.StatusExtracting, distribution.StatusPushing:
		m.Progress = &jsonstream.Progress{Current: p.Current, Total: p.Total}
	}
	return m
}

// imageCreate is pull (fromImage) or import (fromSrc=- with the tar as
// body). It streams docker's progress; the first line is held back until
// the registry answered, so an unknown image or a refused credential is
// still a plain 404 or 401 rather than an error inside a 200.
func (s *Server) imageCreate(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	platform := q.Get("platform")
	if src := q.Get("fromSrc"); src != "" {
		return s.imageImport(ctx, w, r, src)
	}
	from := q.Get("fromImage")
	if from == "" {
		return fmt.Errorf("fromImage or fromSrc is required: %w", errdefs.ErrInvalidArgument)
	}
	ref := from
	tag := q.Get("tag")
	if tag != "" {
		if strings.Contains(tag, ":") {
			ref += "@" + tag // a digest: sha256:…
		} else {
			ref += ":" + tag
		}
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("invalid reference format: %s: %w", ref, errdefs.ErrInvalidArgument)
	}
	if tag == "" && reference.IsNameOnly(named) {
		// No tag anywhere is docker's "all tags" (docker pull -a); a
		// plain pull always sends tag=latest. Pulling the wrong thing
		// silently would be worse than saying so.
		return fmt.Errorf("pull of all tags of %s: %w", reference.FamiliarName(named), errdefs.ErrNotImplemented)
	}
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	ps := newProgressStream(w)
	var first bool
	header := func() {
		if first {
			return
		}
		first = true
		id := ""
		if t, ok := named.(reference.Tagged); ok {
			id = t.Tag()
		} else if d, ok := named.(reference.Digested); ok {
			id = d.Digest().String()
		}
		ps.send(jsonstream.Message{Status: "Pulling from " + reference.Path(named), ID: id})
	}
	res, err := s.b.Images.Pull(ctx, named.String(), daemon.PullOptions{
		Platform: platform,
		Auth:     auth,
		Progress: func(p distribution.Progress) {
			if p.Config {
				return
			}
			header()
			ps.send(progressMessage(p))
		},
	})
	if err != nil {
		if !first {
			return err
		}
		ps.fail(err)
		return nil
	}
	header()
	ps.send(jsonstream.Message{Status: "Digest: " + res.Digest.String()})
	ps.send(jsonstream.Message{Status: "Status: " + res.Status})
	return nil
}

func (s *Server) imageImport(ctx context.Context, w http.ResponseWriter, r *http.Request, src string) error {
	if src != "-" {
		return fmt.Errorf("import from a URL: %w", errdefs.ErrNotImplemented)
	}
	q := r.URL.Query()
	ref := q.Get("repo")
	if ref != "" && q.Get("tag") != "" {
		ref += ":" + q.Get("tag")
	}
	res, err := s.b.Images.ImageImport(ctx, daemon.ImageImportOptions{
		Source:    r.Body,
		Reference: ref,
		Changes:   q["changes"],
		Message:   q.Get("message"),
		Platform:  q.Get("platform"),
	})
	if err != nil {
		return err
	}
	ps := newProgressStream(w)
	ps.send(jsonstream.Message{Status: res.ID.String()})
	return nil
}

// pushAux is the aux record that ends a push stream; the docker CLI reads
// Tag, Digest and Size from it. The published module has no type for it
// (it only has auxprogress.ManifestPushedInsteadOfIndex), hence this one.
type pushAux struct {
	Tag    string
	Digest string
	Size   int64
}

func (s *Server) imagePush(ctx context.Context, w http.ResponseWriter, r *http.Request, name string) error {
	ref := name
	tag := r.URL.Query().Get("tag")
	if tag != "" {
		ref += ":" + tag
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("invalid reference format: %s: %w", ref, errdefs.ErrInvalidArgument)
	}
	if tag == "" && reference.IsNameOnly(named) {
		// No tag is docker's "every tag of the repository" (push -a); the
		// CLI sends tag=latest otherwise. Say so rather than push one.
		return fmt.Errorf("push of all tags of %s: %w", reference.FamiliarName(named), errdefs.ErrNotImplemented)
	}
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	ps := newProgressStream(w)
	var first bool
	header := func() {
		if !first {
			first = true
			ps.send(jsonstream.Message{Status: "The push refers to repository [" + named.Name() + "]"})
		}
	}
	res, err := s.b.Images.Push(ctx, reference.TagNameOnly(named).String(), daemon.PushOptions{
		Auth: auth,
		Progress: func(p distribution.Progress) {
			if p.Config {
				return
			}
			header()
			ps.send(progressMessage(p))
		},
	})
	if err != nil {
		if !first {
			return err
		}
		ps.fail(err)
		return nil
	}
	header()
	ps.send(jsonstream.Message{Status: fmt.Sprintf("%s: digest: %s size: %d", res.Tag, res.Digest, res.Size)})
	aux, _ := json.Marshal(pushAux{Tag: res.Tag, Digest: res.Digest.String(), Size: res.Size})
	raw := json.RawMessage(aux)
	ps.send(jsonstream.Message{Progress: &jsonstream.Progress{}, Aux: &raw})
	return nil
}

func (s *Server) imageSaveMany(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	return s.imageSave(ctx, w, r.URL.Query()["names"], r.URL.Query().Get("platform"))
}

func (s *Server) imageSave(ctx context.Context, w http.ResponseWriter, names []string, platform string) error {
	w.Header().Set("Content-Type", "application/x-tar")
	return s.b.Images.ImageSave(ctx, daemon.ImageSaveOptions{Refs: names, Output: w, Platform: platform})
}

func (s *Server) imageLoad(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	if _, err := boolQuery(r, "quiet"); err != nil {
		return err
	}
	res, err := s.b.Images.ImageLoad(ctx, daemon.ImageLoadOptions{Input: r.Body, Platform: r.URL.Query().Get("platform")})
	if err != nil {
		return err
	}
	ps := newProgressStream(w)
	ps.start()
	for _, im := range res.Images {
		if len(im.RepoTags) == 0 {
			ps.send(jsonstream.Message{Stream: "Loaded image ID: " + im.ID.String() + "\n"})
		}
		for _, t := range im.RepoTags {
			if old, ok := im.Moved[t]; ok {
				// docker's words when a loaded tag leaves another image.
				ps.send(jsonstream.Message{Stream: "The image " + t + " already exists, renaming the old one with ID " + old.String() + " to empty string\n"})
			}
			ps.send(jsonstream.Message{Stream: "Loaded image: " + t + "\n"})
		}
	}
	return nil
}

func (s *Server) imagePrune(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	f, err := filtersQuery(r)
	if err != nil {
		return err
	}
	res, err := s.b.Images.ImagePrune(ctx, daemon.ImagePruneOptions{Filters: daemon.Filters(f)})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res.PruneReport)
}

func (s *Server) auth(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var ac registry.AuthConfig
	if err := decodeJSON(r, &ac, true); err != nil {
		return err
	}
	a := toAuth(&ac)
	if a == nil {
		a = &distribution.AuthConfig{}
	}
	res, err := s.b.Images.Login(ctx, daemon.LoginOptions{Registry: ac.ServerAddress, Auth: *a})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, registry.AuthResponse{Status: res.Status, IdentityToken: res.IdentityToken})
}
