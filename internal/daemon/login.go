package daemon

import (
	"context"

	"github.com/berth-dev/berth/internal/distribution"
)

// LoginOptions are docker login's: the registry ("host[:port]", empty for
// Docker Hub) and the credential.
type LoginOptions struct {
	Registry string
	Auth     distribution.AuthConfig
}

// LoginResult is the Docker API's answer to POST /auth.
type LoginResult struct {
	Status        string // "Login Succeeded"
	IdentityToken string // set when the registry issued a refresh token (never, yet)
}

// Login checks a credential against a registry. Like dockerd it stores
// nothing; the client keeps the credential (berth login writes docker's
// config.json through distribution/credentials). A wrong credential is
// errdefs.ErrUnauthorized.
func (e *Engine) Login(ctx context.Context, opts LoginOptions) (LoginResult, error) {
	if err := e.Registry().Login(ctx, opts.Registry, opts.Auth); err != nil {
		return LoginResult{}, err
	}
	return LoginResult{Status: "Login Succeeded"}, nil
}
