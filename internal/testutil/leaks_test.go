package testutil

import (
	"fmt"
	"os/exec"
	"slices"
	"testing"
)

func TestLeakedSinceListsNewResources(t *testing.T) {
	before := Snapshot{Mounts: []string{"/ (1:1)"}, Links: []string{"lo"}, Processes: map[int]string{}}
	after := Snapshot{Mounts: []string{"/ (1:1)", "/tmp/x (0:40)"}, Links: []string{"lo", "veth0"}, Cgroups: []string{"/sys/fs/cgroup/pids/berth"}, Processes: map[int]string{}}
	got := after.LeakedSince(before)
	want := []string{"mount: /tmp/x (0:40)", "link: veth0", "cgroup: /sys/fs/cgroup/pids/berth"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestLeakedSinceSeesLiveChild(t *testing.T) {
	before := TakeSnapshot()
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep binary:", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	leaks := TakeSnapshot().LeakedSince(before)
	found := false
	for _, l := range leaks {
		if l == fmt.Sprintf("process: %d sleep 5", cmd.Process.Pid) {
			found = true
		}
	}
	if !found {
		t.Fatalf("live child %d not reported; got %q", cmd.Process.Pid, leaks)
	}

}
