package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/internal/testutil/registry"
)

// TestCLIRegistry: berth login stores the credential in docker's
// config.json, pull and push send it to the daemon and print docker's
// progress lines, and logout forgets it.
func TestCLIRegistry(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	reg := registry.Start(t, registry.Options{Auth: registry.Basic})
	reg.Seed(t, testutil.Images(t).OCILayout, "test/busybox:latest")
	cfgDir := t.TempDir()
	berth := func(stdin string, args ...string) Result {
		t.Helper()
		var in []byte
		if stdin != "" {
			in = []byte(stdin)
		}
		return run(t, []string{"BERTH_HOST=" + d.Host, "DOCKER_CONFIG=" + cfgDir}, in, bins.berth, args...)
	}

	// Wrong password: refused, nothing stored.
	if r := berth("wrong\n", "login", "-u", reg.User, "--password-stdin", reg.Host); r.Code == 0 {
		t.Fatalf("login with a wrong password: %s", r)
	}
	if _, err := os.Stat(filepath.Join(cfgDir, "config.json")); err == nil {
		t.Fatal("config.json written after a failed login")
	}
	if r := berth(reg.Password+"\n", "login", "-u", reg.User, "--password-stdin", reg.Host); r.Code != 0 || !strings.Contains(r.Stdout, "Login Succeeded") {
		t.Fatalf("login: %s", r)
	}
	var cfg struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	b, _ := os.ReadFile(filepath.Join(cfgDir, "config.json"))
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.Auths[reg.Host].Auth == "" {
		t.Fatalf("config.json after login: %s (%v)", b, err)
	}

	r := berth("", "pull", reg.Ref("test/busybox"))
	if r.Code != 0 {
		t.Fatalf("pull: %s", r)
	}
	for _, want := range []string{"Using default tag: latest", "latest: Pulling from test/busybox", "Pull complete", "Digest: sha256:",
		"Status: Downloaded newer image for " + reg.Ref("test/busybox:latest"), reg.Ref("test/busybox:latest")} {
		if !strings.Contains(r.Stdout, want) {
			t.Fatalf("pull output lacks %q:\n%s", want, r.Stdout)
		}
	}
	digest := regexp.MustCompile(`Digest: (sha256:[0-9a-f]{64})`).FindStringSubmatch(r.Stdout)[1]
	if r := berth("", "pull", "-q", reg.Ref("test/busybox")); r.Code != 0 || r.Stdout != reg.Ref("test/busybox:latest")+"\n" {
		t.Fatalf("pull -q: %s", r)
	}
	if r := berth("", "images", "--digests", "--format", "{{.Digest}}", reg.Ref("test/busybox")); r.Code != 0 || strings.TrimSpace(r.Stdout) != digest {
		t.Fatalf("images --digests: %s", r)
	}

	// Push under the name it was pulled by: every blob is there already.
	r = berth("", "push", reg.Ref("test/busybox:latest"))
	if r.Code != 0 {
		t.Fatalf("push: %s", r)
	}
	for _, want := range []string{"The push refers to repository [" + reg.Ref("test/busybox") + "]", "Layer already exists", "latest: digest: " + digest + " size: "} {
		if !strings.Contains(r.Stdout, want) {
			t.Fatalf("push output lacks %q:\n%s", want, r.Stdout)
		}
	}
	// A new name in another repository.
	if r := berth("", "tag", reg.Ref("test/busybox:latest"), reg.Ref("other/bb:1")); r.Code != 0 {
		t.Fatalf("tag: %s", r)
	}
	if r := berth("", "push", "-q", reg.Ref("other/bb:1")); r.Code != 0 || strings.TrimSpace(r.Stdout) != reg.Ref("other/bb:1") {
		t.Fatalf("push -q: %s", r)
	}

	if r := berth("", "logout", reg.Host); r.Code != 0 || !strings.Contains(r.Stdout, "Removing login credentials for "+reg.Host) {
		t.Fatalf("logout: %s", r)
	}
	if r := berth("", "logout", reg.Host); r.Code != 0 || !strings.Contains(r.Stdout, "Not logged in to "+reg.Host) {
		t.Fatalf("second logout: %s", r)
	}
	// Logged out: the registry refuses, and berth says so with 125.
	if r := berth("", "pull", "-q", reg.Ref("test/busybox:latest")); r.Code != 125 {
		t.Fatalf("pull after logout: %s", r)
	}
	// A missing image is pulled by run, with docker's words.
	if r := berth("", "rmi", reg.Ref("test/busybox:latest"), reg.Ref("other/bb:1")); r.Code != 0 {
		t.Fatalf("rmi: %s", r)
	}
	if r := berth(reg.Password+"\n", "login", "-u", reg.User, "--password-stdin", reg.Host); r.Code != 0 {
		t.Fatalf("login again: %s", r)
	}
	r = berth("", "run", "--rm", reg.Ref("test/busybox:latest"), "echo", "pulled and ran")
	if r.Code != 0 || r.Stdout != "pulled and ran\n" || !strings.Contains(r.Stderr, "Unable to find image '"+reg.Ref("test/busybox:latest")+"' locally") {
		t.Fatalf("run of a missing image: %s", r)
	}
}
