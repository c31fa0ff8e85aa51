package network_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func tag() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newConfig is a Config whose names (bridge, table) cannot clash with a
// real daemon's or another test's.
func newConfig(t testing.TB, root string) network.Config {
	t.Helper()
	b := make([]byte, 1)
	_, _ = rand.Read(b)
	return network.Config{
		Root:          filepath.Join(root, "root"),
		ExecRoot:      filepath.Join(root, "exec"),
		DefaultBridge: "bt0" + tag(),
		DefaultSubnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, b[0], 0}), 24),
		Table:         "berth_t" + tag(),
		ResolvConf:    filepath.Join(root, "resolv.conf"),
	}
}

func newManager(t testing.TB) (*network.Manager, network.Config) {
	t.Helper()
	dir := t.TempDir()
	cfg := newConfig(t, dir)
	if err := os.WriteFile(cfg.ResolvConf, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := network.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Teardown(context.Background()); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	return m, cfg
}

// rootfs copies the busybox test image's rootfs, so a test may write its
// /etc files.
func rootfs(t testing.TB) string {
	t.Helper()
	src := testutil.Images(t).Rootfs
	dst := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v: %s", err, out)
	}
	return dst
}

// box is a container stand-in: a namespace from the manager, attached to
// networks, and a rootfs copy whose /etc files are the ones the manager
// wrote. Commands run in it with nsenter and chroot.
type box struct {
	t      testing.TB
	id     string
	netns  string
	rootfs string
}

func newBox(t testing.TB, m *network.Manager, name string, opts ...network.AttachOptions) (*box, []network.AttachResult) {
	t.Helper()
	id := name + "-" + tag() + strings.Repeat("0", 12)
	path, err := m.NewNetns(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Release(context.Background(), id); err != nil {
			t.Errorf("release %s: %v", id, err)
		}
	})
	b := &box{t: t, id: id, netns: path, rootfs: rootfs(t)}
	var results []network.AttachResult
	for _, o := range opts {
		o.ContainerID, o.Name = id, name
		r, err := m.Attach(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
		for src, dst := range map[string]string{r.HostsPath: "etc/hosts", r.ResolvConfPath: "etc/resolv.conf", r.HostnamePath: "etc/hostname"} {
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			_ = os.MkdirAll(filepath.Join(b.rootfs, "etc"), 0o755)
			if err := os.WriteFile(filepath.Join(b.rootfs, dst), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return b, results
}

func (b *box) cmd(args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + b.netns, "chroot", b.rootfs}, args...)...)
}

func (b *box) run(args ...string) (string, error) {
	out, err := b.cmd(args...).CombinedOutput()
	return string(out), err
}

func (b *box) must(args ...string) string {
	b.t.Helper()
	out, err := b.run(args...)
	if err != nil {
		b.t.Fatalf("%s in %s: %v: %s", strings.Join(args, " "), b.id, err, out)
	}
	return out
}

// httpd serves "hello from NAME" on port 80 of the box until the test ends.
func (b *box) httpd(name string) {
	b.t.Helper()
	www := filepath.Join(b.rootfs, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("hello from "+name+"\n"), 0o644); err != nil {
		b.t.Fatal(err)
	}
	c := b.cmd("/bin/httpd", "-f", "-p", "80", "-h", "/www")
	if err := c.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() {
		_ = c.Process.Kill()
		_ = c.Wait()
	})
	// wait until it listens
	for i := 0; i < 100; i++ {
		out, _ := exec.Command("nsenter", "--net="+b.netns, "cat", "/proc/net/tcp", "/proc/net/tcp6").Output()
		if strings.Contains(string(out), ":0050 0000") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.t.Fatal("httpd did not start listening")
}

func linkExists(name string) bool {
	return exec.Command("ip", "link", "show", name).Run() == nil
}

func ipOf(r network.AttachResult) string { return r.Endpoint.IPv4.Addr().String() }

func itoa(p uint16) string { return fmt.Sprint(p) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// tmpfsExecRoot mounts a tmpfs on cfg.ExecRoot, as /run is on most hosts
// (not on this VM's), so benchmarks time the kernel and not the disk.
func tmpfsExecRoot(tb testing.TB, cfg network.Config) {
	tb.Helper()
	if err := os.MkdirAll(cfg.ExecRoot, 0o700); err != nil {
		tb.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", cfg.ExecRoot).CombinedOutput(); err != nil {
		tb.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	tb.Cleanup(func() { _ = exec.Command("umount", "-l", cfg.ExecRoot).Run() })
}

// outside makes a namespace reached over a veth from the host, standing
// for the world beyond the host's uplink: hostAddr on the host's end,
// peerAddr (same prefix) on its own, no route back to anything else. It
// returns the namespace's path.
func outside(t *testing.T, hostAddr, peerAddr string) string {
	t.Helper()
	out, peer := "bto"+tag(), "btp"+tag()
	ns := t.TempDir() + "/outside"
	run := func(args ...string) {
		t.Helper()
		if b, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, b)
		}
	}
	run("touch", ns)
	run("unshare", "--net="+ns, "true")
	t.Cleanup(func() { _ = exec.Command("umount", ns).Run() })
	run("ip", "link", "add", out, "type", "veth", "peer", "name", peer)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", out).Run() })
	run("ip", "link", "set", peer, "netns", ns)
	run("ip", "addr", "add", hostAddr, "dev", out, "nodad")
	run("ip", "link", "set", out, "up")
	run("nsenter", "--net="+ns, "ip", "addr", "add", peerAddr, "dev", peer, "nodad")
	run("nsenter", "--net="+ns, "ip", "link", "set", peer, "up")
	run("nsenter", "--net="+ns, "ip", "link", "set", "lo", "up")
	return ns
}
