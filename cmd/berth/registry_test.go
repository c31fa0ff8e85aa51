package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/internal/testutil/registry"
)

// runVerb runs one of the registry verbs in process on root, with stdin,
// and returns its stdout, stderr and error.
func runVerb(t *testing.T, root string, mk func(*globals) *cobra.Command, stdin string, args ...string) (string, string, error) {
	t.Helper()
	g := &globals{root: root}
	cmd := mk(g)
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

// TestRegistryVerbs logs in (the credential lands in docker's config.json),
// pulls and pushes with the stored credential, and logs out.
func TestRegistryVerbs(t *testing.T) {
	testutil.RequireRoot(t)
	reg := registry.Start(t, registry.Options{Auth: registry.Basic})
	reg.Seed(t, testutil.Images(t).OCILayout, "test/busybox:latest")
	cfgDir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", cfgDir)
	root := filepath.Join(t.TempDir(), "root")

	// Wrong password: refused, nothing stored.
	if _, _, err := runVerb(t, root, newLoginCommand, "wrong\n", "-u", reg.User, "--password-stdin", reg.Host); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	if _, err := os.Stat(filepath.Join(cfgDir, "config.json")); err == nil {
		t.Fatal("config.json written after a failed login")
	}
	out, _, err := runVerb(t, root, newLoginCommand, reg.Password+"\n", "-u", reg.User, "--password-stdin", reg.Host)
	if err != nil || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("login: %v\n%s", err, out)
	}
	var cfg struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	b, _ := os.ReadFile(filepath.Join(cfgDir, "config.json"))
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.Auths[reg.Host].Auth == "" {
		t.Fatalf("config.json after login: %s (%v)", b, err)
	}

	// Another tool reading docker's config format is let in with it.
	if skopeo, err := exec.LookPath("skopeo"); err == nil {
		cmd := exec.Command(skopeo, "inspect", "--tls-verify=false", "--authfile", filepath.Join(cfgDir, "config.json"), "docker://"+reg.Ref("test/busybox:latest"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("skopeo with berth's config.json: %v\n%s", err, out)
		}
	}

	out, _, err = runVerb(t, root, newPullCommand, "", reg.Ref("test/busybox"))
	if err != nil {
		t.Fatalf("pull: %v\n%s", err, out)
	}
	for _, want := range []string{"Using default tag: latest", "latest: Pulling from test/busybox", "Digest: sha256:",
		"Status: Downloaded newer image for " + reg.Ref("test/busybox:latest"), "Pull complete"} {
		if !strings.Contains(out, want) {
			t.Fatalf("pull output lacks %q:\n%s", want, out)
		}
	}
	digest := regexp.MustCompile(`Digest: (sha256:[0-9a-f]{64})`).FindStringSubmatch(out)[1]

	out, _, err = runVerb(t, root, newPullCommand, "", "-q", reg.Ref("test/busybox"))
	if err != nil || out != reg.Ref("test/busybox:latest")+"\n" {
		t.Fatalf("pull -q: %v %q", err, out)
	}

	// -a pulls every tag of the repository.
	reg.Seed(t, testutil.Images(t).OCILayout, "test/busybox:second")
	out, _, err = runVerb(t, root, newPullCommand, "", "-a", "-q", reg.Ref("test/busybox"))
	if err != nil || !strings.Contains(out, reg.Ref("test/busybox:second")) || !strings.Contains(out, reg.Ref("test/busybox:latest")) {
		t.Fatalf("pull -a: %v\n%s", err, out)
	}

	// Push under the name it was pulled by: every blob is there already.
	out, _, err = runVerb(t, root, newPushCommand, "", reg.Ref("test/busybox:latest"))
	if err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	if !strings.Contains(out, "The push refers to repository ["+reg.Ref("test/busybox")+"]") ||
		!strings.Contains(out, "Layer already exists") ||
		!strings.Contains(out, "latest: digest: "+digest+" size: ") {
		t.Fatalf("push output:\n%s", out)
	}

	out, _, err = runVerb(t, root, newLogoutCommand, "", reg.Host)
	if err != nil || !strings.Contains(out, "Removing login credentials for "+reg.Host) {
		t.Fatalf("logout: %v %q", err, out)
	}
	out, _, err = runVerb(t, root, newLogoutCommand, "", reg.Host)
	if err != nil || !strings.Contains(out, "Not logged in to "+reg.Host) {
		t.Fatalf("second logout: %v %q", err, out)
	}
	// Logged out: the registry refuses.
	if _, _, err := runVerb(t, root, newPullCommand, "", "-q", reg.Ref("test/busybox:latest")); err == nil {
		t.Fatal("pull after logout succeeded")
	}
}
