package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	buildtypes "github.com/moby/moby/api/types/build"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	volumetypes "github.com/moby/moby/api/types/volume"
)

// PingResult is what /_ping's headers say.
type PingResult struct {
	APIVersion   string
	OSType       string
	Experimental bool
}

// Ping asks the daemon whether it is up and which API it speaks.
func (c *Client) Ping(ctx context.Context) (PingResult, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/_ping", raw: true})
	if err != nil {
		return PingResult{}, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	exp, _ := strconv.ParseBool(resp.Header.Get("Docker-Experimental"))
	return PingResult{APIVersion: resp.Header.Get("Api-Version"), OSType: resp.Header.Get("Ostype"), Experimental: exp}, nil
}

// ServerVersion is GET /version.
func (c *Client) ServerVersion(ctx context.Context) (system.VersionResponse, error) {
	var v system.VersionResponse
	return v, c.getJSON(ctx, "/version", nil, &v)
}

// Info is GET /info.
func (c *Client) Info(ctx context.Context) (system.Info, error) {
	var v system.Info
	return v, c.getJSON(ctx, "/info", nil, &v)
}

// DiskUsage is GET /system/df. types limits the object kinds ("image",
// "container", "volume", "build-cache"); none means all. The client asks
// in the 1.52 shape when the daemon speaks it and otherwise converts the
// older flat lists into it.
func (c *Client) DiskUsage(ctx context.Context, types ...string) (system.DiskUsage, error) {
	q := url.Values{}
	for _, t := range types {
		q.Add("type", t)
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/system/df", query: q})
	if err != nil {
		return system.DiskUsage{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return system.DiskUsage{}, err
	}
	var du system.DiskUsage
	if !versionLess(c.APIVersion(), "1.52") {
		return du, json.Unmarshal(b, &du)
	}
	// Before 1.52: flat lists and the layers' total, folded into the
	// 1.52 envelope so callers see one shape.
	var old struct {
		LayersSize int64
		Images     []imagetypes.Summary
		Containers []containertypes.Summary
		Volumes    []volumetypes.Volume
		BuildCache []buildtypes.CacheRecord
	}
	if err := json.Unmarshal(b, &old); err != nil {
		return du, fmt.Errorf("system df: decode response: %w", err)
	}
	du.ImageUsage = &imagetypes.DiskUsage{TotalSize: old.LayersSize, TotalCount: int64(len(old.Images)), Items: old.Images}
	for _, im := range old.Images {
		if im.Containers > 0 {
			du.ImageUsage.ActiveCount++
		} else {
			du.ImageUsage.Reclaimable += im.Size - max(im.SharedSize, 0)
		}
	}
	du.ContainerUsage = &containertypes.DiskUsage{TotalCount: int64(len(old.Containers)), Items: old.Containers}
	du.VolumeUsage = &volumetypes.DiskUsage{TotalCount: int64(len(old.Volumes)), Items: old.Volumes}
	du.BuildCacheUsage = &buildtypes.DiskUsage{TotalCount: int64(len(old.BuildCache)), Items: old.BuildCache}
	return du, nil
}

// EventsOptions select events. Zero times are unbounded; without Until
// the stream follows until ctx ends.
type EventsOptions struct {
	Since, Until time.Time
	Filters      map[string][]string
}

// Events streams events. The message channel closes at the end of the
// stream; then the error channel yields nil or the error that ended it.
func (c *Client) Events(ctx context.Context, opts EventsOptions) (<-chan events.Message, <-chan error) {
	msgs := make(chan events.Message)
	errc := make(chan error, 1)
	q := url.Values{}
	if !opts.Since.IsZero() {
		q.Set("since", unixNano(opts.Since))
	}
	if !opts.Until.IsZero() {
		q.Set("until", unixNano(opts.Until))
	}
	if len(opts.Filters) > 0 {
		b, _ := json.Marshal(opts.Filters)
		q.Set("filters", string(b))
	}
	go func() {
		defer close(msgs)
		resp, err := c.do(ctx, request{method: http.MethodGet, path: "/events", query: q})
		if err != nil {
			errc <- err
			return
		}
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var m events.Message
			if err := dec.Decode(&m); err != nil {
				if errors.Is(err, io.EOF) || ctx.Err() != nil {
					errc <- nil
				} else {
					errc <- err
				}
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				errc <- nil
				return
			}
		}
	}()
	return msgs, errc
}

func unixNano(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}
