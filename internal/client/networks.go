package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/moby/moby/api/types/network"
)

// NetworkList is GET /networks, with docker's filters (driver, id,
// label, name, scope, type, dangling).
func (c *Client) NetworkList(ctx context.Context, filters map[string][]string) ([]network.Summary, error) {
	q := url.Values{}
	filtersParam(q, filters)
	var out []network.Summary
	return out, c.getJSON(ctx, "/networks", q, &out)
}

// NetworkInspect is GET /networks/{id}: a network by ID, ID prefix or
// name.
func (c *Client) NetworkInspect(ctx context.Context, ref string) (network.Inspect, error) {
	var out network.Inspect
	return out, c.getJSON(ctx, "/networks/"+url.PathEscape(ref), nil, &out)
}

// NetworkCreate is POST /networks/create.
func (c *Client) NetworkCreate(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	var out network.CreateResponse
	return out, c.callJSON(ctx, request{method: http.MethodPost, path: "/networks/create", json: req}, &out)
}

// NetworkRemove is DELETE /networks/{id}.
func (c *Client) NetworkRemove(ctx context.Context, ref string) error {
	return c.call(ctx, request{method: http.MethodDelete, path: "/networks/" + url.PathEscape(ref)})
}

// NetworksPrune is POST /networks/prune (filters: label, label!, until).
func (c *Client) NetworksPrune(ctx context.Context, filters map[string][]string) (network.PruneReport, error) {
	q := url.Values{}
	filtersParam(q, filters)
	var out network.PruneReport
	return out, c.callJSON(ctx, request{method: http.MethodPost, path: "/networks/prune", query: q}, &out)
}

// NetworkConnect is POST /networks/{id}/connect; cfg may be nil.
func (c *Client) NetworkConnect(ctx context.Context, ref, container string, cfg *network.EndpointSettings) error {
	body := network.ConnectRequest{Container: container, EndpointConfig: cfg}
	return c.call(ctx, request{method: http.MethodPost, path: "/networks/" + url.PathEscape(ref) + "/connect", json: body})
}

// NetworkDisconnect is POST /networks/{id}/disconnect.
func (c *Client) NetworkDisconnect(ctx context.Context, ref, container string, force bool) error {
	body := network.DisconnectRequest{Container: container, Force: force}
	return c.call(ctx, request{method: http.MethodPost, path: "/networks/" + url.PathEscape(ref) + "/disconnect", json: body})
}
