package testutil

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RequireRoot skips t unless it runs as root, and otherwise registers a
// leak check that runs after every other cleanup of t (call it first).
func RequireRoot(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped in -short mode (the unit tier)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs real namespaces, mounts and cgroups (run as root, e.g. sudo make test-integration)")
	}
	CheckLeaks(t)
}

// CheckLeaks records the machine's resources now and fails t if, after all
// of t's cleanups ran, any resource appeared that was not there before.
func CheckLeaks(t testing.TB) {
	t.Helper()
	before := TakeSnapshot()
	t.Cleanup(func() {
		if leaks := LeaksSince(before); len(leaks) > 0 {
			t.Errorf("test leaked resources:\n  %s", strings.Join(leaks, "\n  "))
		}
	})
}

// LeaksSince is LeakedSince of a fresh snapshot, retried for up to a second
// because killed processes and lazily detached mounts take a moment to go.
func LeaksSince(before Snapshot) []string {
	var leaks []string
	for range 50 {
		leaks = TakeSnapshot().LeakedSince(before)
		if len(leaks) == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return leaks
}

// Snapshot is the set of machine resources a test could leak.
type Snapshot struct {
	Mounts    []string
	Netns     []string
	Links     []string
	Cgroups   []string
	NftTables []string
	Processes map[int]string
	Namespace map[string]bool // pid and mnt namespaces any process is in
}

// TakeSnapshot reads the current resources of the machine.
func TakeSnapshot() Snapshot {
	s := Snapshot{
		Mounts:    mounts(),
		Netns:     netns(),
		Links:     links(),
		Cgroups:   cgroups(),
		NftTables: nftTables(),
	}
	s.Processes, s.Namespace = processes()
	return s
}

// LeakedSince lists what s has that before did not: new mounts, network
// namespaces, links, cgroups and nft tables; new processes that descend from
// this one; and any process living in a pid or mount namespace that did not
// exist before (a container left running).
func (s Snapshot) LeakedSince(before Snapshot) []string {
	var out []string
	add := func(kind string, now, was []string) {
		for _, x := range now {
			if !slices.Contains(was, x) {
				out = append(out, kind+": "+x)
			}
		}
	}
	add("mount", s.Mounts, before.Mounts)
	add("netns", s.Netns, before.Netns)
	add("link", s.Links, before.Links)
	add("cgroup", s.Cgroups, before.Cgroups)
	add("nft table", s.NftTables, before.NftTables)
	self := os.Getpid()
	var pids []int
	for pid := range s.Processes {
		if _, ok := before.Processes[pid]; !ok {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	for _, pid := range pids {
		if pid == self {
			continue
		}
		newNS := false
		for _, ns := range namespacesOf(pid) {
			if !before.Namespace[ns] {
				newNS = true
			}
		}
		if newNS || descendsFrom(pid, self) {
			out = append(out, fmt.Sprintf("process: %d %s", pid, s.Processes[pid]))
		}
	}
	return out
}

func mounts() []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) > 4 {
			out = append(out, f[4]+" ("+f[3]+")")
		}
	}
	return out
}

func netns() []string {
	entries, _ := os.ReadDir("/run/netns")
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func links() []string {
	ifs, _ := net.Interfaces()
	var out []string
	for _, i := range ifs {
		out = append(out, i.Name)
	}
	return out
}

func cgroups() []string {
	var out []string
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range entries {
		root := filepath.Join("/sys/fs/cgroup", e.Name())
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			// The machine's own agent makes cgroups here for its sessions;
			// they are not ours to count or touch.
			if d.Name() == "process_api" {
				return filepath.SkipDir
			}
			out = append(out, p)
			return nil
		})
	}
	return out
}

func nftTables() []string {
	nft, err := exec.LookPath("nft")
	if err != nil {
		return nil
	}
	b, err := exec.Command(nft, "list", "tables").Output()
	if err != nil {
		return nil
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		if l := strings.TrimSpace(line); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func processes() (map[int]string, map[string]bool) {
	procs := map[int]string{}
	nss := map[string]bool{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		procs[pid] = string(bytes.ReplaceAll(bytes.TrimRight(cmd, "\x00"), []byte{0}, []byte{' '}))
		for _, ns := range namespacesOf(pid) {
			nss[ns] = true
		}
	}
	return procs, nss
}

func namespacesOf(pid int) []string {
	var out []string
	for _, kind := range []string{"pid", "mnt"} {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, kind)); err == nil {
			out = append(out, l)
		}
	}
	return out
}

func descendsFrom(pid, ancestor int) bool {
	for range 64 {
		p := parentOf(pid)
		if p <= 1 {
			return false
		}
		if p == ancestor {
			return true
		}
		pid = p
	}
	return false
}

func parentOf(pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}
