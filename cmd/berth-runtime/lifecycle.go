package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/defaults"
)

type createFlags struct {
	bundle, pidFile, consoleSocket string
	noPivot, noNewKeyring          bool
	preserveFDs                    int
}

func (c *createFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.bundle, "bundle", ".", "bundle directory")
	fs.StringVar(&c.bundle, "b", ".", "bundle directory")
	fs.StringVar(&c.pidFile, "pid-file", "", "write the init's pid here")
	fs.StringVar(&c.consoleSocket, "console-socket", "", "unix socket to send the pty master to")
	fs.BoolVar(&c.noPivot, "no-pivot", false, "chroot instead of pivot_root")
	fs.BoolVar(&c.noNewKeyring, "no-new-keyring", false, "keep the caller's session keyring")
	fs.IntVar(&c.preserveFDs, "preserve-fds", 0, "pass fds 3..3+N-1 to the container")
}

func (c *createFlags) options() runtime.CreateOptions {
	o := runtime.CreateOptions{
		Bundle: c.bundle, PidFile: c.pidFile, ConsoleSocket: c.consoleSocket,
		NoPivot: c.noPivot, NoNewKeyring: c.noNewKeyring,
		IO: runtime.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr},
	}
	for i := 0; i < c.preserveFDs; i++ {
		o.ExtraFiles = append(o.ExtraFiles, os.NewFile(uintptr(3+i), "preserved-"+strconv.Itoa(3+i)))
	}
	return o
}

func cmdCreate(ctx context.Context, g *globals, args []string) error {
	fs := newFlags("create")
	var cf createFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs, "create")
	if err != nil {
		return err
	}
	rt, err := openRuntime(g)
	if err != nil {
		return err
	}
	_, err = rt.Create(ctx, id, cf.options())
	return err
}

func cmdRun(ctx context.Context, g *globals, args []string) error {
	fs := newFlags("run")
	var cf createFlags
	cf.register(fs)
	var detach, keep bool
	fs.BoolVar(&detach, "detach", false, "do not wait for the container")
	fs.BoolVar(&detach, "d", false, "do not wait for the container")
	fs.BoolVar(&keep, "keep", false, "do not delete the container after it exits")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs, "run")
	if err != nil {
		return err
	}
	rt, err := openRuntime(g)
	if err != nil {
		return err
	}
	// Signals that arrive during create are held and forwarded once the
	// process runs. Only the signals a caller sends to stop, reload or
	// talk to a service are caught: each signal.Notify'd signal costs a
	// round trip to the Go runtime's signal thread, and catching all 65
	// made up a tenth of `run`'s time.
	sigs := make(chan os.Signal, 64)
	if !detach {
		signal.Notify(sigs, forwarded...)
	}
	opts := cf.options()
	var proxy *ttyProxy
	if !detach && cf.consoleSocket == "" {
		if spec, err := runtime.LoadSpec(opts.Bundle); err == nil && spec.Process.Terminal {
			if proxy, err = newTTYProxy(); err != nil {
				return err
			}
			defer proxy.close()
			opts.ConsoleSocket = proxy.path()
		}
	}
	c, err := rt.Create(ctx, id, opts)
	if err != nil {
		return err
	}
	if proxy != nil {
		proxy.attach(c)
	}
	if err := c.Start(ctx); err != nil {
		_ = c.Delete(ctx, true)
		return err
	}
	if detach {
		return nil
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				sig := s.(unix.Signal)
				_ = unix.Kill(c.Pid(), sig)
			case <-done:
				return
			}
		}
	}()
	code, err := c.Wait(ctx)
	close(done)
	signal.Stop(sigs)
	if err != nil {
		return err
	}
	if !keep {
		if err := c.Delete(ctx, true); err != nil {
			return err
		}
	}
	if code != 0 {
		return exitError(code)
	}
	return nil
}

// forwarded are the signals a foreground run passes on to the container.
var forwarded = []os.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1,
	unix.SIGUSR2, unix.SIGALRM, unix.SIGCONT, unix.SIGPWR}

func simple(verb string, fn func(ctx context.Context, c *runtime.Container) error) func(context.Context, *globals, []string) error {
	return func(ctx context.Context, g *globals, args []string) error {
		fs := newFlags(verb)
		if err := fs.Parse(args); err != nil {
			return err
		}
		id, err := oneID(fs, verb)
		if err != nil {
			return err
		}
		c, err := load(ctx, g, id)
		if err != nil {
			return err
		}
		return fn(ctx, c)
	}
}

func load(ctx context.Context, g *globals, id string) (*runtime.Container, error) {
	rt, err := openRuntime(g)
	if err != nil {
		return nil, err
	}
	return rt.Load(ctx, id)
}

var (
	cmdStart  = simple("start", func(ctx context.Context, c *runtime.Container) error { return c.Start(ctx) })
	cmdPause  = simple("pause", func(ctx context.Context, c *runtime.Container) error { return c.Pause(ctx) })
	cmdResume = simple("resume", func(ctx context.Context, c *runtime.Container) error { return c.Resume(ctx) })
	cmdState  = simple("state", func(ctx context.Context, c *runtime.Container) error { return printJSON(c.State(ctx)) })
)

func cmdKill(ctx context.Context, g *globals, args []string) error {
	fs := newFlags("kill")
	var all bool
	fs.BoolVar(&all, "all", false, "signal every process in the container")
	fs.BoolVar(&all, "a", false, "signal every process in the container")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return fmt.Errorf("kill: want ID [SIGNAL]: %w", errdefs.ErrInvalidArgument)
	}
	sig := unix.SIGTERM
	if fs.NArg() == 2 {
		var err error
		if sig, err = parseSignal(fs.Arg(1)); err != nil {
			return err
		}
	}
	c, err := load(ctx, g, fs.Arg(0))
	if err != nil {
		return err
	}
	return c.Kill(ctx, sig, all)
}

// parseSignal takes "KILL", "SIGKILL", "kill" or "9".
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %d: out of range: %w", n, errdefs.ErrInvalidArgument)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q: %w", s, errdefs.ErrInvalidArgument)
}

func cmdDelete(ctx context.Context, g *globals, args []string) error {
	fs := newFlags("delete")
	var force bool
	fs.BoolVar(&force, "force", false, "kill the container first if it runs")
	fs.BoolVar(&force, "f", false, "kill the container first if it runs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs, "delete")
	if err != nil {
		return err
	}
	c, err := load(ctx, g, id)
	if err != nil {
		if force && errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		return err
	}
	return c.Delete(ctx, force)
}

func cmdList(ctx context.Context, g *globals, args []string) error {
	fs := newFlags("list")
	var format string
	var quiet bool
	fs.StringVar(&format, "format", "table", "table or json")
	fs.StringVar(&format, "f", "table", "table or json")
	fs.BoolVar(&quiet, "quiet", false, "ids only")
	fs.BoolVar(&quiet, "q", false, "ids only")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rt, err := openRuntime(g)
	if err != nil {
		return err
	}
	cs, err := rt.List(ctx)
	if err != nil {
		return err
	}
	states := make([]runtime.State, 0, len(cs))
	for _, c := range cs {
		states = append(states, c.State(ctx))
	}
	switch {
	case quiet:
		for _, s := range states {
			fmt.Println(s.ID)
		}
		return nil
	case format == "json":
		return json.NewEncoder(os.Stdout).Encode(states)
	case format != "table":
		return fmt.Errorf("list: --format %q: want table or json: %w", format, errdefs.ErrInvalidArgument)
	}
	w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
	fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
	for _, s := range states {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), "root")
	}
	return w.Flush()
}

func cmdSpec(ctx context.Context, g *globals, args []string) error {
	fs := newFlags("spec")
	var bundle string
	var rootless bool
	fs.StringVar(&bundle, "bundle", "", "write config.json here (default: the current directory)")
	fs.StringVar(&bundle, "b", "", "write config.json here")
	fs.BoolVar(&rootless, "rootless", false, "a spec for running as an unprivileged user")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := json.MarshalIndent(defaults.Spec(rootless, uint32(os.Getuid()), uint32(os.Getgid())), "", "\t")
	if err != nil {
		return err
	}
	path := filepath.Join(bundle, "config.json")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("spec: %w", err)
	}
	return f.Close()
}

func cmdFeatures(ctx context.Context, g *globals, args []string) error {
	return printJSON(runtime.Features())
}
