package credentials_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/distribution/credentials"
)

// The test binary doubles as a credential helper when run under the name
// docker-credential-berthtest: a real program speaking the helper protocol
// over stdin/stdout, keeping its secrets in a JSON file named by
// $BERTH_TEST_HELPER_STORE.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "docker-credential-berthtest" {
		os.Exit(fakeHelper(os.Args[1]))
	}
	os.Exit(m.Run())
}

func fakeHelper(action string) int {
	path := os.Getenv("BERTH_TEST_HELPER_STORE")
	store := map[string][2]string{}
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &store)
	}
	in, _ := io.ReadAll(os.Stdin)
	switch action {
	case "get", "erase":
		server := strings.TrimSpace(string(in))
		c, ok := store[server]
		if !ok {
			fmt.Println("credentials not found in native keychain")
			return 1
		}
		if action == "get" {
			b, _ := json.Marshal(map[string]string{"ServerURL": server, "Username": c[0], "Secret": c[1]})
			os.Stdout.Write(b)
			return 0
		}
		delete(store, server)
	case "store":
		var c struct{ ServerURL, Username, Secret string }
		if err := json.Unmarshal(in, &c); err != nil {
			fmt.Println(err)
			return 1
		}
		store[c.ServerURL] = [2]string{c.Username, c.Secret}
	default:
		fmt.Println("unknown action", action)
		return 1
	}
	b, _ := json.Marshal(store)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		fmt.Println(err)
		return 1
	}
	return 0
}

func TestCredentialHelpers(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(exe, filepath.Join(bin, "docker-credential-berthtest")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	storeFile := filepath.Join(t.TempDir(), "secrets.json")
	t.Setenv("BERTH_TEST_HELPER_STORE", storeFile)

	for _, tc := range []struct {
		name, config, host string
	}{
		// credsStore: every registry goes to the helper.
		{"credsStore", `{"credsStore": "berthtest"}`, "docker.io"},
		// credHelpers: only the one named, the rest stays in auths.
		{"credHelpers", `{"credHelpers": {"reg.example.com": "berthtest"}}`, "reg.example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(storeFile)
			path := filepath.Join(t.TempDir(), "config.json")
			if err := os.WriteFile(path, []byte(tc.config), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := credentials.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok, err := f.Get(tc.host); ok || err != nil {
				t.Fatalf("Get before Set: %v, %v", ok, err)
			}
			if err := f.Set(tc.host, credentials.Auth{Username: "u", Password: "p"}); err != nil {
				t.Fatal(err)
			}
			if err := f.Save(); err != nil {
				t.Fatal(err)
			}
			// The secret is in the helper, not in the file.
			b, _ := os.ReadFile(path)
			if strings.Contains(string(b), `"auth"`) {
				t.Fatalf("secret written to config.json: %s", b)
			}
			secrets, _ := os.ReadFile(storeFile)
			if !strings.Contains(string(secrets), credentials.Key(tc.host)) {
				t.Fatalf("helper store %s lacks %s", secrets, credentials.Key(tc.host))
			}
			g, _ := credentials.Load(path)
			a, ok, err := g.Get(tc.host)
			if err != nil || !ok || a.Username != "u" || a.Password != "p" {
				t.Fatalf("Get through the helper: %+v %v %v", a, ok, err)
			}
			if ok, err := g.Delete(tc.host); !ok || err != nil {
				t.Fatalf("Delete: %v %v", ok, err)
			}
			if _, ok, _ := g.Get(tc.host); ok {
				t.Fatal("credential still there after Delete")
			}
		})
	}
}
