package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	buildtypes "github.com/moby/moby/api/types/build"
	containertypes "github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	volumetypes "github.com/moby/moby/api/types/volume"

	"github.com/berth-dev/berth/internal/daemon"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/events"
)

// systemBackend is what /_ping, /version, /info, /events and /system/df
// need. daemon.Engine implements it. Methods are safe for concurrent use;
// errors carry errdefs classes.
type systemBackend interface {
	// Info is docker info's document.
	Info(ctx context.Context) (system.Info, error)
	// Version describes the engine; the API adds its own versions.
	Version(ctx context.Context) (system.VersionResponse, error)
	// DiskUsage is system df, in the current (1.52+) shape.
	DiskUsage(ctx context.Context, opts daemon.DiskUsageOptions) (system.DiskUsage, error)
	// Events is the engine's bus; the API only subscribes.
	Events() *events.Bus
}

func (s *Server) systemRoutes() {
	s.handle("GET /_ping", s.ping) // also HEAD: the mux serves HEAD with GET routes
	s.handle("GET /version", s.version)
	s.handle("GET /info", s.info)
	s.handle("GET /events", s.events)
	s.handle("GET /system/df", s.diskUsage)
}

// ping answers the docker CLI's first request. The headers carry what it
// negotiates with (API-Version, set on every response by serveHTTP);
// HEAD gets them without the body.
func (s *Server) ping(_ context.Context, w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Swarm", "inactive")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte("OK"))
	}
	return nil
}

func (s *Server) version(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	v, err := s.b.System.Version(ctx)
	if err != nil {
		return err
	}
	v.APIVersion, v.MinAPIVersion = MaxAPIVersion, MinAPIVersion
	v.Experimental = s.experimental
	for i := range v.Components {
		if v.Components[i].Name == "Engine" {
			if v.Components[i].Details == nil {
				v.Components[i].Details = map[string]string{}
			}
			v.Components[i].Details["ApiVersion"] = MaxAPIVersion
			v.Components[i].Details["MinAPIVersion"] = MinAPIVersion
		}
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) info(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	info, err := s.b.System.Info(ctx)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, info)
}

// parseEventTime reads docker's since/until: Unix seconds with an
// optional fraction ("1700000000.123456789", what the CLI sends) or an
// RFC 3339 time.
func parseEventTime(key, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	sec, frac, hasFrac := strings.Cut(v, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid value for %s: %q: want a Unix timestamp or an RFC 3339 time: %w", key, v, errdefs.ErrInvalidArgument)
	}
	var ns int64
	if hasFrac {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		frac += strings.Repeat("0", 9-len(frac))
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, fmt.Errorf("invalid value for %s: %q: %w", key, v, errdefs.ErrInvalidArgument)
		}
	}
	return time.Unix(s, ns), nil
}

// events streams the bus as docker does: remembered events from since
// (up to until) first, then live ones until until passes or the client
// goes. An until in the past ends the stream after the replay.
func (s *Server) events(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	since, err := parseEventTime("since", r.URL.Query().Get("since"))
	if err != nil {
		return err
	}
	until, err := parseEventTime("until", r.URL.Query().Get("until"))
	if err != nil {
		return err
	}
	f, err := filtersQuery(r)
	if err != nil {
		return err
	}
	filter := events.Filter(f)
	if err := filter.Validate(); err != nil {
		return err
	}
	replayFrom := since
	if replayFrom.IsZero() && !until.IsZero() {
		replayFrom = time.Unix(0, 1)
	}
	past, sub := s.b.System.Events().Subscribe(replayFrom, filter)
	defer sub.Close()

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush(w)
	enc := json.NewEncoder(w)
	for _, m := range past {
		if !until.IsZero() && m.TimeNano > until.UnixNano() {
			break
		}
		if err := enc.Encode(m); err != nil {
			return nil // the client went away
		}
	}
	flush(w)
	var deadline <-chan time.Time
	if !until.IsZero() {
		d := time.Until(until)
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		defer t.Stop()
		deadline = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.streamsDone:
			return nil
		case <-deadline:
			return nil
		case m, ok := <-sub.C:
			if !ok {
				// Dropped for reading too slowly: end the stream so the
				// client can reconnect with since= rather than miss events
				// silently.
				return nil
			}
			if !until.IsZero() && m.TimeNano > until.UnixNano() {
				return nil
			}
			if err := enc.Encode(m); err != nil {
				return nil
			}
			flush(w)
		}
	}
}

// legacyDiskUsage is /system/df before API 1.52: the same items, as flat
// lists, with the images' layer total. Built from the published element
// types; the published module has only the 1.52 envelope.
type legacyDiskUsage struct {
	LayersSize int64
	Images     []imagetypes.Summary
	Containers []containertypes.Summary
	Volumes    []volumetypes.Volume
	BuildCache []buildtypes.CacheRecord
}

func (s *Server) diskUsage(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var opts daemon.DiskUsageOptions
	for _, t := range r.URL.Query()["type"] {
		switch system.DiskUsageObject(t) {
		case system.ImageObject:
			opts.Images = true
		case system.ContainerObject:
			opts.Containers = true
		case system.VolumeObject:
			opts.Volumes = true
		case system.BuildCacheObject:
			opts.BuildCache = true
		default:
			return fmt.Errorf("unknown object type: %s: %w", t, errdefs.ErrInvalidArgument)
		}
	}
	du, err := s.b.System.DiskUsage(ctx, opts)
	if err != nil {
		return err
	}
	if versionAtLeast(ctx, "1.52") {
		return writeJSON(w, http.StatusOK, du)
	}
	var old legacyDiskUsage
	if du.ImageUsage != nil {
		old.LayersSize = du.ImageUsage.TotalSize
		old.Images = du.ImageUsage.Items
	}
	if du.ContainerUsage != nil {
		old.Containers = du.ContainerUsage.Items
	}
	if du.VolumeUsage != nil {
		old.Volumes = du.VolumeUsage.Items
	}
	if du.BuildCacheUsage != nil {
		old.BuildCache = du.BuildCacheUsage.Items
	}
	return writeJSON(w, http.StatusOK, old)
}
