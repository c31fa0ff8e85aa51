package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Binary is where Debian's docker-registry package installs the registry.
const Binary = "/usr/bin/docker-registry"

// Auth selects how the registry authenticates clients.
type Auth int

const (
	// Anonymous lets anyone pull and push.
	Anonymous Auth = iota
	// Basic requires the htpasswd user Options.User / Options.Password.
	Basic
	// Token requires bearer tokens from the registry's own token server,
	// which hands them out for Options.User / Options.Password.
	Token
)

// Options configure Start. The zero value is an anonymous registry.
type Options struct {
	Auth Auth
	// TLS serves HTTPS with a certificate for 127.0.0.1 and localhost,
	// signed by a throwaway CA (Registry.CAFile).
	TLS      bool
	User     string // default "berth"
	Password string // default "s3cret"
}

// Registry is a running docker-registry.
type Registry struct {
	// Host is "127.0.0.1:PORT", the registry part of image references.
	Host string
	// User and Password are the credentials it accepts (Basic, Token).
	User, Password string
	// Dir holds the registry's config, storage and log.
	Dir string
	// TokenServer is set when Auth is Token.
	TokenServer *TokenServer
	// CAFile is the PEM certificate of the CA that signed the registry's
	// TLS certificate (Options.TLS), for clients to trust.
	CAFile string

	tlsConf string
	client  *http.Client

	cmd    *exec.Cmd
	waitCh chan error
}

// Start runs a registry for the life of t. It skips t when the binary is
// missing rather than failing, with the package to install.
func Start(t testing.TB, opts Options) *Registry {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Skipf("needs %s: apt-get install docker-registry", Binary)
	}
	if opts.User == "" {
		opts.User = "berth"
	}
	if opts.Password == "" {
		opts.Password = "s3cret"
	}
	r := &Registry{User: opts.User, Password: opts.Password, Dir: t.TempDir()}
	if opts.Auth == Anonymous {
		// Credentials mean nothing to an anonymous registry.
		r.User, r.Password = "", ""
	}

	authConf := ""
	switch opts.Auth {
	case Basic:
		hash, err := bcrypt.GenerateFromPassword([]byte(opts.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(r.Dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(opts.User+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		authConf = fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", htpasswd)
	case Token:
		ts := startTokenServer(t, r.Dir, opts.User, opts.Password)
		r.TokenServer = ts
		authConf = fmt.Sprintf("auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
			ts.Realm, tokenService, tokenIssuer, ts.certFile)
	}

	r.client = http.DefaultClient
	if opts.TLS {
		if err := r.makeCerts(); err != nil {
			t.Fatal(err)
		}
	}

	var lastErr error
	// A free port can be taken between probing it and the registry binding
	// it; try a few ports before giving up.
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		r.Host = "127.0.0.1:" + strconv.Itoa(port)
		if lastErr = r.start(authConf); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("start docker-registry: %v", lastErr)
	}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(r.Dir, "registry.log")); err == nil {
				t.Logf("docker-registry log (tail):\n%s", tail(b, 4000))
			}
		}
	})
	return r
}

func (r *Registry) start(authConf string) error {
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	conf := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
%s%s`, filepath.Join(r.Dir, "storage"), r.Host, hex.EncodeToString(secret), r.tlsConf, authConf)
	confFile := filepath.Join(r.Dir, "config.yml")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(r.Dir, "registry.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(Binary, "serve", confFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a stray child cannot outlive the cleanup,
	// and Pdeathsig so a killed test binary does not leave it running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	r.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			r.cmd = nil
			b, _ := os.ReadFile(filepath.Join(r.Dir, "registry.log"))
			return fmt.Errorf("exited early: %v: %s", err, tail(b, 2000))
		default:
		}
		resp, err := r.client.Get(r.URL() + "/v2/")
		if err == nil {
			resp.Body.Close()
			// 200 anonymous, 401 with auth: either way it serves.
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				r.waitCh = exited
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.waitCh = exited
	r.stop()
	return fmt.Errorf("not serving on %s after 10s", r.Host)
}

func (r *Registry) stop() {
	if t, ok := r.client.Transport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
	if r.cmd == nil {
		return
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-r.waitCh:
	case <-time.After(5 * time.Second):
	}
	r.cmd = nil
}

// URL is the registry's base URL: http://HOST, or https://HOST with TLS.
func (r *Registry) URL() string {
	if r.tlsConf != "" {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// Ref returns "HOST/repo" for a repository path such as "test/busybox:1".
func (r *Registry) Ref(repoAndTag string) string { return r.Host + "/" + repoAndTag }

// Seed copies the OCI layout at dir into the registry as ref ("repo:tag"),
// with skopeo as an independent writer. It skips t when skopeo is missing.
func (r *Registry) Seed(t testing.TB, layout, ref string) {
	t.Helper()
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("needs skopeo: apt-get install skopeo")
	}
	args := []string{"copy", "--quiet", "--dest-tls-verify=false"}
	if r.User != "" {
		args = append(args, "--dest-creds", r.User+":"+r.Password)
	}
	args = append(args, "oci:"+layout, "docker://"+r.Ref(ref))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, skopeo, args...)
	// skopeo reads the user's registries.conf and auth files; keep it off
	// anything the host user has configured.
	cmd.Env = append(os.Environ(), "REGISTRY_AUTH_FILE="+filepath.Join(r.Dir, "skopeo-auth.json"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy to %s: %v: %s", r.Ref(ref), err, out)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte, n int) []byte {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
