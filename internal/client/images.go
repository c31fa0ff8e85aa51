package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/pkg/authconfig"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"

	"github.com/berth-dev/berth/internal/errdefs"
)

func filtersParam(q url.Values, f map[string][]string) {
	if len(f) == 0 {
		return
	}
	// The current form: {"key": {"value": true}}.
	m := map[string]map[string]bool{}
	for k, vs := range f {
		m[k] = map[string]bool{}
		for _, v := range vs {
			m[k][v] = true
		}
	}
	b, _ := json.Marshal(m)
	q.Set("filters", string(b))
}

// ImageList is GET /images/json; all lists a build's intermediate images
// too.
func (c *Client) ImageList(ctx context.Context, all bool, filters map[string][]string) ([]imagetypes.Summary, error) {
	q := url.Values{}
	boolParam(q, "all", all)
	filtersParam(q, filters)
	var out []imagetypes.Summary
	return out, c.getJSON(ctx, "/images/json", q, &out)
}

// ImageInspect is GET /images/{name}/json.
func (c *Client) ImageInspect(ctx context.Context, name string) (imagetypes.InspectResponse, error) {
	var out imagetypes.InspectResponse
	return out, c.getJSON(ctx, "/images/"+name+"/json", nil, &out)
}

// ImageHistory is GET /images/{name}/history.
func (c *Client) ImageHistory(ctx context.Context, name string) ([]imagetypes.HistoryResponseItem, error) {
	var out []imagetypes.HistoryResponseItem
	return out, c.getJSON(ctx, "/images/"+name+"/history", nil, &out)
}

// ImageTag gives source the name target (repo[:tag]).
func (c *Client) ImageTag(ctx context.Context, source, target string) error {
	n, err := reference.ParseNormalizedNamed(target)
	if err != nil {
		return fmt.Errorf("tag %s: %v: %w", target, err, errdefs.ErrInvalidArgument)
	}
	q := url.Values{"repo": {reference.FamiliarName(n)}}
	if t, ok := n.(reference.Tagged); ok {
		q.Set("tag", t.Tag())
	}
	return c.call(ctx, request{method: http.MethodPost, path: "/images/" + source + "/tag", query: q})
}

// ImageRemove is DELETE /images/{name}.
func (c *Client) ImageRemove(ctx context.Context, name string, force bool) ([]imagetypes.DeleteResponse, error) {
	q := url.Values{}
	if force {
		q.Set("force", "1")
	}
	var out []imagetypes.DeleteResponse
	return out, c.callJSON(ctx, request{method: http.MethodDelete, path: "/images/" + name, query: q}, &out)
}

// PullOptions tune ImagePull.
type PullOptions struct {
	Platform string
	Auth     *registry.AuthConfig
	// Progress receives each progress message; nil discards them.
	Progress func(jsonstream.Message)
}

func authHeader(a *registry.AuthConfig) (http.Header, error) {
	if a == nil {
		return nil, nil
	}
	s, err := authconfig.Encode(*a)
	if err != nil {
		return nil, err
	}
	return http.Header{"X-Registry-Auth": {s}}, nil
}

// ImagePull pulls ref and waits for the end of the progress stream. An
// error inside the stream comes back as a *StreamError with its class.
func (c *Client) ImagePull(ctx context.Context, ref string, opts PullOptions) error {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("pull %s: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	n = reference.TagNameOnly(n)
	q := url.Values{"fromImage": {n.Name()}}
	if d, ok := n.(reference.Digested); ok {
		q.Set("tag", d.Digest().String())
	} else if t, ok := n.(reference.Tagged); ok {
		q.Set("tag", t.Tag())
	}
	if opts.Platform != "" {
		q.Set("platform", opts.Platform)
	}
	h, err := authHeader(opts.Auth)
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, request{method: http.MethodPost, path: "/images/create", query: q, header: h})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return DecodeStream(resp.Body, progressFn(opts.Progress))
}

func progressFn(fn func(jsonstream.Message)) func(jsonstream.Message) error {
	return func(m jsonstream.Message) error {
		if fn != nil {
			fn(m)
		}
		return nil
	}
}

// PushResult is the push's final record.
type PushResult struct {
	Tag    string
	Digest string
	Size   int64
}

// ImagePush pushes ref (name:tag) and returns its digest.
func (c *Client) ImagePush(ctx context.Context, ref string, auth *registry.AuthConfig, progress func(jsonstream.Message)) (PushResult, error) {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return PushResult{}, fmt.Errorf("push %s: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	n = reference.TagNameOnly(n)
	q := url.Values{}
	if t, ok := n.(reference.Tagged); ok {
		q.Set("tag", t.Tag())
	}
	h, err := authHeader(auth)
	if err != nil {
		return PushResult{}, err
	}
	if h == nil {
		// docker sends an empty credential rather than none.
		h = http.Header{"X-Registry-Auth": {"e30="}}
	}
	resp, err := c.do(ctx, request{method: http.MethodPost, path: "/images/" + n.Name() + "/push", query: q, header: h})
	if err != nil {
		return PushResult{}, err
	}
	defer resp.Body.Close()
	var res PushResult
	err = DecodeStream(resp.Body, func(m jsonstream.Message) error {
		if m.Aux != nil {
			_ = json.Unmarshal(*m.Aux, &res)
		}
		if progress != nil {
			progress(m)
		}
		return nil
	})
	return res, err
}

// ImageSave returns a docker-archive tar of the images; the caller closes
// it.
func (c *Client) ImageSave(ctx context.Context, names ...string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/images/get", query: url.Values{"names": names}})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ImageLoad loads a docker-archive or OCI layout tar and returns the
// daemon's lines ("Loaded image: busybox:latest").
func (c *Client) ImageLoad(ctx context.Context, tar io.Reader) ([]string, error) {
	resp, err := c.do(ctx, request{method: http.MethodPost, path: "/images/load", body: tar,
		header: http.Header{"Content-Type": {"application/x-tar"}}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var lines []string
	err = DecodeStream(resp.Body, func(m jsonstream.Message) error {
		if s := strings.TrimSpace(m.Stream); s != "" {
			lines = append(lines, s)
		}
		return nil
	})
	return lines, err
}

// ImportOptions tune ImageImport.
type ImportOptions struct {
	Reference string // name[:tag] to tag the image with
	Message   string
	Changes   []string
	Platform  string
}

// ImageImport makes an image from a rootfs tar and returns its ID.
func (c *Client) ImageImport(ctx context.Context, tar io.Reader, opts ImportOptions) (string, error) {
	q := url.Values{"fromSrc": {"-"}}
	if opts.Reference != "" {
		n, err := reference.ParseNormalizedNamed(opts.Reference)
		if err != nil {
			return "", fmt.Errorf("import: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		q.Set("repo", n.Name())
		if t, ok := n.(reference.Tagged); ok {
			q.Set("tag", t.Tag())
		}
	}
	if opts.Message != "" {
		q.Set("message", opts.Message)
	}
	if opts.Platform != "" {
		q.Set("platform", opts.Platform)
	}
	for _, ch := range opts.Changes {
		q.Add("changes", ch)
	}
	resp, err := c.do(ctx, request{method: http.MethodPost, path: "/images/create", query: q, body: tar})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	id := ""
	err = DecodeStream(resp.Body, func(m jsonstream.Message) error {
		if m.Status != "" {
			id = m.Status
		}
		return nil
	})
	return id, err
}

// ImagePrune is POST /images/prune.
func (c *Client) ImagePrune(ctx context.Context, filters map[string][]string) (imagetypes.PruneReport, error) {
	q := url.Values{}
	filtersParam(q, filters)
	var out imagetypes.PruneReport
	return out, c.callJSON(ctx, request{method: http.MethodPost, path: "/images/prune", query: q}, &out)
}

// Login checks a credential with the daemon (POST /auth).
func (c *Client) Login(ctx context.Context, auth registry.AuthConfig) (registry.AuthResponse, error) {
	var out registry.AuthResponse
	return out, c.callJSON(ctx, request{method: http.MethodPost, path: "/auth", json: auth}, &out)
}

func boolParam(q url.Values, key string, v bool) {
	if v {
		q.Set(key, "1")
	}
}

func intParam(q url.Values, key string, v *int) {
	if v != nil {
		q.Set(key, strconv.Itoa(*v))
	}
}
