package testimage_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/testimage"
	"github.com/berth-dev/berth/internal/testutil"
)

// skopeo is a tool we did not write: if it reads our archives, the formats
// are right.
func TestSkopeoReadsBothForms(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("needs skopeo (Debian package skopeo)")
	}
	p := testutil.Images(t)
	for _, ref := range []string{"docker-archive:" + p.DockerArchive, "oci:" + p.OCILayout + ":latest"} {
		t.Run(ref[:3], func(t *testing.T) {
			out, err := exec.Command(skopeo, "inspect", ref).CombinedOutput()
			if err != nil {
				t.Fatalf("skopeo inspect %s: %v\n%s", ref, err, out)
			}
			var got struct {
				Labels map[string]string
				Layers []string
				Env    []string
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if got.Labels[testimage.Label] != "busybox" || len(got.Layers) != 2 || len(got.Env) == 0 {
				t.Fatalf("unexpected inspect output: %s", out)
			}
		})
	}
}

func TestRootfsHasLayersApplied(t *testing.T) {
	p := testutil.Images(t)
	for _, gone := range []string{"etc/old.conf", "opt/replaced/old.txt", "opt/replaced/sub"} {
		if _, err := os.Lstat(filepath.Join(p.Rootfs, gone)); err == nil {
			t.Errorf("%s should be whited out", gone)
		}
	}
	for _, there := range []string{"bin/busybox", "bin/sh", "etc/motd", "opt/replaced/new.txt"} {
		if _, err := os.Lstat(filepath.Join(p.Rootfs, there)); err != nil {
			t.Errorf("%s missing: %v", there, err)
		}
	}
}
