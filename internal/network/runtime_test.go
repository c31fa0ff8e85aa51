package network_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestRuntimeJoinsNamespaceByPath runs a real container with berth-runtime
// (bin/berth-runtime, as `make build` leaves it) in a namespace from
// NewNetns, handed over by path in the spec, with the manager's /etc files
// bind-mounted: it fetches a page from a neighbour by name through the
// embedded DNS.
func TestRuntimeJoinsNamespaceByPath(t *testing.T) {
	testutil.RequireRoot(t)
	repo, err := testutil.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(repo, "bin", "berth-runtime")
	if v := os.Getenv("BERTH_TEST_RUNTIME"); v != "" {
		bin = v // e.g. /usr/sbin/runc, to tell the runtime's faults from ours
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skip("bin/berth-runtime not built (make build)")
	}
	m, _ := newManager(t)
	n := userNetwork(t, m, network.CreateOptions{})
	web, _ := newBox(t, m, "web", network.AttachOptions{Network: n.Name})
	web.httpd("web")

	ctx := context.Background()
	id := "rtclient" + tag()
	path, err := m.NewNetns(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Release(ctx, id) })
	res, err := m.Attach(ctx, network.AttachOptions{ContainerID: id, Name: "client", Network: n.Name})
	if err != nil {
		t.Fatal(err)
	}

	bundle := t.TempDir()
	root := rootfs(t)
	var spec specs.Spec
	b, err := os.ReadFile(filepath.Join(testutil.Images(t).Bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	spec.Root.Path = root
	// No -T: busybox-static's wget dies of SIGSEGV with a timeout inside
	// a container (under runc too), though not under nsenter and chroot.
	spec.Process.Args = []string{"sh", "-c", "wget -q -O- http://web/; exit $?"}
	for i := range spec.Linux.Namespaces {
		if spec.Linux.Namespaces[i].Type == specs.NetworkNamespace {
			spec.Linux.Namespaces[i].Path = path
		}
	}
	for dst, src := range map[string]string{"/etc/hosts": res.HostsPath, "/etc/resolv.conf": res.ResolvConfPath, "/etc/hostname": res.HostnamePath} {
		if err := os.WriteFile(filepath.Join(root, dst), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "ro"}})
	}
	if b, err = json.Marshal(&spec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	t.Cleanup(func() { _ = exec.Command(bin, "--root", state, "delete", "--force", id).Run() })
	out, err := exec.Command(bin, "--root", state, "run", "--bundle", bundle, id).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hello from web") {
		t.Fatalf("container in the manager's namespace: %v: %s", err, out)
	}
}
