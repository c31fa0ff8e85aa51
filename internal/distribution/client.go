package distribution

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Config configures a Client. The zero value works: loopback registries
// over http, everything else over https, 4 transfers at a time.
type Config struct {
	// Insecure lists registries ("host" or "host:port") reached over plain
	// HTTP (after trying HTTPS), as dockerd's insecure-registries. Loopback
	// registries always are.
	Insecure []string
	// Transport is the base HTTP transport; nil means a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
	// Jobs is how many blobs move at once; 0 means 4.
	Jobs int
	// Retries is how many times a failed request or a blob whose transfer
	// broke off is tried again; 0 means 4. Backoff is the first wait,
	// doubled each time; 0 means 200ms.
	Retries int
	Backoff time.Duration
	// UserAgent is sent with every request; empty means "berth".
	UserAgent string
	// StallTimeout is how long a transfer may go without a byte (or a
	// request without an answer) before it is dropped and retried; 0 means
	// one minute. A registry that keeps a connection open but sends
	// nothing would otherwise hang a pull forever.
	StallTimeout time.Duration
	// CertsDir holds per-registry TLS settings laid out as docker's
	// /etc/docker/certs.d (<host[:port]>/*.crt CAs, *.cert/*.key client
	// pairs); empty means none. Ignored when Transport is set.
	CertsDir string
}

// AuthConfig is a registry credential, the same fields as docker's
// X-Registry-Auth header and config.json entries. The zero value is
// anonymous.
type AuthConfig struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

func (a *AuthConfig) authenticator() authn.Authenticator {
	if a == nil || *a == (AuthConfig{}) {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      a.Username,
		Password:      a.Password,
		IdentityToken: a.IdentityToken,
		RegistryToken: a.RegistryToken,
	})
}

// Client talks to registries. It is safe for concurrent use; it keeps no
// connection state between calls other than the transport's idle pool.
type Client struct {
	cfg  Config
	base http.RoundTripper
}

// New returns a Client for cfg.
func New(cfg Config) *Client {
	if cfg.Jobs <= 0 {
		cfg.Jobs = 4
	}
	if cfg.Retries <= 0 {
		cfg.Retries = 4
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 200 * time.Millisecond
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "berth"
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = time.Minute
	}
	base := cfg.Transport
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Parallel blob fetches from one registry need more than the
		// default two idle connections per host to be reused.
		t.MaxIdleConnsPerHost = 16
		t.ResponseHeaderTimeout = cfg.StallTimeout
		base = t
		if cfg.CertsDir != "" {
			base = &certsTransport{dir: cfg.CertsDir, base: t, byHost: map[string]http.RoundTripper{}, errs: map[string]error{}}
		}
	}
	c := &Client{cfg: cfg}
	c.base = &guard{inner: base, allowHTTP: c.insecure}
	return c
}

// insecure says whether host ("host" or "host:port") may be reached over
// plain HTTP.
func (c *Client) insecure(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	if ip, err := netip.ParseAddr(h); err == nil && ip.IsLoopback() {
		return true
	}
	for _, s := range c.cfg.Insecure {
		if s == host || s == h {
			return true
		}
	}
	return false
}

// guard refuses plain-HTTP requests to hosts not allowed them.
// go-containerregistry itself falls back to http for RFC 1918 and *.local
// registries, which dockerd does not: credentials would cross the network
// in clear.
type guard struct {
	inner     http.RoundTripper
	allowHTTP func(host string) bool
}

func (g *guard) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && !g.allowHTTP(r.URL.Host) {
		return nil, fmt.Errorf("%s %s: plain http to a registry not configured insecure: %w", r.Method, r.URL.Redacted(), errdefs.ErrForbidden)
	}
	return g.inner.RoundTrip(r)
}

// gname converts a docker-normalised reference to go-containerregistry's.
func (c *Client) gname(ref reference.Named) (name.Reference, error) {
	var opts []name.Option
	if c.insecure(reference.Domain(ref)) {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref.String(), opts...)
	if err != nil {
		return nil, fmt.Errorf("reference %s: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	return r, nil
}

// remoteOptions are the options of every remote call: our transport,
// retry policy and auth.
func (c *Client) remoteOptions(ctx context.Context, auth *AuthConfig, base http.RoundTripper) []remote.Option {
	if base == nil {
		base = c.base
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(base),
		remote.WithAuth(auth.authenticator()),
		// One more than our own queue: the config is fetched beside it.
		remote.WithJobs(c.cfg.Jobs + 1),
		remote.WithUserAgent(c.cfg.UserAgent),
		remote.WithRetryBackoff(remote.Backoff{Duration: c.cfg.Backoff, Factor: 2, Jitter: 0.1, Steps: c.cfg.Retries + 1}),
		remote.WithRetryPredicate(retryable),
	}
}

// retrying is the base transport with go-containerregistry's retries of
// 5xx answers and dropped requests, for requests berth builds itself.
func (c *Client) retrying() http.RoundTripper {
	return transport.NewRetry(c.base,
		transport.WithRetryBackoff(transport.Backoff{Duration: c.cfg.Backoff, Factor: 2, Jitter: 0.1, Steps: c.cfg.Retries + 1}),
		transport.WithRetryPredicate(retryable),
		transport.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout))
}

// retryable says whether err is worth another try: the connection broke or
// the registry had a passing failure (5xx, 429). A digest mismatch or a
// 4xx answer would come back the same.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode >= 500 || te.StatusCode == http.StatusTooManyRequests || te.StatusCode == http.StatusRequestTimeout
	}
	if errors.Is(err, errdefs.ErrForbidden) || errors.Is(err, errdefs.ErrInvalidArgument) {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// classify wraps a registry error with berth's error class so callers (and
// the API's status codes) can tell a wrong password from a missing image.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch {
		case te.StatusCode == http.StatusUnauthorized:
			return fmt.Errorf("%w: %w", err, errdefs.ErrUnauthorized)
		case te.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%w: %w", err, errdefs.ErrForbidden)
		case te.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
		case te.StatusCode >= 500 || te.StatusCode == http.StatusTooManyRequests:
			return fmt.Errorf("%w: %w", err, errdefs.ErrUnavailable)
		}
		for _, d := range te.Errors {
			switch d.Code {
			case transport.UnauthorizedErrorCode:
				return fmt.Errorf("%w: %w", err, errdefs.ErrUnauthorized)
			case transport.DeniedErrorCode:
				return fmt.Errorf("%w: %w", err, errdefs.ErrForbidden)
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
			}
		}
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", err, errdefs.ErrUnavailable)
	}
	return err
}

// backoff waits before try number attempt (1-based), or until ctx ends.
func (c *Client) backoff(ctx context.Context, attempt int) error {
	d := c.cfg.Backoff << (attempt - 1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
