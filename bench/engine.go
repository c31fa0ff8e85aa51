package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// engineEnv is shared by the engine scenarios: a berth daemon and dockerd
// (with a default bridge but no iptables rules) on roots of their own,
// podman on its own storage, each with the busybox test image loaded.
type engineEnv struct {
	berthSock string
	berthSvc  *service
	docker    *dockerd
	podman    []string // podman's global flags
	// podNet is podman's bridge network for the bridge scenario, made on
	// first use ("" until then); podNetErr says why it could not be.
	podNet    string
	podNetErr error
}

const (
	benchBridge = "berthbench0"
	benchTable  = "berth_bench"
	dockerBr    = "docker0"
)

func (e *env) engines() (*engineEnv, error) {
	if e.eng != nil {
		return e.eng, nil
	}
	berthBin = e.bin("berth")
	imgs, err := e.images()
	if err != nil {
		return nil, err
	}
	archive := filepath.Join(e.repo, "_output", "images", "busybox", "busybox.tar")
	ee := &engineEnv{}
	dir := filepath.Join(e.tmp, "berthd")
	ee.berthSock = filepath.Join(dir, "berth.sock")
	if ee.berthSvc, err = startService("berth daemon", filepath.Join(e.tmp, "berthd.log"), e.bin("berth"), "daemon",
		"--root", filepath.Join(dir, "root"), "--exec-root", dir, "-H", "unix://"+ee.berthSock,
		"--bridge", benchBridge, "--bip", "10.213.1.0/24", "--nft-table", benchTable); err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() {
		_ = ee.berth("rm", "-f", "$(all)")
		ee.berthSvc.stop()
		// With containers still attached the daemon keeps its bridge and
		// table for the next daemon; the bench's go with it regardless.
		_ = run("ip", "link", "del", benchBridge)
		_ = run("nft", "delete", "table", "inet", benchTable)
	})
	if err := ee.berthSvc.waitFor(func() error { return dial("unix", ee.berthSock) }); err != nil {
		return nil, err
	}
	if err := ee.berth("load", "-q", "-i", archive); err != nil {
		return nil, err
	}
	if d := imgs.docker; d != nil {
		ee.docker = d
		if err := d.cli("load", "-q", "-i", archive); err != nil {
			return nil, err
		}
	}
	if _, err := exec.LookPath("podman"); err == nil {
		runRoot, err := os.MkdirTemp("/run", "bench-podman-")
		if err != nil {
			return nil, err
		}
		ee.podman = []string{"--root", filepath.Join(e.tmp, "podman"), "--runroot", runRoot, "--storage-driver", "overlay",
			"--cgroup-manager", "cgroupfs", "--events-backend", "none", "--network-config-dir", filepath.Join(e.tmp, "podman-net")}
		e.closers = append(e.closers, func() {
			_ = ee.pod("rm", "-af")
			_ = run(append([]string{"podman"}, append(ee.podman, "system", "reset", "-f")...)...)
			_ = os.RemoveAll(runRoot)
			removeCgroupDir("libpod_parent")
		})
		if err := ee.pod("load", "-q", "-i", archive); err != nil {
			fmt.Fprintf(os.Stderr, "  podman not available: %v\n", err)
			ee.podman = nil
		}
	}
	e.eng = ee
	return ee, nil
}

// berth runs the berth CLI against the bench daemon. "$(all)" stands for
// every container's id.
func (ee *engineEnv) berth(args ...string) error {
	return expandAll(args, ee.berthIDs, func(a []string) error {
		return run(append([]string{berthBin, "-H", "unix://" + ee.berthSock}, a...)...)
	})
}

func (ee *engineEnv) berthIDs() ([]string, error) {
	out, err := exec.Command(berthBin, "-H", "unix://"+ee.berthSock, "ps", "-aq").Output()
	return strings.Fields(string(out)), err
}

func (ee *engineEnv) pod(args ...string) error {
	return run(append(append([]string{"podman"}, ee.podman...), args...)...)
}

var berthBin string

func expandAll(args []string, ids func() ([]string, error), fn func([]string) error) error {
	for i, a := range args {
		if a == "$(all)" {
			all, err := ids()
			if err != nil {
				return err
			}
			if len(all) == 0 {
				return nil
			}
			args = append(append(append([]string{}, args[:i]...), all...), args[i+1:]...)
			break
		}
	}
	return fn(args)
}

func removeCgroupDir(name string) {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", name))
	for _, d := range dirs {
		subs, _ := filepath.Glob(filepath.Join(d, "*", "cgroup.procs"))
		for _, s := range subs {
			_ = os.Remove(filepath.Dir(s))
		}
		_ = os.Remove(d)
	}
}

// podmanLimits: root here lacks CAP_SYS_RESOURCE, so podman's default
// rlimits exceed the hard limits.
var podmanLimits = []string{"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"}

// engineScenario builds a scenario from one command shape run by each
// engine's CLI: cmd gets the engine's runner.
func engineScenario(network string, before func(ee *engineEnv, r runner) error, body func(r runner) error) func(e *env) (tool, map[string]tool, func(), error) {
	return func(e *env) (tool, map[string]tool, func(), error) {
		berthBin = e.bin("berth")
		ee, err := e.engines()
		if err != nil {
			return tool{}, nil, nil, err
		}
		mk := func(r runner) tool {
			t := tool{run: func() error { return body(r) }}
			if before != nil {
				t.before = func() error { return before(ee, r) }
			}
			return t
		}
		berth := mk(runner{name: "berth", cli: ee.berth, netFlags: netFlag(network, "none")})
		refs := map[string]tool{}
		if d := ee.docker; d != nil {
			refs["docker"] = mk(runner{name: "docker", cli: d.cli, netFlags: netFlag(network, "none")})
		}
		if ee.podman != nil {
			podFlags := []string{"--network", "none"}
			if network == "bridge" {
				podFlags = nil
				if name, err := ee.podBridge(e); err == nil {
					podFlags = []string{"--network", name}
				} else {
					fmt.Fprintf(os.Stderr, "  podman's bridge: %v\n", err)
				}
			}
			if podFlags != nil {
				refs["podman"] = mk(runner{name: "podman", cli: ee.pod, netFlags: append(podFlags, podmanLimits...)})
			}
		}
		cleanup := func() {
			for _, r := range []runner{{cli: ee.berth}, {cli: func(a ...string) error {
				if ee.docker == nil {
					return nil
				}
				return ee.docker.cli(a...)
			}}} {
				_ = r.rmAll()
			}
			if ee.podman != nil {
				_ = ee.pod("rm", "-af")
			}
		}
		return berth, refs, cleanup, nil
	}
}

// podBridge makes podman's bridge network for the bridge scenario: its
// own subnet and bridge, no DNS (as the default bridges of docker and
// berth), in the bench's network config directory. netavark
// adds iptables(-nft) rules for it (NAT of the subnet; nothing leaves, the
// containers run true); the closer removes the network and the nft
// tables netavark's rules made.
func (ee *engineEnv) podBridge(e *env) (string, error) {
	if ee.podNet != "" || ee.podNetErr != nil {
		return ee.podNet, ee.podNetErr
	}
	const name = "benchpod"
	before := nftTables()
	e.closers = append(e.closers, func() {
		_ = ee.pod("rm", "-af")
		out, _ := exec.Command("podman", append(ee.podman, "network", "inspect", "-f", "{{.NetworkInterface}}", name)...).Output()
		_ = ee.pod("network", "rm", "-f", name)
		if br := strings.TrimSpace(string(out)); br != "" {
			_ = run("ip", "link", "del", br) // if netavark left it
		}
		for t := range nftTables() {
			if before[t] {
				continue
			}
			// Only what netavark made: another tool's new table stays.
			out, _ := exec.Command("nft", append([]string{"list", "table"}, strings.Fields(t)...)...).Output()
			if strings.Contains(string(out), "NETAVARK") {
				_ = run(append([]string{"nft", "delete", "table"}, strings.Fields(t)...)...)
			}
		}
	})
	if ee.podNetErr = ee.pod("network", "create", "--subnet", "10.213.3.0/24", "--disable-dns", name); ee.podNetErr == nil {
		ee.podNet = name
	}
	return ee.podNet, ee.podNetErr
}

// nftTables lists the machine's nft tables as "family name".
func nftTables() map[string]bool {
	out, _ := exec.Command("nft", "list", "tables").Output()
	tables := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if t, ok := strings.CutPrefix(strings.TrimSpace(l), "table "); ok {
			tables[t] = true
		}
	}
	return tables
}

func netFlag(network, none string) []string {
	if network == "bridge" {
		return nil // each engine's default bridge
	}
	return []string{"--network", none}
}

// runner is one engine's CLI with the flags its containers need here.
type runner struct {
	name     string
	cli      func(args ...string) error
	netFlags []string
}

func (r runner) run(args ...string) error {
	return r.cli(append(append([]string{"run"}, r.netFlags...), args...)...)
}

// rmAll force-removes every container the engine has.
func (r runner) rmAll() error {
	return r.cli("rm", "-f", "$(all)")
}

func engineScenarios() []scenario {
	trapSleep := []string{"busybox:latest", "sh", "-c", `trap "exit 0" TERM; while true; do sleep 0.1; done`}
	return []scenario{
		{name: "engine: run --rm busybox true", setup: engineScenario("none", nil, func(r runner) error {
			return r.run("--rm", "busybox:latest", "true")
		})},
		{name: "engine: run --rm true, default bridge", setup: engineScenario("bridge", nil, func(r runner) error {
			return r.run("--rm", "busybox:latest", "true")
		})},
		{name: "engine: 50× run -d sleep", setup: engineScenario("none", func(_ *engineEnv, r runner) error {
			return r.cleanAll()
		}, func(r runner) error {
			for range 50 {
				if err := r.run("-d", "busybox:latest", "sleep", "600"); err != nil {
					return err
				}
			}
			return nil
		})},
		{name: "engine: exec true", setup: engineScenario("none", func(_ *engineEnv, r runner) error {
			if err := r.cli("inspect", "execme"); err == nil {
				return nil
			}
			return r.run(append([]string{"-d", "--name", "execme"}, trapSleep...)...)
		}, func(r runner) error {
			return r.cli("exec", "execme", "true")
		})},
		{name: "engine: 500 GETs of 64 KiB via 127.0.0.1:port", setup: publishedPort(500)},
		{name: "engine: stop (TERM-handling)", setup: engineScenario("none", func(_ *engineEnv, r runner) error {
			_ = r.cli("rm", "-f", "stopme")
			return r.run(append([]string{"-d", "--name", "stopme"}, trapSleep...)...)
		}, func(r runner) error {
			return r.cli("stop", "stopme")
		})},
	}
}

// publishedPort times n HTTP GETs from the host to a busybox httpd in a
// container, through a port published on 127.0.0.1: berth's kernel NAT
// beside docker's userland proxy. Each GET is a new connection, as busybox
// httpd closes it after one response.
func publishedPort(n int) func(e *env) (tool, map[string]tool, func(), error) {
	return func(e *env) (tool, map[string]tool, func(), error) {
		berthBin = e.bin("berth")
		ee, err := e.engines()
		if err != nil {
			return tool{}, nil, nil, err
		}
		payload := strings.Repeat("berth bench payload\n", 3277) // ~64 KiB
		start := func(r runner) (string, error) {
			port, err := freePort()
			if err != nil {
				return "", err
			}
			_ = r.cli("rm", "-f", "web")
			script := "mkdir -p /www && printf '%s' \"$P\" > /www/index.html && exec httpd -f -p 80 -h /www"
			if err := r.cli("run", "-d", "--name", "web", "-e", "P="+payload, "-p", fmt.Sprintf("127.0.0.1:%d:80", port),
				"busybox:latest", "sh", "-c", script); err != nil {
				return "", err
			}
			url := fmt.Sprintf("http://127.0.0.1:%d/index.html", port)
			deadline := time.Now().Add(10 * time.Second)
			for {
				if _, err := get(url); err == nil {
					return url, nil
				} else if time.Now().After(deadline) {
					return "", fmt.Errorf("%s: published port never answered: %w", r.name, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		loop := func(url string) tool {
			return tool{run: func() error {
				for range n {
					if _, err := get(url); err != nil {
						return err
					}
				}
				return nil
			}}
		}
		bu, err := start(runner{name: "berth", cli: ee.berth})
		if err != nil {
			return tool{}, nil, nil, err
		}
		refs := map[string]tool{}
		if d := ee.docker; d != nil {
			du, err := start(runner{name: "docker", cli: d.cli})
			if err != nil {
				return tool{}, nil, nil, err
			}
			refs["docker"] = loop(du)
		}
		cleanup := func() {
			_ = ee.berth("rm", "-f", "web")
			if ee.docker != nil {
				_ = ee.docker.cli("rm", "-f", "web")
			}
		}
		return loop(bu), refs, cleanup, nil
	}
}

var httpClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func get(url string) (int64, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return n, err
}

func (r runner) cleanAll() error {
	switch r.name {
	case "docker", "berth":
		return r.rmAll()
	default:
		return r.cli("rm", "-af")
	}
}

// memoryReport starts 50 sleeping containers in each engine and sums the
// RSS and PSS of the engine's processes: berth's daemon and monitors;
// dockerd, containerd and its shims.
func memoryReport(e *env) (string, error) {
	berthBin = e.bin("berth")
	ee, err := e.engines()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n# memory with 50 containers running (sleep), summed over the engine's processes\n")
	fmt.Fprintf(&b, "%-10s %6s %10s %10s\n", "engine", "procs", "RSS", "PSS")
	measure := func(name string, r runner, match func(cmd string) bool) error {
		if err := r.cleanAll(); err != nil {
			return err
		}
		for range 50 {
			if err := r.run("-d", "busybox:latest", "sleep", "600"); err != nil {
				return err
			}
		}
		time.Sleep(2 * time.Second)
		n, rss, pss := sumMemory(match)
		fmt.Fprintf(&b, "%-10s %6d %8.1f MiB %8.1f MiB\n", name, n, float64(rss)/1024, float64(pss)/1024)
		return r.cleanAll()
	}
	// The daemon (its command line names the bench's root) and the
	// monitors (berth re-executed, then the C holder).
	if err := measure("berth", runner{name: "berth", cli: ee.berth, netFlags: []string{"--network", "none"}}, func(cmd string) bool {
		return strings.HasPrefix(cmd, "berth daemon") || strings.HasPrefix(cmd, "berth") && !strings.Contains(cmd, " -H ")
	}); err != nil {
		return "", err
	}
	if d := ee.docker; d != nil {
		if err := measure("docker", runner{name: "docker", cli: d.cli, netFlags: []string{"--network", "none"}}, func(cmd string) bool {
			return strings.HasPrefix(cmd, "dockerd") || strings.HasPrefix(cmd, "containerd") || strings.Contains(cmd, "containerd-shim")
		}); err != nil {
			return "", err
		}
	}
	if ee.podman != nil {
		if err := measure("podman", runner{name: "podman", cli: ee.pod, netFlags: append([]string{"--network", "none"}, podmanLimits...)}, func(cmd string) bool {
			return strings.Contains(cmd, "conmon")
		}); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

// sumMemory adds up RSS and PSS (KiB) of every process whose command line
// matches, from /proc/<pid>/smaps_rollup.
func sumMemory(match func(cmd string) bool) (n int, rss, pss int64) {
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || len(cmd) == 0 {
			continue
		}
		c := strings.ReplaceAll(string(cmd), "\x00", " ")
		if i := strings.LastIndex(strings.Fields(c)[0], "/"); i >= 0 {
			c = c[i+1:]
		}
		if !match(c) {
			continue
		}
		r, p, err := smaps(pid)
		if err != nil {
			continue
		}
		n, rss, pss = n+1, rss+r, pss+p
	}
	return n, rss, pss
}

func smaps(pid int) (rss, pss int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "Rss:":
			rss = v
		case "Pss:":
			pss = v
		}
	}
	if rss == 0 {
		return 0, 0, errors.New("no Rss line")
	}
	return rss, pss, sc.Err()
}
