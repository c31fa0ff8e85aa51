package client

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/errdefs"
)

// FromEnv is New for the host the environment names, as the docker CLI
// reads it: BERTH_HOST, else DOCKER_HOST, else DefaultHost; with
// DOCKER_TLS_VERIFY set, TLS with ca.pem, cert.pem and key.pem from
// DOCKER_CERT_PATH (default ~/.docker); DOCKER_API_VERSION pins the
// version.
func FromEnv(opts ...Option) (*Client, error) {
	host := os.Getenv("BERTH_HOST")
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	var envOpts []Option
	if os.Getenv("DOCKER_TLS_VERIFY") != "" {
		dir := os.Getenv("DOCKER_CERT_PATH")
		if dir == "" {
			home, _ := os.UserHomeDir()
			dir = filepath.Join(home, ".docker")
		}
		cfg, err := tlsFromDir(dir)
		if err != nil {
			return nil, err
		}
		envOpts = append(envOpts, WithTLS(cfg))
	}
	if v := os.Getenv("DOCKER_API_VERSION"); v != "" {
		envOpts = append(envOpts, WithVersion(v))
	}
	return New(host, append(envOpts, opts...)...)
}

func tlsFromDir(dir string) (*tls.Config, error) {
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("tls: %s holds no PEM certificate: %w", filepath.Join(dir, "ca.pem"), errdefs.ErrInvalidArgument)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}
