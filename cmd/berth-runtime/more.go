package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func cmdExec(ctx context.Context, g *globals, args []string) error {
	fs := newFlags("exec")
	var processFile, consoleSocket, pidFile, cwd, user string
	var tty, detach, noNewPrivs bool
	var preserve int
	var env, capsAdd, gids listFlag
	fs.StringVar(&processFile, "process", "", "process.json to run")
	fs.StringVar(&processFile, "p", "", "process.json to run")
	fs.StringVar(&consoleSocket, "console-socket", "", "unix socket to send the pty master to")
	fs.StringVar(&pidFile, "pid-file", "", "write the process's pid here")
	fs.StringVar(&cwd, "cwd", "", "working directory")
	fs.StringVar(&user, "user", "", "UID[:GID]")
	fs.StringVar(&user, "u", "", "UID[:GID]")
	fs.BoolVar(&tty, "tty", false, "allocate a pty")
	fs.BoolVar(&tty, "t", false, "allocate a pty")
	fs.BoolVar(&detach, "detach", false, "do not wait for the process")
	fs.BoolVar(&detach, "d", false, "do not wait for the process")
	fs.BoolVar(&noNewPrivs, "no-new-privs", false, "set no_new_privs")
	fs.IntVar(&preserve, "preserve-fds", 0, "pass fds 3..3+N-1 to the process")
	fs.Var(&env, "env", "KEY=VALUE (repeatable)")
	fs.Var(&env, "e", "KEY=VALUE (repeatable)")
	fs.Var(&capsAdd, "cap", "add a capability (repeatable)")
	fs.Var(&capsAdd, "c", "add a capability (repeatable)")
	fs.Var(&gids, "additional-gids", "additional gid (repeatable)")
	fs.Var(&gids, "g", "additional gid (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return fmt.Errorf("exec: want a container id: %w", errdefs.ErrInvalidArgument)
	}
	c, err := load(ctx, g, fs.Arg(0))
	if err != nil {
		return err
	}
	var p *specs.Process
	if processFile != "" {
		b, err := os.ReadFile(processFile)
		if err != nil {
			return fmt.Errorf("exec: %w", err)
		}
		p = &specs.Process{}
		if err := json.Unmarshal(b, p); err != nil {
			return fmt.Errorf("exec: %s: %v: %w", processFile, err, errdefs.ErrInvalidArgument)
		}
	} else {
		if fs.NArg() < 2 {
			return fmt.Errorf("exec: want a command or --process: %w", errdefs.ErrInvalidArgument)
		}
		// Start from the container's process, as runc does.
		base := *c.Spec().Process
		p = &base
		p.Args = fs.Args()[1:]
		p.Terminal = tty
		p.ConsoleSize = nil
		p.Env = append(slices.Clone(p.Env), env...)
		if cwd != "" {
			p.Cwd = cwd
		}
		if p.Capabilities != nil && len(capsAdd) > 0 {
			cp := *p.Capabilities
			for _, cap := range capsAdd {
				cp.Bounding = append(slices.Clone(cp.Bounding), cap)
				cp.Effective = append(slices.Clone(cp.Effective), cap)
				cp.Permitted = append(slices.Clone(cp.Permitted), cap)
			}
			p.Capabilities = &cp
		}
		if noNewPrivs {
			p.NoNewPrivileges = true
		}
		if user != "" {
			u, gstr, _ := strings.Cut(user, ":")
			uid, err := strconv.ParseUint(u, 10, 32)
			if err != nil {
				return fmt.Errorf("exec: --user %q: want UID[:GID]: %w", user, errdefs.ErrInvalidArgument)
			}
			p.User = specs.User{UID: uint32(uid)}
			if gstr != "" {
				gid, err := strconv.ParseUint(gstr, 10, 32)
				if err != nil {
					return fmt.Errorf("exec: --user %q: want UID[:GID]: %w", user, errdefs.ErrInvalidArgument)
				}
				p.User.GID = uint32(gid)
			}
		}
		for _, s := range gids {
			gid, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return fmt.Errorf("exec: --additional-gids %q: %w", s, errdefs.ErrInvalidArgument)
			}
			p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(gid))
		}
	}
	opts := runtime.ExecOptions{
		Process: p, ConsoleSocket: consoleSocket, PidFile: pidFile,
		IO: runtime.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr},
	}
	for i := 0; i < preserve; i++ {
		opts.ExtraFiles = append(opts.ExtraFiles, os.NewFile(uintptr(3+i), "preserved"))
	}
	proc, err := c.Exec(ctx, opts)
	if err != nil {
		return err
	}
	if detach {
		return nil
	}
	code, err := proc.Wait(ctx)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitError(code)
	}
	return nil
}

func cmdPs(ctx context.Context, g *globals, args []string) error {
	fs := newFlags("ps")
	var format string
	fs.StringVar(&format, "format", "table", "table or json")
	fs.StringVar(&format, "f", "table", "table or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return fmt.Errorf("ps: want a container id: %w", errdefs.ErrInvalidArgument)
	}
	c, err := load(ctx, g, fs.Arg(0))
	if err != nil {
		return err
	}
	pids, err := c.Processes(ctx)
	if err != nil {
		return err
	}
	if format == "json" {
		if pids == nil {
			pids = []int{}
		}
		return json.NewEncoder(os.Stdout).Encode(pids)
	}
	psArgs := fs.Args()[1:]
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return fmt.Errorf("ps: %w", err)
	}
	return filterPs(os.Stdout, string(out), pids)
}

// filterPs prints the header of ps output and the lines whose PID column
// is one of pids.
func filterPs(w io.Writer, out string, pids []int) error {
	sc := bufio.NewScanner(strings.NewReader(out))
	if !sc.Scan() {
		return fmt.Errorf("ps: no output")
	}
	header := sc.Text()
	col := slices.Index(strings.Fields(header), "PID")
	if col < 0 {
		return fmt.Errorf("ps: no PID column in %q", header)
	}
	fmt.Fprintln(w, header)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > col {
			if pid, err := strconv.Atoi(f[col]); err == nil && slices.Contains(pids, pid) {
				fmt.Fprintln(w, sc.Text())
			}
		}
	}
	return nil
}

func cmdUpdate(ctx context.Context, g *globals, args []string) error {
	fs := newFlags("update")
	var resources string
	fs.StringVar(&resources, "resources", "", "resources JSON file, or - for stdin")
	fs.StringVar(&resources, "r", "", "resources JSON file, or - for stdin")
	str := map[string]*string{}
	for _, n := range []string{"memory", "memory-reservation", "memory-swap", "kernel-memory", "kernel-memory-tcp",
		"cpu-shares", "cpu-quota", "cpu-period", "cpu-rt-period", "cpu-rt-runtime", "cpuset-cpus", "cpuset-mems",
		"pids-limit", "blkio-weight", "cpu-idle"} {
		str[n] = fs.String(n, "", n)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs, "update")
	if err != nil {
		return err
	}
	r := &specs.LinuxResources{}
	if resources != "" {
		var b []byte
		if resources == "-" {
			b, err = io.ReadAll(os.Stdin)
		} else {
			b, err = os.ReadFile(resources)
		}
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		if err := json.Unmarshal(b, r); err != nil {
			return fmt.Errorf("update: resources: %v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	if err := applyUpdateFlags(r, str); err != nil {
		return err
	}
	c, err := load(ctx, g, id)
	if err != nil {
		return err
	}
	return c.Update(ctx, r)
}

func applyUpdateFlags(r *specs.LinuxResources, str map[string]*string) error {
	get := func(n string) (int64, bool, error) {
		v := *str[n]
		if v == "" {
			return 0, false, nil
		}
		x, err := parseSize(v)
		if err != nil {
			return 0, false, fmt.Errorf("update: --%s %q: %w", n, v, errdefs.ErrInvalidArgument)
		}
		return x, true, nil
	}
	mem := func() *specs.LinuxMemory {
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		return r.Memory
	}
	cpu := func() *specs.LinuxCPU {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		return r.CPU
	}
	for _, f := range []struct {
		name string
		set  func(int64)
	}{
		{"memory", func(v int64) { mem().Limit = &v }},
		{"memory-reservation", func(v int64) { mem().Reservation = &v }},
		{"memory-swap", func(v int64) { mem().Swap = &v }},
		{"kernel-memory", func(v int64) { mem().Kernel = &v }}, //nolint:staticcheck // runc still takes it
		{"kernel-memory-tcp", func(v int64) { mem().KernelTCP = &v }},
		{"cpu-shares", func(v int64) { u := uint64(v); cpu().Shares = &u }},
		{"cpu-quota", func(v int64) { cpu().Quota = &v }},
		{"cpu-period", func(v int64) { u := uint64(v); cpu().Period = &u }},
		{"cpu-rt-period", func(v int64) { u := uint64(v); cpu().RealtimePeriod = &u }},
		{"cpu-rt-runtime", func(v int64) { cpu().RealtimeRuntime = &v }},
		{"cpu-idle", func(v int64) { cpu().Idle = &v }},
		{"pids-limit", func(v int64) { r.Pids = &specs.LinuxPids{Limit: &v} }},
		{"blkio-weight", func(v int64) { w := uint16(v); r.BlockIO = &specs.LinuxBlockIO{Weight: &w} }},
	} {
		v, ok, err := get(f.name)
		if err != nil {
			return err
		}
		if ok {
			f.set(v)
		}
	}
	if v := *str["cpuset-cpus"]; v != "" {
		cpu().Cpus = v
	}
	if v := *str["cpuset-mems"]; v != "" {
		cpu().Mems = v
	}
	return nil
}

// parseSize reads "512", "64k", "100M", "2g" (binary units) and "-1".
func parseSize(s string) (int64, error) {
	mult := int64(1)
	t := strings.ToLower(strings.TrimSuffix(strings.ToLower(s), "b"))
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k':
			mult, t = 1<<10, t[:n-1]
		case 'm':
			mult, t = 1<<20, t[:n-1]
		case 'g':
			mult, t = 1<<30, t[:n-1]
		case 't':
			mult, t = 1<<40, t[:n-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return 0, err
	}
	return v * mult, nil
}

// event is one line of `events`, as runc prints it.
type event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

func cmdEvents(ctx context.Context, g *globals, args []string) error {
	fs := newFlags("events")
	var stats bool
	var interval time.Duration
	fs.BoolVar(&stats, "stats", false, "print the stats once and exit")
	fs.DurationVar(&interval, "interval", 5*time.Second, "time between stats")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs, "events")
	if err != nil {
		return err
	}
	if interval <= 0 {
		return fmt.Errorf("events: --interval must be positive: %w", errdefs.ErrInvalidArgument)
	}
	c, err := load(ctx, g, id)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	for {
		s, err := c.Stats(ctx)
		if err != nil {
			return err
		}
		if err := enc.Encode(event{Type: "stats", ID: id, Data: s}); err != nil {
			return err
		}
		if stats {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
		if c.Status() == runtime.StatusStopped {
			return nil
		}
	}
}

var _ = flag.ContinueOnError
