package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
)

// ContainerCreate is POST /containers/create.
func (c *Client) ContainerCreate(ctx context.Context, name string, req container.CreateRequest) (container.CreateResponse, error) {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	var out container.CreateResponse
	return out, c.callJSON(ctx, request{method: http.MethodPost, path: "/containers/create", query: q, json: req}, &out)
}

func (c *Client) post(ctx context.Context, path string, q url.Values) error {
	return c.call(ctx, request{method: http.MethodPost, path: path, query: q})
}

// ContainerStart starts a created or stopped container.
func (c *Client) ContainerStart(ctx context.Context, id string) error {
	return c.post(ctx, "/containers/"+id+"/start", nil)
}

// StopOptions are stop's and restart's; zero values take the container's.
type StopOptions struct {
	Signal  string
	Timeout *int
}

func (o StopOptions) query() url.Values {
	q := url.Values{}
	if o.Signal != "" {
		q.Set("signal", o.Signal)
	}
	intParam(q, "t", o.Timeout)
	return q
}

// ContainerStop stops a container.
func (c *Client) ContainerStop(ctx context.Context, id string, opts StopOptions) error {
	return c.post(ctx, "/containers/"+id+"/stop", opts.query())
}

// ContainerRestart restarts a container.
func (c *Client) ContainerRestart(ctx context.Context, id string, opts StopOptions) error {
	return c.post(ctx, "/containers/"+id+"/restart", opts.query())
}

// ContainerKill sends a signal ("" is SIGKILL).
func (c *Client) ContainerKill(ctx context.Context, id, signal string) error {
	q := url.Values{}
	if signal != "" {
		q.Set("signal", signal)
	}
	return c.post(ctx, "/containers/"+id+"/kill", q)
}

// ContainerPause freezes a container.
func (c *Client) ContainerPause(ctx context.Context, id string) error {
	return c.post(ctx, "/containers/"+id+"/pause", nil)
}

// ContainerUnpause thaws a container.
func (c *Client) ContainerUnpause(ctx context.Context, id string) error {
	return c.post(ctx, "/containers/"+id+"/unpause", nil)
}

// ContainerWait registers a wait and returns once the daemon has (so a
// start after it cannot be missed); the channel yields the result.
func (c *Client) ContainerWait(ctx context.Context, id string, cond container.WaitCondition) (<-chan container.WaitResponse, <-chan error) {
	resc := make(chan container.WaitResponse, 1)
	errc := make(chan error, 1)
	q := url.Values{}
	if cond != "" {
		q.Set("condition", string(cond))
	}
	resp, err := c.do(ctx, request{method: http.MethodPost, path: "/containers/" + id + "/wait", query: q})
	if err != nil {
		errc <- err
		return resc, errc
	}
	go func() {
		defer resp.Body.Close()
		var res container.WaitResponse
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			errc <- fmt.Errorf("wait %s: %w", id, err)
			return
		}
		resc <- res
	}()
	return resc, errc
}

// RemoveOptions are DELETE /containers/{id}'s.
type RemoveOptions struct {
	Force, RemoveVolumes bool
	// RemoveLinks removes the legacy link named by the argument
	// (CONTAINER/ALIAS) instead of a container.
	RemoveLinks bool
}

// ContainerRemove removes a container.
func (c *Client) ContainerRemove(ctx context.Context, id string, opts RemoveOptions) error {
	q := url.Values{}
	boolParam(q, "force", opts.Force)
	boolParam(q, "v", opts.RemoveVolumes)
	boolParam(q, "link", opts.RemoveLinks)
	return c.call(ctx, request{method: http.MethodDelete, path: "/containers/" + id, query: q})
}

// ContainerRename renames a container.
func (c *Client) ContainerRename(ctx context.Context, id, name string) error {
	return c.post(ctx, "/containers/"+id+"/rename", url.Values{"name": {name}})
}

// ContainerUpdate changes a container's resources.
func (c *Client) ContainerUpdate(ctx context.Context, id string, cfg container.UpdateConfig) (container.UpdateResponse, error) {
	var out container.UpdateResponse
	return out, c.callJSON(ctx, request{method: http.MethodPost, path: "/containers/" + id + "/update", json: cfg}, &out)
}

// ContainerTop lists a container's processes.
func (c *Client) ContainerTop(ctx context.Context, id, psArgs string) (container.TopResponse, error) {
	q := url.Values{}
	if psArgs != "" {
		q.Set("ps_args", psArgs)
	}
	var out container.TopResponse
	return out, c.getJSON(ctx, "/containers/"+id+"/top", q, &out)
}

// ContainerInspect is GET /containers/{id}/json.
func (c *Client) ContainerInspect(ctx context.Context, id string, size bool) (container.InspectResponse, error) {
	q := url.Values{}
	boolParam(q, "size", size)
	var out container.InspectResponse
	return out, c.getJSON(ctx, "/containers/"+id+"/json", q, &out)
}

// ListOptions are GET /containers/json's.
type ListOptions struct {
	All, Size bool
	Limit     int
	Filters   map[string][]string
}

// ContainerList is GET /containers/json.
func (c *Client) ContainerList(ctx context.Context, opts ListOptions) ([]container.Summary, error) {
	q := url.Values{}
	boolParam(q, "all", opts.All)
	boolParam(q, "size", opts.Size)
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	filtersParam(q, opts.Filters)
	var out []container.Summary
	return out, c.getJSON(ctx, "/containers/json", q, &out)
}

// LogsOptions select log lines; without Stdout and Stderr both are sent.
type LogsOptions struct {
	Follow, Stdout, Stderr, Timestamps, Details bool
	Since, Until                                time.Time
	Tail                                        string
}

// ContainerLogs returns the log stream (multiplexed unless the container
// has a tty: demultiplex with StdCopy). The caller closes it.
func (c *Client) ContainerLogs(ctx context.Context, id string, opts LogsOptions) (io.ReadCloser, error) {
	q := url.Values{}
	if !opts.Stdout && !opts.Stderr {
		opts.Stdout, opts.Stderr = true, true
	}
	boolParam(q, "follow", opts.Follow)
	boolParam(q, "stdout", opts.Stdout)
	boolParam(q, "stderr", opts.Stderr)
	boolParam(q, "timestamps", opts.Timestamps)
	boolParam(q, "details", opts.Details)
	if !opts.Since.IsZero() {
		q.Set("since", unixNano(opts.Since))
	}
	if !opts.Until.IsZero() {
		q.Set("until", unixNano(opts.Until))
	}
	if opts.Tail != "" {
		q.Set("tail", opts.Tail)
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/containers/" + id + "/logs", query: q})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// AttachOptions are POST /containers/{id}/attach's.
type AttachOptions struct {
	Stdin, Stdout, Stderr, Stream, Logs bool
	DetachKeys                          string
}

// ContainerAttach hijacks a connection to the container's stdio.
func (c *Client) ContainerAttach(ctx context.Context, id string, opts AttachOptions) (*HijackedConn, error) {
	q := url.Values{}
	boolParam(q, "stdin", opts.Stdin)
	boolParam(q, "stdout", opts.Stdout)
	boolParam(q, "stderr", opts.Stderr)
	boolParam(q, "stream", opts.Stream)
	boolParam(q, "logs", opts.Logs)
	if opts.DetachKeys != "" {
		q.Set("detachKeys", opts.DetachKeys)
	}
	return c.hijack(ctx, request{method: http.MethodPost, path: "/containers/" + id + "/attach", query: q})
}

// ContainerResize sets the container's terminal size.
func (c *Client) ContainerResize(ctx context.Context, id string, height, width uint) error {
	return c.post(ctx, "/containers/"+id+"/resize", url.Values{"h": {strconv.FormatUint(uint64(height), 10)}, "w": {strconv.FormatUint(uint64(width), 10)}})
}

// ContainerStats returns one sample (stream false) or a stream of JSON
// samples; the caller decodes and closes it.
func (c *Client) ContainerStats(ctx context.Context, id string, stream bool) (io.ReadCloser, error) {
	q := url.Values{"stream": {strconv.FormatBool(stream)}}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/containers/" + id + "/stats", query: q})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ContainerChanges lists changes in the container's filesystem.
func (c *Client) ContainerChanges(ctx context.Context, id string) ([]container.FilesystemChange, error) {
	var out []container.FilesystemChange
	return out, c.getJSON(ctx, "/containers/"+id+"/changes", nil, &out)
}

// ContainerExport returns the container's filesystem as a tar.
func (c *Client) ContainerExport(ctx context.Context, id string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/containers/" + id + "/export"})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func pathStat(h http.Header) (container.PathStat, error) {
	var st container.PathStat
	v := h.Get("X-Docker-Container-Path-Stat")
	if v == "" {
		return st, nil
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return st, fmt.Errorf("path stat header: %w", err)
	}
	return st, json.Unmarshal(b, &st)
}

// ContainerStatPath stats a path in a container (HEAD archive).
func (c *Client) ContainerStatPath(ctx context.Context, id, path string) (container.PathStat, error) {
	resp, err := c.do(ctx, request{method: http.MethodHead, path: "/containers/" + id + "/archive", query: url.Values{"path": {path}}})
	if err != nil {
		return container.PathStat{}, err
	}
	resp.Body.Close()
	return pathStat(resp.Header)
}

// CopyFromContainer returns a tar of path and its stat.
func (c *Client) CopyFromContainer(ctx context.Context, id, path string) (io.ReadCloser, container.PathStat, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/containers/" + id + "/archive", query: url.Values{"path": {path}}})
	if err != nil {
		return nil, container.PathStat{}, err
	}
	st, err := pathStat(resp.Header)
	if err != nil {
		resp.Body.Close()
		return nil, st, err
	}
	return resp.Body, st, nil
}

// CopyToContainer extracts a tar into dir in the container.
func (c *Client) CopyToContainer(ctx context.Context, id, dir string, tar io.Reader, noOverwriteDirNonDir, copyUIDGID bool) error {
	q := url.Values{"path": {dir}}
	boolParam(q, "noOverwriteDirNonDir", noOverwriteDirNonDir)
	boolParam(q, "copyUIDGID", copyUIDGID)
	return c.call(ctx, request{method: http.MethodPut, path: "/containers/" + id + "/archive", query: q, body: tar,
		header: http.Header{"Content-Type": {"application/x-tar"}}})
}

// CommitOptions are POST /commit's.
type CommitOptions struct {
	Reference, Comment, Author string
	Pause                      *bool
	Changes                    []string
	Config                     *container.Config
}

// ContainerCommit makes an image of the container.
func (c *Client) ContainerCommit(ctx context.Context, id string, opts CommitOptions) (container.CommitResponse, error) {
	q := url.Values{"container": {id}}
	if opts.Reference != "" {
		q.Set("repo", opts.Reference)
	}
	if opts.Comment != "" {
		q.Set("comment", opts.Comment)
	}
	if opts.Author != "" {
		q.Set("author", opts.Author)
	}
	if opts.Pause != nil {
		q.Set("pause", strconv.FormatBool(*opts.Pause))
	}
	for _, ch := range opts.Changes {
		q.Add("changes", ch)
	}
	req := request{method: http.MethodPost, path: "/commit", query: q}
	if opts.Config != nil {
		req.json = opts.Config
	}
	var out container.CommitResponse
	return out, c.callJSON(ctx, req, &out)
}

// ContainersPrune removes stopped containers.
func (c *Client) ContainersPrune(ctx context.Context, filters map[string][]string) (container.PruneReport, error) {
	q := url.Values{}
	filtersParam(q, filters)
	var out container.PruneReport
	return out, c.callJSON(ctx, request{method: http.MethodPost, path: "/containers/prune", query: q}, &out)
}

// ExecCreate prepares a process in a running container.
func (c *Client) ExecCreate(ctx context.Context, containerID string, req container.ExecCreateRequest) (container.ExecCreateResponse, error) {
	var out container.ExecCreateResponse
	return out, c.callJSON(ctx, request{method: http.MethodPost, path: "/containers/" + containerID + "/exec", json: req}, &out)
}

// ExecStartDetached starts an exec without attaching.
func (c *Client) ExecStartDetached(ctx context.Context, id string) error {
	return c.call(ctx, request{method: http.MethodPost, path: "/exec/" + id + "/start", json: container.ExecStartRequest{Detach: true}})
}

// ExecAttach starts an exec and hijacks the connection to its stdio.
func (c *Client) ExecAttach(ctx context.Context, id string, req container.ExecStartRequest) (*HijackedConn, error) {
	req.Detach = false
	return c.hijack(ctx, request{method: http.MethodPost, path: "/exec/" + id + "/start", json: req})
}

// ExecInspect is GET /exec/{id}/json.
func (c *Client) ExecInspect(ctx context.Context, id string) (container.ExecInspectResponse, error) {
	var out container.ExecInspectResponse
	return out, c.getJSON(ctx, "/exec/"+id+"/json", nil, &out)
}

// ExecResize sets an exec's terminal size.
func (c *Client) ExecResize(ctx context.Context, id string, height, width uint) error {
	return c.post(ctx, "/exec/"+id+"/resize", url.Values{"h": {strconv.FormatUint(uint64(height), 10)}, "w": {strconv.FormatUint(uint64(width), 10)}})
}
