package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/internal/errdefs"
)

func parseCreate(t *testing.T, args ...string) (container.CreateRequest, error) {
	t.Helper()
	var f createFlags
	fl := pflag.NewFlagSet("run", pflag.ContinueOnError)
	f.register(fl)
	fl.Bool("rm", false, "")
	if err := fl.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	rest := fl.Args()
	return f.request(fl, rest[0], rest[1:])
}

func TestCreateRequest(t *testing.T) {
	t.Setenv("FROM_HOST", "hostval")
	req, err := parseCreate(t, "-e", "A=1", "-e", "FROM_HOST", "-e", "UNSET_HERE", "-w", "/w", "-u", "1:2", "--entrypoint", "",
		"-l", "k=v", "-h", "box", "-v", "/src:/dst:ro", "-v", "/anon", "--tmpfs", "/t:size=1m", "--read-only", "--cap-add", "NET_ADMIN",
		"--ulimit", "nofile=10:20", "--sysctl", "net.ipv4.ip_forward=1", "-m", "64m", "--memory-swap", "-1", "--cpus", "1.5",
		"--pids-limit", "10", "--device", "/dev/fuse:/dev/f:r", "-p", "127.0.0.1:8080:80", "-p", "53/udp", "--dns", "1.1.1.1",
		"--restart", "on-failure:3", "--health-cmd", "true", "--health-interval", "2s", "--stop-timeout", "7", "--init",
		"--log-opt", "max-size=1m", "busybox", "echo", "-n", "x")
	if err != nil {
		t.Fatal(err)
	}
	c, h := req.Config, req.HostConfig
	checks := []struct {
		name string
		ok   bool
	}{
		{"cmd keeps flags after the image", strings.Join(c.Cmd, " ") == "echo -n x"},
		{"env", strings.Join(c.Env, ",") == "A=1,FROM_HOST=hostval"},
		{"workdir, user, hostname", c.WorkingDir == "/w" && c.User == "1:2" && c.Hostname == "box"},
		{"empty entrypoint resets it", c.Entrypoint != nil && len(c.Entrypoint) == 0},
		{"labels", c.Labels["k"] == "v"},
		{"binds", len(h.Binds) == 1 && h.Binds[0] == "/src:/dst:ro"},
		{"anonymous volume", len(c.Volumes) == 1},
		{"tmpfs", h.Tmpfs["/t"] == "size=1m"},
		{"read-only, caps", h.ReadonlyRootfs && h.CapAdd[0] == "NET_ADMIN"},
		{"ulimit", len(h.Ulimits) == 1 && h.Ulimits[0].Soft == 10 && h.Ulimits[0].Hard == 20},
		{"sysctl", h.Sysctls["net.ipv4.ip_forward"] == "1"},
		{"memory", h.Memory == 64<<20 && h.MemorySwap == -1},
		{"cpus", h.NanoCPUs == 1_500_000_000},
		{"pids", h.PidsLimit != nil && *h.PidsLimit == 10},
		{"device", len(h.Devices) == 1 && h.Devices[0].PathInContainer == "/dev/f" && h.Devices[0].CgroupPermissions == "r"},
		{"published port", len(h.PortBindings[network.MustParsePort("80/tcp")]) == 1 && h.PortBindings[network.MustParsePort("80/tcp")][0].HostPort == "8080"},
		{"udp exposed", func() bool { _, ok := c.ExposedPorts[network.MustParsePort("53/udp")]; return ok }()},
		{"dns", len(h.DNS) == 1 && h.DNS[0].String() == "1.1.1.1"},
		{"restart", h.RestartPolicy.Name == container.RestartPolicyOnFailure && h.RestartPolicy.MaximumRetryCount == 3},
		{"health", c.Healthcheck != nil && c.Healthcheck.Test[0] == "CMD-SHELL" && c.Healthcheck.Interval == 2*time.Second},
		{"stop timeout", c.StopTimeout != nil && *c.StopTimeout == 7},
		{"init", h.Init != nil && *h.Init},
		{"log opts", h.LogConfig.Config["max-size"] == "1m"},
	}
	for _, ck := range checks {
		if !ck.ok {
			t.Errorf("%s: wrong in %+v / %+v", ck.name, c, h)
		}
	}
}

func TestCreateRequestRefusesBadValues(t *testing.T) {
	tests := map[string][]string{
		"restart":        {"--restart", "sometimes", "busybox"},
		"restart count":  {"--restart", "always:3", "busybox"},
		"memory":         {"-m", "lots", "busybox"},
		"cpus":           {"--cpus", "many", "busybox"},
		"ulimit":         {"--ulimit", "nofile", "busybox"},
		"sysctl":         {"--sysctl", "novalue", "busybox"},
		"volume":         {"-v", "relative", "busybox"},
		"tmpfs":          {"--tmpfs", "rel", "busybox"},
		"port":           {"-p", "80:http", "busybox"},
		"dns":            {"--dns", "resolver", "busybox"},
		"mount field":    {"--mount", "type=bind,src=/a,target=/b,colour=red", "busybox"},
		"mount target":   {"--mount", "type=bind,src=/a", "busybox"},
		"log opt":        {"--log-opt", "max-size", "busybox"},
		"restart and rm": {"--restart", "always", "--rm", "busybox"},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := parseCreate(t, args...)
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !localErr(err) {
				t.Fatalf("%q: got %v, want a local invalid-argument error", args, err)
			}
		})
	}
}

func TestDetachKeys(t *testing.T) {
	keys, err := parseDetachKeys("")
	if err != nil || !bytes.Equal(keys, []byte{16, 17}) {
		t.Fatalf("default keys: %v %v", keys, err)
	}
	if keys, err := parseDetachKeys("ctrl-a,x"); err != nil || !bytes.Equal(keys, []byte{1, 'x'}) {
		t.Fatalf("ctrl-a,x: %v %v", keys, err)
	}
	if _, err := parseDetachKeys("ctrl-1"); err == nil {
		t.Fatal("ctrl-1 accepted")
	}
	tests := []struct {
		in, out  string
		detached bool
	}{
		{"hello", "hello", false},
		{"ab\x10\x11cd", "ab", true},
		{"a\x10b\x10\x11", "a\x10b", true},
		{"a\x10", "a\x10", false},
	}
	for _, tt := range tests {
		e := &escapeReader{r: strings.NewReader(tt.in), keys: []byte{16, 17}}
		got, _ := io.ReadAll(e)
		if string(got) != tt.out || e.isDetached() != tt.detached {
			t.Errorf("%q: got %q detached=%v, want %q %v", tt.in, got, e.isDetached(), tt.out, tt.detached)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"10m", now.Add(-10 * time.Minute)},
		{"1700000000", time.Unix(1700000000, 0)},
		{"1700000000.5", time.Unix(1700000000, 500_000_000)},
		{"2026-01-01T00:00:00Z", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if _, err := parseTime("yesterday", now); err == nil {
		t.Error("yesterday accepted")
	}
}

func TestStartErrorCodes(t *testing.T) {
	tests := []struct {
		msg  string
		code int
	}{
		{`exec nosuch: executable file not found in $PATH`, exitNotFound},
		{`exec /etc: permission denied`, exitNoInvoke},
		{`cgroup: device busy`, 0},
	}
	for _, tt := range tests {
		err := startError(errors.New(tt.msg))
		var ee exitError
		got := 0
		if errors.As(err, &ee) {
			got = ee.code
		}
		if got != tt.code {
			t.Errorf("%q: code %d, want %d", tt.msg, got, tt.code)
		}
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{wrap("No such container: web", errdefs.ErrNotFound), "Error response from daemon: No such container: web"},
		{usageErr("invalid restart policy format: x"), "invalid restart policy format: x"},
		{errors.New("plain"), "plain"},
	}
	for _, tt := range tests {
		if got := errorText(tt.err); got != tt.want {
			t.Errorf("errorText(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// wrap is an error as internal/client returns a daemon's answer.
func wrap(msg string, class error) error { return fmt.Errorf("%s: %w", msg, class) }
