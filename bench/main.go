// Command bench times berth beside reference tools (runc, crun; later
// dockerd and podman) on named scenarios and prints medians and ratios.
//
// The machine is noisy, so each scenario runs berth and each reference in
// alternation (A B A B …) after a warm-up, and reports medians and the
// min–max spread, never a single timing. Results are also written as text
// to bench/results/ so runs can be compared over time.
//
// crun refuses hybrid cgroup hosts like this one because the unified
// hierarchy lists hugetlb in cgroup.controllers. So that every tool runs
// under the same conditions, the harness re-executes itself in a private
// mount namespace where an empty file is bind-mounted over that file, and
// runs all tools there.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const controllersFile = "/sys/fs/cgroup/unified/cgroup.controllers"

func main() {
	pairs := flag.Int("pairs", 10, "alternated berth/reference pairs per scenario (at least 10)")
	warmup := flag.Int("warmup", 2, "untimed runs of each tool before timing")
	run := flag.String("run", ".", "regexp selecting scenarios by name")
	out := flag.String("out", "bench/results", "directory for the results file")
	inner := flag.Bool("inner", false, "internal: already in the private mount namespace")
	flag.Parse()
	if *pairs < 10 {
		fatalf("-pairs must be at least 10 (got %d): medians of fewer are noise here", *pairs)
	}
	if !*inner {
		reexecPrivate()
		return
	}
	if err := maskControllers(); err != nil {
		fatalf("mask %s: %v", controllersFile, err)
	}
	sel, err := regexp.Compile(*run)
	if err != nil {
		fatalf("-run: %v", err)
	}
	env, err := newEnv()
	if err != nil {
		fatalf("%v", err)
	}
	defer env.close()

	var rows []row
	for _, sc := range scenarios() {
		if !sel.MatchString(sc.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "scenario %q…\n", sc.name)
		r, err := measure(env, sc, *pairs, *warmup)
		if err != nil {
			fmt.Fprintf(os.Stderr, "  skipped: %v\n", err)
			rows = append(rows, row{scenario: sc.name, note: "skipped: " + err.Error()})
			continue
		}
		rows = append(rows, r...)
	}
	table := render(rows, *pairs)
	if sel.MatchString("engine: memory") {
		mem, err := memoryReport(env)
		if err != nil {
			mem = "\n# memory: skipped: " + err.Error() + "\n"
		}
		table += mem
	}
	fmt.Print(table)
	if err := save(*out, table); err != nil {
		fatalf("save results: %v", err)
	}
}

// reexecPrivate runs this binary again inside a new mount namespace whose
// mounts do not propagate back to the host.
func reexecPrivate() {
	self, err := os.Executable()
	if err != nil {
		fatalf("%v", err)
	}
	args := append([]string{"--mount", "--propagation", "private", self, "-inner"}, os.Args[1:]...)
	cmd := exec.Command("unshare", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			os.Exit(ee.ExitCode())
		}
		fatalf("unshare: %v", err)
	}
}

func maskControllers() error {
	if _, err := os.Stat(controllersFile); err != nil {
		return nil // not a hybrid host: nothing to hide
	}
	empty := filepath.Join(os.TempDir(), "berth-bench-empty")
	if err := os.WriteFile(empty, nil, 0o444); err != nil {
		return err
	}
	return unix.Mount(empty, controllersFile, "", unix.MS_BIND, "")
}

// row is one line of the table: berth against one reference tool.
type row struct {
	scenario, ref    string
	berth, reference []time.Duration
	note             string
}

// tool is one contender in a scenario: before runs untimed ahead of every
// timed run (to make a pull cold again, say).
type tool struct {
	before func() error
	run    func() error
}

func (t tool) timed() (time.Duration, error) {
	if t.before != nil {
		if err := t.before(); err != nil {
			return 0, fmt.Errorf("prepare: %w", err)
		}
	}
	start := time.Now()
	err := t.run()
	return time.Since(start), err
}

func measure(env *env, sc scenario, pairs, warmup int) ([]row, error) {
	berth, refs, cleanup, err := sc.setup(env)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	if len(refs) == 0 {
		return nil, fmt.Errorf("no reference tool available")
	}
	names := make([]string, 0, len(refs))
	for n := range refs {
		names = append(names, n)
	}
	sort.Strings(names)
	for range warmup {
		if _, err := berth.timed(); err != nil {
			return nil, fmt.Errorf("berth warm-up: %w", err)
		}
		for _, n := range names {
			fn, ok := refs[n]
			if !ok {
				continue
			}
			if _, err := fn.timed(); err != nil {
				delete(refs, n)
				fmt.Fprintf(os.Stderr, "  %s dropped: %v\n", n, err)
			}
		}
	}
	rows := map[string]*row{}
	for _, n := range names {
		if _, ok := refs[n]; ok {
			rows[n] = &row{scenario: sc.name, ref: n}
		}
	}
	var berthTimes []time.Duration
	for range pairs {
		d, err := berth.timed()
		if err != nil {
			return nil, fmt.Errorf("berth: %w", err)
		}
		berthTimes = append(berthTimes, d)
		for _, n := range names {
			r, ok := rows[n]
			if !ok {
				continue
			}
			d, err := refs[n].timed()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", n, err)
			}
			r.reference = append(r.reference, d)
		}
	}
	var out []row
	for _, n := range names {
		if r, ok := rows[n]; ok {
			r.berth = berthTimes
			out = append(out, *r)
		}
	}
	return out, nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	lo, hi := ds[0], ds[0]
	for _, d := range ds {
		lo, hi = min(lo, d), max(hi, d)
	}
	return fmtDur(lo) + "–" + fmtDur(hi)
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	default:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
}

func render(rows []row, pairs int) string {
	var b strings.Builder
	host, _ := os.Hostname()
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	fmt.Fprintf(&b, "# berth bench %s  host %s  kernel %s  %d alternated pairs, medians\n",
		time.Now().UTC().Format(time.RFC3339), host, unix.ByteSliceToString(uts.Release[:]), pairs)
	fmt.Fprintf(&b, "%-36s %10s %-10s %10s %7s %17s %17s\n", "scenario", "berth", "reference", "ref", "ratio", "berth min–max", "ref min–max")
	for _, r := range rows {
		if r.note != "" {
			fmt.Fprintf(&b, "%-36s %s\n", r.scenario, r.note)
			continue
		}
		bm, rm := median(r.berth), median(r.reference)
		fmt.Fprintf(&b, "%-36s %10s %-10s %10s %7.2f %17s %17s\n", r.scenario, fmtDur(bm), r.ref, fmtDur(rm),
			float64(bm)/float64(rm), spread(r.berth), spread(r.reference))
	}
	return b.String()
}

func save(dir, table string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	name := filepath.Join(dir, time.Now().UTC().Format("20060102-150405")+".txt")
	if err := os.WriteFile(name, []byte(table), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "results written to %s\n", name)
	return nil
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}
