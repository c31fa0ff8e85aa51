// Package credentials reads and writes registry credentials in docker's
// client config file, so a `docker login` is honoured by berth and a
// `berth login` by docker: $DOCKER_CONFIG/config.json, or
// ~/.docker/config.json, whose "auths" map a registry to
// {"auth": base64("user:password")} (or an identity token).
//
// Credential helpers are honoured as docker does: a registry named in
// "credHelpers", or every registry when "credsStore" is set, keeps its
// secret in the helper program docker-credential-<name> (get, store and
// erase, the JSON protocol of docker/docker-credential-helpers), and
// "auths" keeps at most an empty entry for it. Every other key of the file
// (proxies, aliases, psFormat…) is written back as it was.
//
// It knows nothing of registries' protocols. It owns the one file it is
// given, written atomically (temp file, fsync, rename) with mode 0600,
// since it holds passwords.
package credentials

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Auth is one registry credential.
type Auth struct {
	Username      string
	Password      string
	IdentityToken string
}

// IndexServer is docker's config.json key for Docker Hub.
const IndexServer = "https://index.docker.io/v1/"

// DefaultPath is where docker keeps its client config: $DOCKER_CONFIG/
// config.json, else ~/.docker/config.json.
func DefaultPath() (string, error) {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("docker config: %w", err)
	}
	return filepath.Join(home, ".docker", "config.json"), nil
}

// Key is the config.json key for registry host: Docker Hub's legacy URL for
// docker.io and its aliases, the bare host[:port] otherwise.
func Key(host string) string {
	h := normalize(host)
	switch h {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		return IndexServer
	}
	return h
}

// normalize reduces a config key or registry name to host[:port]: docker
// has written keys as "https://host/v1/", "http://host" and "host".
func normalize(s string) string {
	s = strings.TrimPrefix(s, "https://")
	s = strings.TrimPrefix(s, "http://")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	return strings.ToLower(s)
}

// File is a loaded config.json. It is not safe for concurrent use.
type File struct {
	path  string
	other map[string]json.RawMessage // every key but "auths"
	auths map[string]entry

	credsStore  string
	credHelpers map[string]string
}

type entry struct {
	Auth          string `json:"auth,omitempty"`
	Username      string `json:"username,omitempty"` // old docker versions, read only
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	// Email was written by docker before 1.11; kept when present.
	Email string `json:"email,omitempty"`
}

// Load reads path; a missing file is an empty config.
func Load(path string) (*File, error) {
	f := &File{path: path, other: map[string]json.RawMessage{}, auths: map[string]entry{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return f, nil
	}
	if err := json.Unmarshal(b, &f.other); err != nil {
		return nil, fmt.Errorf("read %s: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	if raw, ok := f.other["auths"]; ok {
		if err := json.Unmarshal(raw, &f.auths); err != nil {
			return nil, fmt.Errorf("read %s: auths: %v: %w", path, err, errdefs.ErrInvalidArgument)
		}
		if f.auths == nil {
			f.auths = map[string]entry{}
		}
		delete(f.other, "auths")
	}
	// Kept in other as well, so they are written back untouched.
	if raw, ok := f.other["credsStore"]; ok {
		_ = json.Unmarshal(raw, &f.credsStore)
	}
	if raw, ok := f.other["credHelpers"]; ok {
		_ = json.Unmarshal(raw, &f.credHelpers)
	}
	return f, nil
}

// Helper names the credential helper that keeps host's secret; empty
// means the secret is stored in the file itself.
func (f *File) Helper(host string) string { return f.helper(host) }

// helper names the credential helper that keeps host's secret, if any.
func (f *File) helper(host string) string {
	want := Key(host)
	for k, h := range f.credHelpers {
		if Key(k) == want && h != "" {
			return h
		}
	}
	return f.credsStore
}

// Path is the file's location.
func (f *File) Path() string { return f.path }

// Get returns the credential for registry host, if one is stored.
func (f *File) Get(host string) (Auth, bool, error) {
	if h := f.helper(host); h != "" {
		return helperGet(h, Key(host))
	}
	k, e, ok := f.find(host)
	if !ok {
		return Auth{}, false, nil
	}
	a := Auth{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken}
	if e.Auth != "" {
		dec, err := base64.StdEncoding.DecodeString(e.Auth)
		if err != nil {
			return Auth{}, false, fmt.Errorf("%s: auths[%q]: %v: %w", f.path, k, err, errdefs.ErrInvalidArgument)
		}
		user, pass, found := strings.Cut(string(dec), ":")
		if !found {
			return Auth{}, false, fmt.Errorf("%s: auths[%q]: no colon in user:password: %w", f.path, k, errdefs.ErrInvalidArgument)
		}
		a.Username, a.Password = user, pass
	}
	return a, true, nil
}

// find looks host up by its exact key first, then by any key that
// normalises to the same host, as docker does for keys written by old
// versions.
func (f *File) find(host string) (string, entry, bool) {
	want := Key(host)
	if e, ok := f.auths[want]; ok {
		return want, e, true
	}
	for k, e := range f.auths {
		if Key(k) == want {
			return k, e, true
		}
	}
	return "", entry{}, false
}

// Set stores a credential for host, replacing any other entry for it. With
// a helper for host, the secret goes to the helper at once and "auths"
// keeps an empty entry (as docker writes it); otherwise it is kept until
// Save.
func (f *File) Set(host string, a Auth) error {
	if _, err := f.Delete(host); err != nil {
		return err
	}
	if h := f.helper(host); h != "" {
		if err := helperStore(h, Key(host), a); err != nil {
			return err
		}
		f.auths[Key(host)] = entry{}
		return nil
	}
	e := entry{IdentityToken: a.IdentityToken}
	if a.Username != "" || a.Password != "" {
		e.Auth = base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + a.Password))
	}
	f.auths[Key(host)] = e
	return nil
}

// Delete removes every entry for host (and erases it from its helper) and
// reports whether there was one.
func (f *File) Delete(host string) (bool, error) {
	want := Key(host)
	found := false
	for k := range f.auths {
		if Key(k) == want {
			delete(f.auths, k)
			found = true
		}
	}
	if h := f.helper(host); h != "" {
		erased, err := helperErase(h, want)
		if err != nil {
			return found, err
		}
		found = found || erased
	}
	return found, nil
}

// Save writes the file atomically with mode 0600, creating its directory.
func (f *File) Save() error {
	out := make(map[string]any, len(f.other)+1)
	for k, v := range f.other {
		out[k] = v
	}
	out["auths"] = f.auths
	b, err := json.MarshalIndent(out, "", "\t")
	if err != nil {
		return err
	}
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save %s: %w", f.path, err)
	}
	tmp, err := os.CreateTemp(dir, ".config.json-")
	if err != nil {
		return fmt.Errorf("save %s: %w", f.path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing to remove
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save %s: %w", f.path, err)
	}
	// Keep the owner of an existing file: a user's config changed by root
	// through sudo must stay readable by that user.
	if st, err := os.Stat(f.path); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			_ = tmp.Chown(int(sys.Uid), int(sys.Gid))
		}
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save %s: %w", f.path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save %s: %w", f.path, err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("save %s: %w", f.path, err)
	}
	return nil
}
