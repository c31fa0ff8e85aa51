package distribution

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-dev/berth/internal/errdefs"
)

// DockerHub is the registry host that images without one come from, and
// IndexServer the key docker uses for it in config.json.
const (
	DockerHub   = "docker.io"
	IndexServer = "https://index.docker.io/v1/"
)

// Login checks auth against registry ("host[:port]"; empty means Docker
// Hub) by going through the registry's challenge with it and asking for
// /v2/, as docker login does. It stores nothing: saving the credential is
// the caller's (see package credentials). A wrong credential is
// errdefs.ErrUnauthorized.
func (c *Client) Login(ctx context.Context, registry string, auth AuthConfig) error {
	if err := c.login(ctx, registry, auth); err != nil {
		shown := registry
		if shown == "" {
			shown = DockerHub
		}
		return fmt.Errorf("login %s: %w", shown, err)
	}
	return nil
}

func (c *Client) login(ctx context.Context, registry string, auth AuthConfig) error {
	if registry == "" || registry == IndexServer || registry == "index.docker.io" {
		registry = DockerHub
	}
	var opts []name.Option
	if c.insecure(registry) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(registry, opts...)
	if err != nil {
		return fmt.Errorf("registry %q: %v: %w", registry, err, errdefs.ErrInvalidArgument)
	}
	// No scope: the token (if the registry uses tokens) is asked for with
	// the credentials alone, which is what a token server checks.
	rt, err := transport.NewWithContext(ctx, reg, auth.authenticator(), c.base, nil)
	if err != nil {
		return classify(err)
	}
	scheme := reg.Scheme()
	if !c.insecure(registry) {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return classify(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return classify(err)
	}
	return nil
}
