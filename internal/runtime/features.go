package runtime

import (
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/berth-dev/berth/internal/runtime/caps"
)

// Features is what `berth-runtime features` prints (features.md).
func Features() features.Features {
	t, f := true, false
	var mopts []string
	for o := range mountOptions {
		mopts = append(mopts, o)
	}
	for o := range propagationFlags {
		mopts = append(mopts, o)
	}
	var ns []string
	for t := range nsFlags {
		ns = append(ns, string(t))
	}
	apparmor, selinux := lsmEnabled("apparmor"), lsmEnabled("selinux")
	return features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  mopts,
		Linux: &features.Linux{
			Namespaces:   ns,
			Capabilities: caps.Known(),
			Cgroup:       &features.Cgroup{V1: &t, V2: &t, Systemd: &f, SystemdUser: &f},
			Seccomp: &features.Seccomp{
				Enabled:   &t,
				Actions:   []string{"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"},
				Operators: []string{"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"},
				Archs:     []string{"SCMP_ARCH_" + map[string]string{"amd64": "X86_64", "arm64": "AARCH64"}[runtime.GOARCH]},
			},
			Apparmor:        &features.Apparmor{Enabled: &apparmor},
			Selinux:         &features.Selinux{Enabled: &selinux},
			IntelRdt:        &features.IntelRdt{Enabled: &f},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &f}},
		},
		Annotations: map[string]string{"org.opencontainers.runc.checkpoint.enabled": "false"},
	}
}
