package specgen

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestArgs(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/ep"}, Cmd: []string{"img-cmd"}}
	tests := []struct {
		name string
		img  ocispec.ImageConfig
		cfg  container.Config
		want []string
	}{
		{"image entrypoint and cmd", img, container.Config{}, []string{"/ep", "img-cmd"}},
		{"run cmd replaces image cmd", img, container.Config{Cmd: []string{"x"}}, []string{"/ep", "x"}},
		{"run entrypoint drops image cmd", img, container.Config{Entrypoint: []string{"/other"}}, []string{"/other"}},
		{"run entrypoint and cmd", img, container.Config{Entrypoint: []string{"/o"}, Cmd: []string{"a"}}, []string{"/o", "a"}},
		{"cmd only", ocispec.ImageConfig{Cmd: []string{"sh"}}, container.Config{}, []string{"sh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Args(tt.img, &tt.cfg)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := Args(ocispec.ImageConfig{}, &container.Config{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("no command: got %v, want invalid argument", err)
	}
}

func TestEnvMergesByKey(t *testing.T) {
	got := Env(ocispec.ImageConfig{Env: []string{"PATH=/img", "A=1", "B=2"}},
		&container.Config{Env: []string{"B=3", "C=4", "UNSET"}, Tty: true, Hostname: "h"})
	want := []string{"PATH=/img", "HOSTNAME=h", "TERM=xterm", "A=1", "B=3", "C=4"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestCapabilities(t *testing.T) {
	tests := []struct {
		name       string
		priv       bool
		add, drop  []string
		has, lacks []string
	}{
		{"default", false, nil, nil, []string{"CAP_CHOWN", "CAP_KILL"}, []string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN"}},
		{"add short lower name", false, []string{"net_admin"}, nil, []string{"CAP_NET_ADMIN"}, nil},
		{"drop", false, nil, []string{"CAP_CHOWN"}, []string{"CAP_KILL"}, []string{"CAP_CHOWN"}},
		{"drop all add one", false, []string{"KILL"}, []string{"ALL"}, []string{"CAP_KILL"}, []string{"CAP_CHOWN"}},
		{"add all", false, []string{"ALL"}, nil, []string{"CAP_SYS_ADMIN"}, nil},
		{"privileged", true, nil, []string{"ALL"}, []string{"CAP_SYS_ADMIN", "CAP_CHOWN"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Capabilities(tt.priv, tt.add, tt.drop)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range tt.has {
				if !slices.Contains(c.Bounding, h) || !slices.Contains(c.Effective, h) {
					t.Errorf("missing %s in %v", h, c.Bounding)
				}
			}
			for _, l := range tt.lacks {
				if slices.Contains(c.Bounding, l) {
					t.Errorf("unexpected %s", l)
				}
			}
		})
	}
	if _, err := Capabilities(false, []string{"CAP_BOGUS"}, nil); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "CAP_BOGUS") {
		t.Fatalf("unknown cap: got %v", err)
	}
}

func TestGenerateDefaults(t *testing.T) {
	s, err := Generate(Input{
		ID: "c1", Rootfs: "/r", Image: ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"A=1"}},
		Config: &container.Config{Hostname: "h1"}, Host: &container.HostConfig{ShmSize: 1 << 20},
		Mounts: []specs.Mount{BindMount("/host/hosts", "/etc/hosts", false, "")}, Home: "/root",
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Root.Path != "/r" || s.Hostname != "h1" || s.Process.Cwd != "/" {
		t.Errorf("root/hostname/cwd: %+v %q %q", s.Root, s.Hostname, s.Process.Cwd)
	}
	if !slices.Contains(s.Process.Env, "HOME=/root") {
		t.Errorf("no HOME in %q", s.Process.Env)
	}
	if s.Linux.Seccomp == nil || len(s.Linux.Seccomp.Syscalls) == 0 {
		t.Error("default seccomp profile missing")
	}
	if !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") || !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") {
		t.Error("default masked/readonly paths missing")
	}
	var shm, hosts bool
	for _, m := range s.Mounts {
		shm = shm || m.Destination == "/dev/shm" && slices.Contains(m.Options, "size=1048576")
		hosts = hosts || m.Destination == "/etc/hosts" && m.Source == "/host/hosts"
	}
	if !shm || !hosts {
		t.Errorf("mounts: shm %v hosts %v: %+v", shm, hosts, s.Mounts)
	}
	if len(s.Linux.Resources.Devices) == 0 || s.Linux.Resources.Devices[0].Allow {
		t.Error("device rules must start with deny-all")
	}
}

// HostConfig.ConsoleSize (height, width), which the docker CLI sends at
// create from API 1.42, becomes process.consoleSize, so the runtime sizes
// the pty before the process runs and `stty size` is right at once. The
// OCI spec has runtimes ignore it without a terminal; a half-given size
// is no size.
func TestGenerateConsoleSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		tty  bool
		size [2]uint
		want *specs.Box
	}{
		{name: "tty", tty: true, size: [2]uint{40, 123}, want: &specs.Box{Height: 40, Width: 123}},
		{name: "tty without size", tty: true},
		{name: "no tty", size: [2]uint{40, 123}},
		{name: "width only", tty: true, size: [2]uint{0, 80}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Generate(Input{Rootfs: "/r", Image: ocispec.ImageConfig{Cmd: []string{"sh"}},
				Config: &container.Config{Tty: tc.tty}, Host: &container.HostConfig{ConsoleSize: tc.size}})
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Process.ConsoleSize; !reflect.DeepEqual(got, tc.want) || s.Process.Terminal != tc.tty {
				t.Fatalf("consoleSize %+v terminal %v, want %+v", got, s.Process.Terminal, tc.want)
			}
		})
	}
}

func TestGeneratePrivileged(t *testing.T) {
	s, err := Generate(Input{Rootfs: "/r", Image: ocispec.ImageConfig{Cmd: []string{"sh"}}, Host: &container.HostConfig{Privileged: true}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp != nil || s.Linux.MaskedPaths != nil || !slices.Contains(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN") {
		t.Fatalf("privileged: seccomp %v masked %v caps %v", s.Linux.Seccomp != nil, s.Linux.MaskedPaths, s.Process.Capabilities.Bounding)
	}
}

func TestGenerateRejects(t *testing.T) {
	neg := int64(-5)
	tests := []struct {
		name string
		host container.HostConfig
	}{
		{"tiny memory", container.HostConfig{Resources: container.Resources{Memory: 1 << 20}}},
		{"swap below memory", container.HostConfig{Resources: container.Resources{Memory: 64 << 20, MemorySwap: 32 << 20}}},
		{"swappiness", container.HostConfig{Resources: container.Resources{MemorySwappiness: &neg}}},
		{"nano and period", container.HostConfig{Resources: container.Resources{NanoCPUs: 1e9, CPUPeriod: 1000}}},
		{"blkio weight", container.HostConfig{Resources: container.Resources{BlkioWeight: 5}}},
		{"ulimit name", container.HostConfig{Resources: container.Resources{Ulimits: []*container.Ulimit{{Name: "bogus", Soft: 1, Hard: 1}}}}},
		{"ulimit soft above hard", container.HostConfig{Resources: container.Resources{Ulimits: []*container.Ulimit{{Name: "nofile", Soft: 9, Hard: 1}}}}},
		{"apparmor", container.HostConfig{SecurityOpt: []string{"apparmor=docker-default"}}},
		{"unknown opt", container.HostConfig{SecurityOpt: []string{"bogus=1"}}},
		{"bad seccomp json", container.HostConfig{SecurityOpt: []string{"seccomp={"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Generate(Input{Image: ocispec.ImageConfig{Cmd: []string{"sh"}}, Host: &tt.host})
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("got %v, want invalid argument", err)
			}
		})
	}
}

func TestGenerateResources(t *testing.T) {
	pids := int64(50)
	s, err := Generate(Input{Image: ocispec.ImageConfig{Cmd: []string{"sh"}}, Host: &container.HostConfig{
		Resources: container.Resources{Memory: 64 << 20, NanoCPUs: 1.5e9, PidsLimit: &pids, CPUShares: 512,
			Ulimits: []*container.Ulimit{{Name: "nofile", Soft: 100, Hard: 200}}},
		SecurityOpt: []string{"no-new-privileges", "seccomp=unconfined"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := s.Linux.Resources
	if *r.Memory.Limit != 64<<20 || *r.Memory.Swap != 128<<20 || *r.CPU.Quota != 150000 || *r.CPU.Period != 100000 ||
		*r.Pids.Limit != 50 || *r.CPU.Shares != 512 {
		t.Fatalf("resources: %+v %+v %+v", r.Memory, r.CPU, r.Pids)
	}
	if !s.Process.NoNewPrivileges || s.Linux.Seccomp != nil {
		t.Fatal("security opts not applied")
	}
	if len(s.Process.Rlimits) != 1 || s.Process.Rlimits[0] != (specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: 200, Soft: 100}) {
		t.Fatalf("rlimits: %+v", s.Process.Rlimits)
	}
}

func TestSeccompProfileFromDockerJSON(t *testing.T) {
	prof := `{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],
	  "syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
	              {"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}}]}`
	s, err := Generate(Input{Image: ocispec.ImageConfig{Cmd: []string{"sh"}}, Host: &container.HostConfig{SecurityOpt: []string{"seccomp=" + prof}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Linux.Seccomp.Syscalls) != 1 || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Fatalf("profile not applied per caps: %+v", s.Linux.Seccomp)
	}
}

func writeFile(t *testing.T, root, rel, body string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLookupUser(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000::/home/web:/bin/sh\n")
	writeFile(t, root, "etc/group", "root:x:0:\nweb:x:1000:\nstaff:x:50:web,other\naudio:x:29:\n")
	tests := []struct {
		spec  string
		add   []string
		uid   uint32
		gid   uint32
		extra []uint32
		home  string
	}{
		{"", nil, 0, 0, []uint32{0}, "/root"},
		{"web", nil, 1000, 1000, []uint32{1000, 50}, "/home/web"},
		{"1000", nil, 1000, 1000, []uint32{1000, 50}, "/home/web"},
		{"4242", nil, 4242, 0, []uint32{0}, "/"},
		{"web:audio", nil, 1000, 29, []uint32{29, 50}, "/home/web"},
		{"1:2", []string{"audio", "77"}, 1, 2, []uint32{2, 29, 77}, "/"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			u, err := LookupUser(root, tt.spec, tt.add)
			if err != nil {
				t.Fatal(err)
			}
			if u.UID != tt.uid || u.GID != tt.gid || !slices.Equal(u.AdditionalGids, tt.extra) || u.Home != tt.home {
				t.Fatalf("got %+v", u)
			}
		})
	}
	for _, bad := range []string{"nobody", "web:nogroup"} {
		if _, err := LookupUser(root, bad, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: got %v, want invalid argument", bad, err)
		}
	}
}

// An image whose /etc/passwd points at a host path reads its own tree.
func TestLookupUserStaysInRoot(t *testing.T) {
	host := t.TempDir()
	writeFile(t, host, "passwd", "evil:x:0:0::/:/bin/sh\n")
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(host, "passwd"), filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if _, err := LookupUser(root, "evil", nil); err == nil {
		t.Fatal("resolved a user from a host file outside the rootfs")
	}
}
