package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/common"

	"github.com/berth-dev/berth/internal/errdefs"
)

// MaxAPIVersion is the newest API version the client speaks; it settles
// on the server's if that is older.
const MaxAPIVersion = "1.51"

// DefaultHost is where berth daemon listens by default.
const DefaultHost = "unix:///run/berth/berth.sock"

// Client talks to one daemon. It is safe for concurrent use.
type Client struct {
	host    *url.URL
	tls     *tls.Config
	http    *http.Client
	dial    func(ctx context.Context) (net.Conn, error)
	version string // fixed with WithVersion, else negotiated once

	mu         sync.Mutex
	negotiated bool
}

// Option configures New.
type Option func(*Client)

// WithTLS speaks TLS to a tcp host (with a client certificate for a
// daemon started with --tlsverify).
func WithTLS(cfg *tls.Config) Option { return func(c *Client) { c.tls = cfg } }

// WithVersion pins the API version instead of negotiating.
func WithVersion(v string) Option {
	return func(c *Client) { c.version, c.negotiated = v, true }
}

// New returns a client for host: "unix:///path", "tcp://host:port" or
// "" for DefaultHost. Nothing is dialled until the first call.
func New(host string, opts ...Option) (*Client, error) {
	if host == "" {
		host = DefaultHost
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("host %q: %v: %w", host, err, errdefs.ErrInvalidArgument)
	}
	c := &Client{host: u, version: MaxAPIVersion}
	for _, o := range opts {
		o(c)
	}
	var d net.Dialer
	switch u.Scheme {
	case "unix":
		// The path as written: a socket path may hold '#' or '?', which
		// URL parsing would take for a fragment or query.
		path := strings.TrimPrefix(host, "unix://")
		c.dial = func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "unix", path) }
	case "tcp":
		c.dial = func(ctx context.Context) (net.Conn, error) {
			conn, err := d.DialContext(ctx, "tcp", u.Host)
			if err != nil || c.tls == nil {
				return conn, err
			}
			cfg := c.tls.Clone()
			if cfg.ServerName == "" {
				cfg.ServerName = u.Hostname()
			}
			tc := tls.Client(conn, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				return nil, err
			}
			return tc, nil
		}
	default:
		return nil, fmt.Errorf("host %q: want unix:// or tcp://: %w", host, errdefs.ErrInvalidArgument)
	}
	c.http = &http.Client{Transport: &http.Transport{
		DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return c.dial(ctx) },
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}}
	return c, nil
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// APIVersion is the API version in use (after negotiation, if it ran).
func (c *Client) APIVersion() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// negotiate settles the version once: the lower of ours and the
// server's API-Version header from /_ping.
func (c *Client) negotiate(ctx context.Context) error {
	c.mu.Lock()
	done := c.negotiated
	c.mu.Unlock()
	if done {
		return nil
	}
	p, err := c.Ping(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.APIVersion != "" && versionLess(p.APIVersion, c.version) {
		c.version = p.APIVersion
	}
	c.negotiated = true
	return nil
}

func versionLess(a, b string) bool {
	var am, an, bm, bn int
	fmt.Sscanf(a, "%d.%d", &am, &an)
	fmt.Sscanf(b, "%d.%d", &bm, &bn)
	return am < bm || (am == bm && an < bn)
}

// request is one API call.
type request struct {
	method, path string
	query        url.Values
	body         io.Reader
	json         any // encoded as the body when set
	header       http.Header
	// raw skips the version prefix (/_ping).
	raw bool
}

func (c *Client) url(req request) string {
	p := req.path
	if !req.raw {
		p = "/v" + c.APIVersion() + p
	}
	// Always "http": for tcp+TLS the dialer has done the handshake, and
	// the transport speaks HTTP/1.1 over the connection it returns.
	u := url.URL{Scheme: "http", Host: "berth", Path: p}
	if len(req.query) > 0 {
		u.RawQuery = req.query.Encode()
	}
	return u.String()
}

// do sends req and returns the response if its status is below 400;
// otherwise it reads docker's error body and returns it as an error of
// the status's errdefs class.
func (c *Client) do(ctx context.Context, req request) (*http.Response, error) {
	if !req.raw {
		if err := c.negotiate(ctx); err != nil {
			return nil, err
		}
	}
	body := req.body
	if req.json != nil {
		b, err := json.Marshal(req.json)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, c.url(req), body)
	if err != nil {
		return nil, err
	}
	for k, vs := range req.header {
		hr.Header[k] = vs
	}
	if req.json != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, c.connError(err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, statusError(resp)
	}
	return resp, nil
}

// connError says what a failed connection means to a user: usually that
// no daemon runs there.
func (c *Client) connError(err error) error {
	var ne *net.OpError
	if errors.As(err, &ne) && ne.Op == "dial" && errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("permission denied while trying to connect to the berth daemon socket at %s (the socket is root:docker 0660; run as root or join the docker group): %w", c.host, errdefs.ErrForbidden)
	}
	if errors.As(err, &ne) && ne.Op == "dial" {
		return fmt.Errorf("Cannot connect to the berth daemon at %s. Is the daemon running? (start it with: berth daemon): %w", c.host, errdefs.ErrUnavailable) //nolint:staticcheck // docker's words
	}
	return err
}

// statusError turns an error response into its errdefs class, keeping
// the daemon's message.
func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	msg := strings.TrimSpace(string(b))
	var er common.ErrorResponse
	if json.Unmarshal(b, &er) == nil && er.Message != "" {
		msg = er.Message
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return fmt.Errorf("%s: %w", msg, classOf(resp.StatusCode))
}

func classOf(status int) error {
	switch status {
	case http.StatusNotFound:
		return errdefs.ErrNotFound
	case http.StatusConflict:
		return errdefs.ErrConflict
	case http.StatusBadRequest:
		return errdefs.ErrInvalidArgument
	case http.StatusUnauthorized:
		return errdefs.ErrUnauthorized
	case http.StatusForbidden:
		return errdefs.ErrForbidden
	case http.StatusNotModified:
		return errdefs.ErrNotModified
	case http.StatusNotImplemented:
		return errdefs.ErrNotImplemented
	case http.StatusServiceUnavailable:
		return errdefs.ErrUnavailable
	}
	return errServer
}

// errServer classes a 500: the daemon failed, not the request.
var errServer = errors.New("server error")

func (c *Client) getJSON(ctx context.Context, path string, query url.Values, out any) error {
	return c.callJSON(ctx, request{method: http.MethodGet, path: path, query: query}, out)
}

func (c *Client) callJSON(ctx context.Context, req request, out any) error {
	resp, err := c.do(ctx, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", req.method, req.path, err)
	}
	return nil
}

func (c *Client) call(ctx context.Context, req request) error {
	return c.callJSON(ctx, req, nil)
}

// hijack sends req asking to upgrade the connection to a raw stream (as
// attach and exec start do) and returns the connection once the daemon
// answered 101 (or 200). Reads go through the returned reader, which may
// hold bytes read with the response.
func (c *Client) hijack(ctx context.Context, req request) (*HijackedConn, error) {
	if err := c.negotiate(ctx); err != nil {
		return nil, err
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, c.connError(err)
	}
	var body []byte
	if req.json != nil {
		if body, err = json.Marshal(req.json); err != nil {
			conn.Close()
			return nil, err
		}
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, c.url(req), bytes.NewReader(body))
	if err != nil {
		conn.Close()
		return nil, err
	}
	hr.Header.Set("Connection", "Upgrade")
	hr.Header.Set("Upgrade", "tcp")
	if req.json != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if err := hr.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, hr)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode >= 400 {
		defer conn.Close()
		return nil, statusError(resp)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != http.StatusOK {
		conn.Close()
		return nil, fmt.Errorf("%s %s: unexpected status %s", req.method, req.path, resp.Status)
	}
	return &HijackedConn{Conn: conn, Reader: br, MediaType: resp.Header.Get("Content-Type")}, nil
}

// HijackedConn is an attach or exec session: write stdin to Conn, read
// output from Reader (multiplexed unless the container has a tty: see
// StdCopy). Close it when done; CloseWrite ends stdin only.
type HijackedConn struct {
	Conn      net.Conn
	Reader    *bufio.Reader
	MediaType string
}

// CloseWrite signals the end of stdin.
func (h *HijackedConn) CloseWrite() error {
	if cw, ok := h.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close ends the session.
func (h *HijackedConn) Close() error { return h.Conn.Close() }
