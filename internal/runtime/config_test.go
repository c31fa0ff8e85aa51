package runtime

import (
	"fmt"
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
)

// Each case runs the busybox bundle with an edited spec and a script, and
// checks the script's output: the effect seen from inside the container.
func TestConfigEffects(t *testing.T) {
	testutil.RequireRoot(t)
	rt := newRuntime(t)
	i64 := func(v int64) *int64 { return &v }
	cases := []struct {
		name   string
		edit   func(*specs.Spec)
		script string
		want   []string // substrings of the output
		code   int
		copy   bool // needs a private rootfs
	}{
		{
			name:   "hostname and domainname",
			edit:   func(s *specs.Spec) { s.Hostname = "box1"; s.Domainname = "example.test" },
			script: "hostname; cat /proc/sys/kernel/domainname",
			want:   []string{"box1\nexample.test"},
		},
		{
			name: "capabilities",
			edit: func(s *specs.Spec) {
				s.Process.Capabilities = &specs.LinuxCapabilities{
					Bounding: []string{"CAP_KILL", "CAP_CHOWN"}, Effective: []string{"CAP_KILL"},
					Permitted: []string{"CAP_KILL"},
				}
			},
			script: "grep -E '^Cap(Eff|Bnd|Prm)' /proc/self/status",
			want:   []string{"CapPrm:\t0000000000000020", "CapEff:\t0000000000000020", "CapBnd:\t0000000000000021"},
		},
		{
			name: "rlimits",
			edit: func(s *specs.Spec) {
				s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 123, Hard: 456}}
			},
			script: "ulimit -n; ulimit -Hn",
			want:   []string{"123\n456"},
		},
		{
			name:   "oom score adj",
			edit:   func(s *specs.Spec) { v := 500; s.Process.OOMScoreAdj = &v },
			script: "cat /proc/self/oom_score_adj",
			want:   []string{"500"},
		},
		{
			name: "user, groups and umask",
			edit: func(s *specs.Spec) {
				m := uint32(0o077)
				s.Process.User = specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{5, 7}, Umask: &m}
			},
			script: "id -u; id -g; id -G; umask",
			want:   []string{"1000\n1001\n1001 5 7\n0077"},
		},
		{
			name:   "env and cwd",
			edit:   func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "FOO=bar"); s.Process.Cwd = "/tmp" },
			script: "echo $FOO; pwd",
			want:   []string{"bar\n/tmp"},
		},
		{
			name:   "masked paths read empty",
			script: "wc -c < /proc/timer_list; ls /proc/acpi 2>/dev/null | wc -l",
			want:   []string{"0\n0"},
		},
		{
			name:   "readonly paths refuse writes",
			script: "echo 1 > /proc/sys/kernel/ns_last_pid 2>&1 || echo refused",
			want:   []string{"refused"},
		},
		{
			name:   "readonly root",
			script: "touch /newfile 2>&1 || echo refused",
			want:   []string{"Read-only file system", "refused"},
		},
		{
			name: "mount flags",
			edit: func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "size=1m", "mode=700"}},
					specs.Mount{Destination: "/etc/motd-ro", Type: "bind", Source: "rootfs/etc/motd", Options: []string{"bind", "ro"}})
			},
			script: "grep ' /data ' /proc/self/mountinfo; stat -c %a /data; grep ' /etc/motd-ro ' /proc/self/mountinfo; echo x > /etc/motd-ro || echo refused",
			want:   []string{"rw,nosuid,nodev,noexec", "700", "/etc/motd-ro ro,", "refused"},
			copy:   true,
		},
		{
			name: "recursive mount attributes",
			edit: func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt/etc", Type: "bind", Source: "rootfs/etc", Options: []string{"rbind", "rro", "rnosuid", "rnoatime"}})
			},
			script: "grep ' /mnt/etc ' /proc/self/mountinfo; touch /mnt/etc/x 2>&1 || echo refused",
			want:   []string{"/mnt/etc ro,nosuid,noatime", "refused"},
			copy:   true,
		},
		{
			name:   "default devices and symlinks",
			script: "ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty | wc -l; for l in fd stdin ptmx; do readlink /dev/$l; done; echo hi > /dev/null && echo ok",
			want:   []string{"6\n/proc/self/fd\n/proc/self/fd/0\npts/ptmx\nok"},
		},
		{
			name: "linux.devices",
			edit: func(s *specs.Spec) {
				m := os.FileMode(0o640)
				s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/mydev", Type: "c", Major: 1, Minor: 3, FileMode: &m}}
			},
			script: "stat -c '%F %t:%T %a' /dev/mydev",
			want:   []string{"character special file 1:3 640"},
		},
		{
			name:   "sysctl",
			edit:   func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"} },
			script: "cat /proc/sys/net/ipv4/ip_forward",
			want:   []string{"1"},
		},
		{
			name:   "no new privileges",
			script: "grep NoNewPrivs /proc/self/status",
			want:   []string{"NoNewPrivs:\t1"},
		},
		{
			name:   "pid namespace",
			script: "echo $$; ls /proc | grep -c '^[0-9]'",
			want:   []string{"1\n"},
		},
		{
			name: "memory limit in the cgroup",
			edit: func(s *specs.Spec) {
				s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(64 << 20)}
				s.Linux.Resources.Pids = &specs.LinuxPids{Limit: i64(50)}
			},
			script: "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max",
			want:   []string{fmt.Sprint(64<<20) + "\n50"},
		},
		{
			name:   "cgroup namespace root",
			script: "cat /proc/self/cgroup | grep memory",
			want:   []string{":memory:/\n"},
		},
		{
			name:   "personality",
			edit:   func(s *specs.Spec) { s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32} },
			script: "uname -m",
			want:   []string{"i686"},
		},
		{
			name: "seccomp errno",
			edit: func(s *specs.Spec) {
				s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
					{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: func() *uint { v := uint(1); return &v }()},
				}}
				s.Root.Readonly = false
			},
			script: "mkdir /tmp/x 2>&1; echo done",
			want:   []string{"Operation not permitted", "done"},
		},
		{
			// Without no_new_privs the filter needs CAP_SYS_ADMIN, which a
			// switch to a non-root user takes away: it must load first.
			name: "seccomp as a non-root user without no_new_privs",
			edit: func(s *specs.Spec) {
				s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
					{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: func() *uint { v := uint(1); return &v }()},
				}}
				s.Process.NoNewPrivileges = false
				s.Process.User = specs.User{UID: 65534, GID: 65534}
			},
			script: "id -u; mkdir /tmp/x 2>&1; echo done",
			want:   []string{"65534", "Operation not permitted", "done"},
		},
		{
			name: "ioPriority",
			edit: func(s *specs.Spec) {
				s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE, Priority: 0}
			},
			script: "cat /proc/self/io 2>/dev/null >/dev/null; echo ok",
			want:   []string{"ok"},
		},
		{
			name:   "scheduler",
			edit:   func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Nice: 5} },
			script: "grep -E '^policy' /proc/self/sched | tr -s ' '; cut -d' ' -f19 /proc/self/stat",
			want:   []string{": 3\n5"},
		},
		{
			name:   "rootfs propagation",
			edit:   func(s *specs.Spec) { s.Linux.RootfsPropagation = "rprivate" },
			script: "grep ' / / ' /proc/self/mountinfo | grep -c master: ; true",
			want:   []string{"0"},
		},
		{
			name:   "exit status",
			script: "exit 42",
			code:   42,
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := makeBundle(t, chain(tc.edit, shell(tc.script)), tc.copy)
			out, code := runContainer(t, rt, fmt.Sprintf("cfg%d", i), b)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; output:\n%s", code, tc.code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out+"\n", w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
