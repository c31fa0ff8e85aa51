package specgen

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

var readFile = os.ReadFile

// defaultDeviceRules is docker's device cgroup allow-list: deny all, allow
// mknod of any device, and access to the usual character devices.
var defaultDeviceRules = []specs.LinuxDeviceCgroup{
	{Allow: false, Access: "rwm"},
	{Allow: true, Type: "c", Access: "m"},
	{Allow: true, Type: "b", Access: "m"},
	{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm"},    // null
	{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(8)), Access: "rwm"},    // random
	{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(7)), Access: "rwm"},    // full
	{Allow: true, Type: "c", Major: ptr(int64(5)), Minor: ptr(int64(0)), Access: "rwm"},    // tty
	{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(5)), Access: "rwm"},    // zero
	{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(9)), Access: "rwm"},    // urandom
	{Allow: true, Type: "c", Major: ptr(int64(136)), Access: "rwm"},                        // pts/*
	{Allow: true, Type: "c", Major: ptr(int64(5)), Minor: ptr(int64(2)), Access: "rwm"},    // ptmx
	{Allow: true, Type: "c", Major: ptr(int64(10)), Minor: ptr(int64(200)), Access: "rwm"}, // net/tun
}

// devices fills linux.devices and the device cgroup rules: every host
// device for --privileged, else docker's allow-list plus --device mappings.
func devices(s *specs.Spec, in Input, host *container.HostConfig) {
	if host.Privileged {
		s.Linux.Devices = append(s.Linux.Devices, in.HostDevices...)
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		return
	}
	s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, defaultDeviceRules...)
	for _, d := range in.Devices {
		s.Linux.Devices = append(s.Linux.Devices, d)
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{
			Allow: true, Type: d.Type, Major: ptr(d.Major), Minor: ptr(d.Minor), Access: permsOf(host, d.Path),
		})
	}
}

func permsOf(host *container.HostConfig, dst string) string {
	for _, m := range host.Devices {
		p := m.PathInContainer
		if p == "" {
			p = m.PathOnHost
		}
		if p == dst && m.CgroupPermissions != "" {
			return m.CgroupPermissions
		}
	}
	return "rwm"
}

// HostDevice resolves one --device mapping by statting the host path.
func HostDevice(m container.DeviceMapping) (specs.LinuxDevice, error) {
	src, err := filepath.EvalSymlinks(m.PathOnHost)
	if err != nil {
		return specs.LinuxDevice{}, fmt.Errorf("error gathering device information while adding custom device %q: %v: %w", m.PathOnHost, err, errdefs.ErrInvalidArgument)
	}
	var st unix.Stat_t
	if err := unix.Stat(src, &st); err != nil {
		return specs.LinuxDevice{}, fmt.Errorf("device %s: %v: %w", m.PathOnHost, err, errdefs.ErrInvalidArgument)
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, fmt.Errorf("%s is not a device node: %w", m.PathOnHost, errdefs.ErrInvalidArgument)
	}
	if p := m.CgroupPermissions; p != "" && strings.Trim(p, "rwm") != "" {
		return specs.LinuxDevice{}, fmt.Errorf("invalid device cgroup permissions %q: %w", p, errdefs.ErrInvalidArgument)
	}
	dst := m.PathInContainer
	if dst == "" {
		dst = m.PathOnHost
	}
	mode := os.FileMode(st.Mode & 0o777)
	return specs.LinuxDevice{
		Path: dst, Type: typ, Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
		FileMode: &mode, UID: ptr(st.Uid), GID: ptr(st.Gid),
	}, nil
}
