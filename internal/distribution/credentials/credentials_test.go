package credentials_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/distribution/credentials"
)

// A file as docker writes it, with keys berth must keep.
const dockerWritten = `{
	"auths": {
		"https://index.docker.io/v1/": {"auth": "aHViOmh1YnB3"},
		"http://old.example.com/v1/": {"auth": "b2xkOnB3OmNvbG9u"},
		"127.0.0.1:5000": {"auth": "dTpw"}
	},
	"credHelpers": {"gcr.io": "gcloud"},
	"psFormat": "table {{.ID}}"
}`

func TestGet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(dockerWritten), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := credentials.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, user, pass string
		found            bool
	}{
		{"docker.io", "hub", "hubpw", true},
		{"index.docker.io", "hub", "hubpw", true},
		{"", "hub", "hubpw", true},
		{"old.example.com", "old", "pw:colon", true}, // a password may hold colons
		{"127.0.0.1:5000", "u", "p", true},
		{"127.0.0.1:5001", "", "", false},
	} {
		t.Run(tc.host, func(t *testing.T) {
			a, ok, err := f.Get(tc.host)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.found || a.Username != tc.user || a.Password != tc.pass {
				t.Fatalf("Get(%q) = %+v, %v; want %s/%s, %v", tc.host, a, ok, tc.user, tc.pass, tc.found)
			}
		})
	}
}

func TestSetDeleteKeepsOtherKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "config.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(dockerWritten), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := credentials.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Set("registry.example.com:443", credentials.Auth{Username: "me", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.Delete("old.example.com"); !ok || err != nil {
		t.Fatalf("Delete(old.example.com) = %v, %v", ok, err)
	}
	if ok, _ := f.Delete("nowhere.example.com"); ok {
		t.Fatal("Delete of an absent host reported an entry")
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
	var doc map[string]json.RawMessage
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if string(doc["psFormat"]) != `"table {{.ID}}"` || doc["credHelpers"] == nil {
		t.Fatalf("other keys not kept: %s", b)
	}
	var auths map[string]map[string]string
	if err := json.Unmarshal(doc["auths"], &auths); err != nil {
		t.Fatal(err)
	}
	// Exactly docker's encoding: base64 of user:password under the host key.
	if got := auths["registry.example.com:443"]["auth"]; got != "bWU6cHc=" {
		t.Fatalf("auth %q, want bWU6cHc=", got)
	}
	if _, ok := auths["http://old.example.com/v1/"]; ok {
		t.Fatal("deleted entry still present")
	}
	g, err := credentials.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok, _ := g.Get("registry.example.com:443"); !ok || a.Username != "me" || a.Password != "pw" {
		t.Fatalf("reload: %+v %v", a, ok)
	}
}

func TestLoadMissingAndBroken(t *testing.T) {
	dir := t.TempDir()
	f, err := credentials.Load(filepath.Join(dir, "none.json"))
	if err != nil {
		t.Fatalf("missing file: %v", err)
	}
	if _, ok, _ := f.Get("docker.io"); ok {
		t.Fatal("empty config has a credential")
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := credentials.Load(bad); err == nil {
		t.Fatal("broken config loaded without error")
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", "/some/where")
	p, err := credentials.DefaultPath()
	if err != nil || p != "/some/where/config.json" {
		t.Fatalf("DefaultPath = %q, %v", p, err)
	}
}
