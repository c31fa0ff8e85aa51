package distribution

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
)

// certsTransport gives each registry host the TLS settings of its
// directory under dir, laid out as docker's /etc/docker/certs.d:
//
//	<dir>/<host[:port]>/*.crt            CAs trusted for that registry (besides the system's)
//	<dir>/<host[:port]>/NAME.cert + NAME.key   a client certificate to present
//
// A host without a directory uses the base transport. Each host's
// directory is read once per Client.
type certsTransport struct {
	dir  string
	base *http.Transport

	mu     sync.Mutex
	byHost map[string]http.RoundTripper
	errs   map[string]error
}

func (c *certsTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt, err := c.forHost(r.URL.Host)
	if err != nil {
		return nil, err
	}
	return rt.RoundTrip(r)
}

func (c *certsTransport) forHost(host string) (http.RoundTripper, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rt, ok := c.byHost[host]; ok {
		return rt, c.errs[host]
	}
	rt, err := c.load(host)
	if rt == nil {
		rt = c.base
	}
	c.byHost[host], c.errs[host] = rt, err
	return rt, err
}

func (c *certsTransport) load(host string) (http.RoundTripper, error) {
	// A host name with a path separator or a dot-dot would reach outside
	// dir; registry hosts never have them.
	if host == "" || strings.ContainsAny(host, `/\`) || strings.Contains(host, "..") {
		return nil, nil
	}
	dir := filepath.Join(c.dir, host)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry certificates %s: %w", dir, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".crt"):
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				return nil, fmt.Errorf("registry certificates: %w", err)
			}
			if !pool.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("registry certificates: %s: no PEM certificate: %w", filepath.Join(dir, name), errdefs.ErrInvalidArgument)
			}
		case strings.HasSuffix(name, ".cert"):
			keyFile := filepath.Join(dir, strings.TrimSuffix(name, ".cert")+".key")
			pair, err := tls.LoadX509KeyPair(filepath.Join(dir, name), keyFile)
			if err != nil {
				return nil, fmt.Errorf("registry client certificate %s: %v: %w", filepath.Join(dir, name), err, errdefs.ErrInvalidArgument)
			}
			cfg.Certificates = append(cfg.Certificates, pair)
		}
	}
	t := c.base.Clone()
	t.TLSClientConfig = cfg
	return t, nil
}
