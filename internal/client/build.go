package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/moby/moby/api/types/jsonstream"
)

// BuildOptions are docker build's (legacy builder).
type BuildOptions struct {
	// Dockerfile is its path in the context ("" is Dockerfile).
	Dockerfile string
	Tags       []string
	BuildArgs  map[string]*string
	Labels     map[string]string
	NoCache    bool
	// Pull fetches FROM images even when present.
	Pull   bool
	Target string
	Quiet  bool
	// NetworkMode is RUN's network; "" leaves it to the daemon (none).
	NetworkMode string
	Platform    string
	// ExtraHosts ("host:ip") and ShmSize (bytes) are RUN's.
	ExtraHosts []string
	ShmSize    int64
	// Progress gets every message of the stream but errors (which end
	// it and come back as a *StreamError).
	Progress func(jsonstream.Message)
}

// BuildResult is the built image.
type BuildResult struct {
	ID string
}

// ImageBuild sends the context tar to POST /build and follows the
// progress to the end. A failed step comes back as a *StreamError whose
// Code is a RUN's exit code (docker build exits with it).
func (c *Client) ImageBuild(ctx context.Context, buildContext io.Reader, opts BuildOptions) (BuildResult, error) {
	q := url.Values{}
	for _, t := range opts.Tags {
		q.Add("t", t)
	}
	if opts.Dockerfile != "" {
		q.Set("dockerfile", opts.Dockerfile)
	}
	if opts.Target != "" {
		q.Set("target", opts.Target)
	}
	if opts.NetworkMode != "" {
		q.Set("networkmode", opts.NetworkMode)
	}
	if opts.Platform != "" {
		q.Set("platform", opts.Platform)
	}
	if len(opts.ExtraHosts) > 0 {
		b, _ := json.Marshal(opts.ExtraHosts)
		q.Set("extrahosts", string(b))
	}
	if opts.ShmSize > 0 {
		q.Set("shmsize", strconv.FormatInt(opts.ShmSize, 10))
	}
	boolParam(q, "nocache", opts.NoCache)
	boolParam(q, "pull", opts.Pull)
	boolParam(q, "q", opts.Quiet)
	q.Set("rm", "1")
	if len(opts.BuildArgs) > 0 {
		b, _ := json.Marshal(opts.BuildArgs)
		q.Set("buildargs", string(b))
	}
	if len(opts.Labels) > 0 {
		b, _ := json.Marshal(opts.Labels)
		q.Set("labels", string(b))
	}
	resp, err := c.do(ctx, request{method: http.MethodPost, path: "/build", query: q, body: buildContext,
		header: http.Header{"Content-Type": {"application/x-tar"}}})
	if err != nil {
		return BuildResult{}, err
	}
	defer resp.Body.Close()
	var res BuildResult
	err = DecodeStream(resp.Body, func(m jsonstream.Message) error {
		if m.Aux != nil {
			var aux struct{ ID string }
			if json.Unmarshal(*m.Aux, &aux) == nil && aux.ID != "" {
				res.ID = aux.ID
			}
		}
		if opts.Progress != nil {
			opts.Progress(m)
		}
		return nil
	})
	return res, err
}

// BuildPrune is POST /build/prune: the bytes it freed.
func (c *Client) BuildPrune(ctx context.Context) (int64, error) {
	var out struct{ SpaceReclaimed int64 }
	err := c.callJSON(ctx, request{method: http.MethodPost, path: "/build/prune"}, &out)
	return out.SpaceReclaimed, err
}
