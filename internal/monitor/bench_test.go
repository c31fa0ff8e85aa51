package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
)

// memOf sums Rss and Pss of pid from smaps_rollup, in KiB.
func memOf(pid int) (rss, pss int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(fs[1], 10, 64)
		switch fs[0] {
		case "Rss:":
			rss = n
		case "Pss:":
			pss = n
		}
	}
	return rss, pss, sc.Err()
}

// BenchmarkMonitorMemory starts $BERTH_MONITORS (default 50) containers
// running sleep and reports the monitors' resident memory: RSS and PSS in
// MiB, in all and per monitor. $BERTH_MONITOR_BIN names the binary to run
// as the monitor (the berth binary); by default it is this test binary,
// which links more than berth's monitor needs. $BERTH_MONITOR_DUMP
// names a file to copy the first monitor's smaps to.
func BenchmarkMonitorMemory(b *testing.B) {
	testutil.RequireRoot(b)
	n := 50
	if v, err := strconv.Atoi(os.Getenv("BERTH_MONITORS")); err == nil && v > 0 {
		n = v
	}
	if bin := os.Getenv("BERTH_MONITOR_BIN"); bin != "" {
		old := exe
		exe = bin
		b.Cleanup(func() { exe = old })
	}
	img := testutil.Images(b)
	dir := b.TempDir()
	// One read-only bundle serves every container: the rootfs is bound
	// read-only in each container's own mount namespace.
	bundle := filepath.Join(dir, "bundle")
	if err := os.Mkdir(bundle, 0o755); err != nil {
		b.Fatal(err)
	}
	s := loadSpec(b, img.Bundle)
	s.Root.Path = img.Rootfs
	s.Root.Readonly = true
	s.Process.Args = []string{"/bin/sleep", "1000"}
	writeSpec(b, bundle, s)
	for b.Loop() {
		var hs []*Handle
		var cfgs []Config
		stopAll := func() {
			for i, h := range hs {
				killAndWait(b, cfgs[i], h)
			}
		}
		for i := range n {
			cfg := Config{
				ID: fmt.Sprintf("mem-%d", i), Bundle: bundle,
				RuntimeRoot: filepath.Join(dir, "rt"), StateDir: filepath.Join(dir, "s", strconv.Itoa(i)),
				LogPath: filepath.Join(dir, "s", fmt.Sprintf("%d.log", i)), LogMaxSize: 10 << 20, LogMaxFiles: 3,
			}
			h, err := Start(context.Background(), cfg)
			if err != nil {
				stopAll()
				b.Fatal(err)
			}
			hs = append(hs, h)
			cfgs = append(cfgs, cfg)
		}
		if d := os.Getenv("BERTH_MONITOR_DUMP"); d != "" {
			smaps, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", hs[0].MonitorPid()))
			_ = os.WriteFile(d, smaps, 0o644)
		}
		var rss, pss int64
		for _, h := range hs {
			r, p, err := memOf(h.MonitorPid())
			if err != nil {
				stopAll()
				b.Fatal(err)
			}
			rss += r
			pss += p
		}
		stopAll()
		b.ReportMetric(float64(rss)/1024, "RSS-MiB")
		b.ReportMetric(float64(pss)/1024, "PSS-MiB")
		b.ReportMetric(float64(rss)/1024/float64(n), "RSS-MiB/monitor")
		b.ReportMetric(float64(pss)/1024/float64(n), "PSS-MiB/monitor")
	}
}

// BenchmarkStart is one monitor start (create and start of a container
// running true) through to its exit status.
func BenchmarkStart(b *testing.B) {
	testutil.RequireRoot(b)
	img := testutil.Images(b)
	dir := b.TempDir()
	bundle := filepath.Join(dir, "bundle")
	if err := os.Mkdir(bundle, 0o755); err != nil {
		b.Fatal(err)
	}
	s := loadSpec(b, img.Bundle)
	s.Root.Path = img.Rootfs
	s.Root.Readonly = true
	s.Process.Args = []string{"/bin/true"}
	writeSpec(b, bundle, s)
	i := 0
	for b.Loop() {
		i++
		cfg := Config{ID: fmt.Sprintf("start-%d", i), Bundle: bundle, RuntimeRoot: filepath.Join(dir, "rt"),
			StateDir: filepath.Join(dir, "s", strconv.Itoa(i)), LogPath: filepath.Join(dir, "s", fmt.Sprintf("%d.log", i))}
		h, err := Start(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := h.Wait(context.Background()); err != nil {
			b.Fatal(err)
		}
		killAndWait(b, cfg, h)
	}
}

func loadSpec(tb testing.TB, bundle string) *specs.Spec {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		tb.Fatal(err)
	}
	return &s
}

func writeSpec(tb testing.TB, dir string, s *specs.Spec) {
	tb.Helper()
	b, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		tb.Fatal(err)
	}
}
