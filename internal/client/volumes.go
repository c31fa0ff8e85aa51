package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/moby/moby/api/types/volume"
)

// VolumeList is GET /volumes, with docker's filters (name, label,
// driver, dangling).
func (c *Client) VolumeList(ctx context.Context, filters map[string][]string) (volume.ListResponse, error) {
	q := url.Values{}
	filtersParam(q, filters)
	var out volume.ListResponse
	return out, c.getJSON(ctx, "/volumes", q, &out)
}

// VolumeInspect is GET /volumes/{name}.
func (c *Client) VolumeInspect(ctx context.Context, name string) (volume.Volume, error) {
	var out volume.Volume
	return out, c.getJSON(ctx, "/volumes/"+url.PathEscape(name), nil, &out)
}

// VolumeCreate is POST /volumes/create; an empty name makes an
// anonymous volume.
func (c *Client) VolumeCreate(ctx context.Context, req volume.CreateRequest) (volume.Volume, error) {
	var out volume.Volume
	return out, c.callJSON(ctx, request{method: http.MethodPost, path: "/volumes/create", json: req}, &out)
}

// VolumeRemove is DELETE /volumes/{name}; force makes a missing volume
// no error.
func (c *Client) VolumeRemove(ctx context.Context, name string, force bool) error {
	q := url.Values{}
	if force {
		q.Set("force", "1")
	}
	return c.call(ctx, request{method: http.MethodDelete, path: "/volumes/" + url.PathEscape(name), query: q})
}

// VolumesPrune is POST /volumes/prune (filters: label, label!, all).
func (c *Client) VolumesPrune(ctx context.Context, filters map[string][]string) (volume.PruneReport, error) {
	q := url.Values{}
	filtersParam(q, filters)
	var out volume.PruneReport
	return out, c.callJSON(ctx, request{method: http.MethodPost, path: "/volumes/prune", query: q}, &out)
}
