package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/caps"
)

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_+.-]*$`)

func checkID(id string) error {
	if len(id) > 1024 || !validID.MatchString(id) {
		return fmt.Errorf("container id %q: must match %s: %w", id, validID, errdefs.ErrInvalidArgument)
	}
	return nil
}

// LoadSpec reads and checks <bundle>/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("bundle %s: config.json: %w", bundle, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("bundle %s: %w", bundle, err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("bundle %s: config.json: %v: %w", bundle, err, errdefs.ErrInvalidArgument)
	}
	if err := validateSpec(&s); err != nil {
		return nil, fmt.Errorf("bundle %s: config.json: %w", bundle, err)
	}
	return &s, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

var nsFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// procNSName is the name under /proc/<pid>/ns of each namespace type.
var procNSName = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace:     "pid",
	specs.NetworkNamespace: "net",
	specs.MountNamespace:   "mnt",
	specs.IPCNamespace:     "ipc",
	specs.UTSNamespace:     "uts",
	specs.UserNamespace:    "user",
	specs.CgroupNamespace:  "cgroup",
	specs.TimeNamespace:    "time",
}

func validateSpec(s *specs.Spec) error {
	if s.Version == "" {
		return invalid("ociVersion is missing")
	}
	if !strings.HasPrefix(s.Version, "1.") {
		return invalid("ociVersion %q is not supported (want 1.x)", s.Version)
	}
	if s.Root == nil || s.Root.Path == "" {
		return invalid("root.path is missing")
	}
	if s.Process == nil {
		return invalid("process is missing")
	}
	if err := validateProcess(s.Process); err != nil {
		return err
	}
	if s.Linux == nil {
		return invalid("linux is missing")
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range s.Linux.Namespaces {
		if _, ok := nsFlags[ns.Type]; !ok {
			return invalid("linux.namespaces: unknown type %q", ns.Type)
		}
		if seen[ns.Type] {
			return invalid("linux.namespaces: %s listed twice", ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" {
			if err := checkNSPath(ns); err != nil {
				return err
			}
		}
	}
	if s.Hostname != "" && !seen[specs.UTSNamespace] {
		return invalid("hostname needs a uts namespace")
	}
	if s.Domainname != "" && !seen[specs.UTSNamespace] {
		return invalid("domainname needs a uts namespace")
	}
	if !seen[specs.MountNamespace] {
		return invalid("linux.namespaces: a mount namespace is required")
	}
	if (len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0) && !seen[specs.UserNamespace] {
		return invalid("uidMappings/gidMappings need a user namespace")
	}
	if len(s.Linux.TimeOffsets) > 0 && !seen[specs.TimeNamespace] {
		return invalid("timeOffsets need a time namespace")
	}
	for _, m := range s.Mounts {
		if m.Destination == "" {
			return invalid("mounts: a mount has no destination")
		}
		for _, o := range m.Options {
			if _, ok := recursiveAttrs[o]; !ok && recursiveMountOptions[o] || o == "idmap" || o == "ridmap" {
				return fmt.Errorf("mounts: %s: option %q: %w", m.Destination, o, errdefs.ErrNotImplemented)
			}
		}
		if len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 {
			return fmt.Errorf("mounts: %s: idmapped mounts: %w", m.Destination, errdefs.ErrNotImplemented)
		}
	}
	if s.Linux.RootfsPropagation != "" {
		if _, ok := propagationFlags[s.Linux.RootfsPropagation]; !ok {
			return invalid("linux.rootfsPropagation %q is unknown", s.Linux.RootfsPropagation)
		}
	}
	if s.Linux.IntelRdt != nil {
		return fmt.Errorf("linux.intelRdt: %w", errdefs.ErrNotImplemented)
	}
	if s.Linux.MemoryPolicy != nil {
		return fmt.Errorf("linux.memoryPolicy: %w", errdefs.ErrNotImplemented)
	}
	if len(s.Linux.NetDevices) > 0 {
		return fmt.Errorf("linux.netDevices: %w", errdefs.ErrNotImplemented)
	}
	if s.Process.CommandLine != "" {
		return invalid("process.commandLine is for Windows")
	}
	if s.Linux.MountLabel != "" && !lsmEnabled("selinux") {
		return invalid("linux.mountLabel is set but the host has no SELinux")
	}
	return nil
}

func validateProcess(p *specs.Process) error {
	if len(p.Args) == 0 && p.CommandLine == "" {
		return invalid("process.args is empty")
	}
	if p.Cwd == "" {
		return invalid("process.cwd is missing")
	}
	if !filepath.IsAbs(p.Cwd) {
		return invalid("process.cwd %q is not absolute", p.Cwd)
	}
	for _, r := range p.Rlimits {
		if _, ok := rlimitNames[r.Type]; !ok {
			return invalid("process.rlimits: unknown type %q", r.Type)
		}
		if r.Soft > r.Hard {
			return invalid("process.rlimits: %s soft limit %d is above its hard limit %d", r.Type, r.Soft, r.Hard)
		}
	}
	if p.ApparmorProfile != "" && !lsmEnabled("apparmor") {
		return invalid("process.apparmorProfile %q is set but the host has no AppArmor", p.ApparmorProfile)
	}
	if p.SelinuxLabel != "" && !lsmEnabled("selinux") {
		return invalid("process.selinuxLabel %q is set but the host has no SELinux", p.SelinuxLabel)
	}
	if c := p.Capabilities; c != nil {
		for _, list := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
			if _, err := caps.Parse(list); err != nil {
				return fmt.Errorf("process.capabilities: %w", err)
			}
		}
	}
	if p.IOPriority != nil {
		if _, ok := ioprioClasses[p.IOPriority.Class]; !ok {
			return invalid("process.ioPriority: unknown class %q", p.IOPriority.Class)
		}
	}
	if p.Scheduler != nil {
		if _, ok := schedPolicies[p.Scheduler.Policy]; !ok {
			return invalid("process.scheduler: unknown policy %q", p.Scheduler.Policy)
		}
	}
	if p.ExecCPUAffinity != nil {
		return fmt.Errorf("process.execCPUAffinity: %w", errdefs.ErrNotImplemented)
	}
	return nil
}

// checkNSPath makes sure a namespace given by path is one of the right type,
// so a typo fails at create rather than deep inside the init.
func checkNSPath(ns specs.LinuxNamespace) error {
	fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return invalid("linux.namespaces: %s namespace path %s: %v", ns.Type, ns.Path, err)
	}
	defer unix.Close(fd)
	const nsGetNStype = 0xb703 // NS_GET_NSTYPE, linux/nsfs.h
	t, err := unix.IoctlRetInt(fd, nsGetNStype)
	if err != nil {
		return invalid("linux.namespaces: %s namespace path %s is not a namespace", ns.Type, ns.Path)
	}
	if uintptr(t) != nsFlags[ns.Type] {
		return invalid("linux.namespaces: path %s is not a %s namespace", ns.Path, ns.Type)
	}
	return nil
}

// lsmEnabled says whether the host runs the named LSM.
func lsmEnabled(name string) bool {
	b, err := os.ReadFile("/sys/kernel/security/lsm")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), ",") {
		if l == name {
			return true
		}
	}
	return false
}

func hasNS(s *specs.Spec, t specs.LinuxNamespaceType) (specs.LinuxNamespace, bool) {
	if s.Linux == nil {
		return specs.LinuxNamespace{}, false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return ns, true
		}
	}
	return specs.LinuxNamespace{}, false
}

// recursiveMountOptions are the mount_setattr(AT_RECURSIVE) options of
// config.md; they are not implemented and must not be silently ignored.
var recursiveMountOptions = map[string]bool{
	"rro": true, "rrw": true, "rnosuid": true, "rsuid": true, "rnodev": true, "rdev": true,
	"rnoexec": true, "rexec": true, "rnodiratime": true, "rdiratime": true, "rrelatime": true,
	"rnorelatime": true, "rnoatime": true, "ratime": true, "rstrictatime": true,
	"rnostrictatime": true, "rnosymfollow": true, "rsymfollow": true,
}
