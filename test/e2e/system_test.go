package e2e

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/api"
)

// TestDockerCLISystem: the docker CLI negotiates an API version we serve
// and reads version, info and system df.
func TestDockerCLISystem(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	out := d.DockerOK(t, "version")
	if !strings.Contains(out, "(minimum version "+api.MinAPIVersion+")") {
		t.Errorf("docker version shows no server API range:\n%s", out)
	}
	// The CLI (28.x speaks 1.50) settles on the lower of its and ours.
	got := strings.TrimSpace(d.DockerOK(t, "version", "--format", "{{.Client.APIVersion}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}}"))
	if got != "1.50 "+api.MaxAPIVersion+" "+api.MinAPIVersion {
		t.Errorf("versions = %q", got)
	}
	info := strings.TrimSpace(d.DockerOK(t, "info", "--format", "{{.OSType}} {{.DockerRootDir}} {{.Images}}"))
	if info != "linux "+d.Root+" 0" {
		t.Errorf("docker info = %q, want linux %s 0", info, d.Root)
	}
	if r := d.Docker(t, "info"); r.Code != 0 || !strings.Contains(r.Stdout, "Storage Driver:") {
		t.Errorf("docker info: %s", r)
	}
	df := d.DockerOK(t, "system", "df")
	for _, row := range []string{"Images", "Containers", "Local Volumes", "Build Cache"} {
		if !strings.Contains(df, row) {
			t.Errorf("system df has no %s row:\n%s", row, df)
		}
	}
}
