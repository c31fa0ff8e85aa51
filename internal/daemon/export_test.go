package daemon

import "github.com/berth-dev/berth/internal/distribution"

// SetRegistry replaces e's registry client, so tests can shorten retries
// and backoff (Config does not expose them: a daemon has no use for it).
func SetRegistry(e *Engine, cfg distribution.Config) {
	cfg.Insecure, cfg.CertsDir = e.cfg.InsecureRegistries, e.cfg.CertsDir
	e.registry = distribution.New(cfg)
}
