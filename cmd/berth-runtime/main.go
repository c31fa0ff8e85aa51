// Command berth-runtime is an OCI runtime with runc's command line, a thin
// layer over internal/runtime: each verb parses its flags and makes one or
// two library calls.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/runtime"
	_ "github.com/berth-dev/berth/internal/runtime/nsenter" // joins namespaces before the Go runtime starts
	"github.com/berth-dev/berth/internal/version"
)

func init() {
	// The container init is this binary re-exec'd: it must not run the CLI.
	if runtime.IsInit() {
		runtime.Init()
	}
}

var logToFile, logJSON bool

// globals are the flags before the verb.
type globals struct {
	root          string
	logFile       string
	logFormat     string
	debug         bool
	systemdCgroup bool
}

type verb struct {
	usage string
	run   func(ctx context.Context, g *globals, args []string) error
}

var verbs = map[string]verb{
	"spec":     {"spec [--bundle DIR] [--rootless]", cmdSpec},
	"create":   {"create [flags] ID", cmdCreate},
	"start":    {"start ID", cmdStart},
	"run":      {"run [flags] ID", cmdRun},
	"state":    {"state ID", cmdState},
	"kill":     {"kill [--all] ID [SIGNAL]", cmdKill},
	"delete":   {"delete [--force] ID", cmdDelete},
	"list":     {"list [--format table|json] [--quiet]", cmdList},
	"ps":       {"ps [--format table|json] ID [ps options]", cmdPs},
	"exec":     {"exec [flags] ID [COMMAND [ARG...]]", cmdExec},
	"pause":    {"pause ID", cmdPause},
	"resume":   {"resume ID", cmdResume},
	"update":   {"update [--resources FILE|-] [limits] ID", cmdUpdate},
	"events":   {"events [--stats] [--interval D] ID", cmdEvents},
	"features": {"features", cmdFeatures},
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	g := &globals{}
	fs := flag.NewFlagSet("berth-runtime", flag.ContinueOnError)
	fs.StringVar(&g.root, "root", runtime.DefaultRoot, "state directory")
	fs.StringVar(&g.logFile, "log", "", "log file (default stderr)")
	fs.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&g.debug, "debug", false, "debug logging")
	fs.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "use systemd for cgroups (not supported)")
	showVersion := fs.Bool("version", false, "print the version")
	fs.BoolVar(showVersion, "v", false, "print the version")
	var ignored string
	fs.StringVar(&ignored, "rootless", "auto", "accepted for runc compatibility")
	fs.StringVar(&ignored, "criu", "", "accepted for runc compatibility")
	fs.Usage = func() { usage(fs) }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Printf("berth-runtime version %s\nspec: %s\n", version.Version, specVersion())
		return 0
	}
	logger, closeLog, err := newLogger(g)
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-runtime:", err)
		return 1
	}
	defer closeLog()
	ctx := log.WithLogger(context.Background(), logger)
	if fs.NArg() == 0 {
		usage(fs)
		return 2
	}
	name := fs.Arg(0)
	v, ok := verbs[name]
	if !ok {
		logError(logger, fmt.Errorf("unknown command %q", name))
		return 2
	}
	if g.systemdCgroup {
		logError(logger, fmt.Errorf("--systemd-cgroup: systemd cgroup management is not supported (berth-runtime manages cgroupfs directly): %w", errdefs.ErrNotImplemented))
		return 1
	}
	if err := v.run(ctx, g, fs.Args()[1:]); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return int(ee)
		}
		logError(logger, err)
		return 1
	}
	return 0
}

// exitError carries a container's exit status out of run and exec.
type exitError int

func (e exitError) Error() string { return "exit status " + strconv.Itoa(int(e)) }

func usage(fs *flag.FlagSet) {
	fmt.Fprintln(os.Stderr, "usage: berth-runtime [global flags] COMMAND [flags] [ARGS]\n\nglobal flags:")
	fs.PrintDefaults()
	fmt.Fprintln(os.Stderr, "\ncommands:")
	for _, n := range []string{"spec", "create", "start", "run", "state", "kill", "delete", "list", "ps", "exec", "pause", "resume", "update", "events", "features"} {
		fmt.Fprintln(os.Stderr, "  "+verbs[n].usage)
	}
}

// newLogger writes to --log (or stderr) in --log-format. containerd and
// podman read runc's error from this file as JSON lines with level "error"
// and "msg".
func newLogger(g *globals) (*slog.Logger, func(), error) {
	var w io.Writer = os.Stderr
	closeFn := func() {}
	if g.logFile != "" {
		f, err := os.OpenFile(g.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("open log %s: %w", g.logFile, err)
		}
		w = f
		logToFile = true
		closeFn = func() { f.Close() }
	}
	level := slog.LevelInfo
	if g.debug {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.LevelKey {
			a.Value = slog.StringValue(strings.ToLower(a.Value.String()))
		}
		return a
	}}
	switch g.logFormat {
	case "json":
		logJSON = true
		return slog.New(slog.NewJSONHandler(w, opts)), closeFn, nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), closeFn, nil
	}
	closeFn()
	return nil, nil, fmt.Errorf("--log-format %q: want text or json", g.logFormat)
}

// logError reports err where runc does: the --log file (containerd and
// podman read the error from it), and stderr as plain text for a human.
func logError(l *slog.Logger, err error) {
	if logToFile || logJSON {
		l.Error(err.Error())
	}
	if logToFile || !logJSON {
		fmt.Fprintln(os.Stderr, "berth-runtime:", err)
	}
}

func openRuntime(g *globals) (*runtime.Runtime, error) { return runtime.New(g.root) }

// oneID checks that args is exactly one container id.
func oneID(fs *flag.FlagSet, verb string) (string, error) {
	if fs.NArg() != 1 {
		return "", fmt.Errorf("%s: want exactly one container id, got %d arguments: %w", verb, fs.NArg(), errdefs.ErrInvalidArgument)
	}
	return fs.Arg(0), nil
}

func newFlags(verb string) *flag.FlagSet {
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func specVersion() string { return runtime.Features().OCIVersionMax }
