// Command berth is the berth CLI: `berth daemon` runs the engine, and
// every other verb is a client of its Docker Engine API (internal/client),
// with docker's flags, output and exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
)

// Exit codes, as docker's: 125 when berth itself fails (bad flags, a
// daemon error), 126 when the container's command cannot be invoked, 127
// when it is not found, and the container's own code otherwise.
const (
	exitBerth     = 125
	exitNoInvoke  = 126
	exitNotFound  = 127
	exitInterrupt = 130
)

// globals are the root command's flags and the one client every verb
// shares.
type globals struct {
	root          string
	storageDriver string
	logLevel      string
	host          string

	cli *client.Client
}

func main() {
	// No signal.NotifyContext here: a foreground run proxies signals to
	// the container instead of dying, and other verbs die as docker's do.
	root := newRootCommand()
	root.SetArgs(globalShorthands(os.Args[1:]))
	err := root.ExecuteContext(context.Background())
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			if ee.err != nil {
				printError(ee.err)
			}
			os.Exit(ee.code)
		}
		printError(err)
		os.Exit(exitBerth)
	}
}

// printError writes err as docker does: a daemon's answer is an "Error
// response from daemon", anything else plain.
func printError(err error) {
	fmt.Fprintln(os.Stderr, errorText(err))
}

// errorText is err as a user reads it: the daemon's message without the
// class the client appended ("No such container: web", not "…: not
// found"), and usage errors without theirs.
func errorText(err error) string {
	msg := err.Error()
	for _, c := range []error{errdefs.ErrNotFound, errdefs.ErrConflict, errdefs.ErrInvalidArgument, errdefs.ErrUnauthorized,
		errdefs.ErrForbidden, errdefs.ErrNotImplemented, errdefs.ErrUnavailable, errdefs.ErrNotModified} {
		if errors.Is(err, c) {
			msg = strings.TrimSuffix(msg, ": "+c.Error())
		}
	}
	msg = strings.TrimSuffix(msg, ": server error")
	if strings.Contains(msg, "Is the daemon running?") && os.Geteuid() != 0 {
		msg += "\n(as root: sudo berth daemon &)"
	}
	if fromDaemon(err) {
		msg = "Error response from daemon: " + msg
	}
	return msg
}

// fromDaemon says whether err is the daemon's answer to a request (an
// errdefs class came back from its status), not a local failure.
func fromDaemon(err error) bool {
	if errors.Is(err, errdefs.ErrUnavailable) && strings.Contains(err.Error(), "Is the daemon running?") {
		return false
	}
	var se *client.StreamError
	if errors.As(err, &se) {
		return false
	}
	for _, c := range []error{errdefs.ErrNotFound, errdefs.ErrConflict, errdefs.ErrInvalidArgument,
		errdefs.ErrUnauthorized, errdefs.ErrForbidden, errdefs.ErrNotImplemented, errdefs.ErrUnavailable} {
		if errors.Is(err, c) {
			return !localErr(err)
		}
	}
	return strings.HasSuffix(err.Error(), ": server error")
}

// localError marks an error of a class made by the CLI itself (a bad
// flag value), which is not the daemon's.
type localError struct{ err error }

func (e localError) Error() string { return e.err.Error() }
func (e localError) Unwrap() error { return e.err }

func localErr(err error) bool {
	var le localError
	return errors.As(err, &le)
}

// usageErr is a bad flag or argument: berth's own error, exit 125.
func usageErr(format string, args ...any) error {
	return localError{fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)}
}

// exitError carries an exit code other than 125; err (if any) is printed.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e exitError) Unwrap() error { return e.err }

// newRootCommand builds the command tree. Each verb lives in its own file
// as newXCommand(g); add new ones to the lists below.
func newRootCommand() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "berth",
		Short:         "A container engine",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Name() == "daemon" && cmd.Parent() == cmd.Root() {
				// The daemon stops cleanly on SIGINT and SIGTERM (its
				// RunE serves until ctx ends). Client verbs keep the
				// default actions, and run/attach proxy signals instead.
				ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, unix.SIGTERM)
				cobra.OnFinalize(stop)
				cmd.SetContext(ctx)
			}
			return g.setupLogging(cmd)
		},
		PersistentPostRun: func(cmd *cobra.Command, args []string) {
			if g.cli != nil {
				g.cli.Close()
			}
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.host, "host", "", "daemon socket to connect to (default: $BERTH_HOST, else $DOCKER_HOST, else "+client.DefaultHost+")")
	pf.StringVar(&g.root, "root", "/var/lib/berth", "root directory of persistent state (berth daemon)")
	pf.StringVar(&g.storageDriver, "storage-driver", "", "storage driver: overlay or vfs (berth daemon; default: overlay when the kernel and filesystem allow it)")
	pf.StringVar(&g.logLevel, "log-level", "warn", `log level: "debug", "info", "warn", "error"`)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return localError{fmt.Errorf("%w\nSee '%s --help'.", err, cmd.CommandPath())}
	})

	imageCmd := &cobra.Command{Use: "image", Short: "Manage images"}
	imageCmd.AddCommand(
		newImagesCommand(g, "ls"),
		newPullCommand(g),
		newPushCommand(g),
		newImageInspectCommand(g),
		newHistoryCommand(g),
		newTagCommand(g),
		newRmiCommand(g, "rm"),
		newSaveCommand(g),
		newLoadCommand(g),
		newImportCommand(g),
		newPruneCommand(g),
		newBuildCommand(g),
	)
	containerCmd := &cobra.Command{Use: "container", Short: "Manage containers"}
	containerCmd.AddCommand(containerVerbs(g, true)...)
	systemCmd := &cobra.Command{Use: "system", Short: "Manage berth"}
	systemCmd.AddCommand(newDFCommand(g), newSystemPruneCommand(g), newInfoCommand(g), newEventsCommand(g))
	root.AddCommand(
		imageCmd,
		containerCmd,
		systemCmd,
		newImagesCommand(g, "images"),
		newHistoryCommand(g),
		newTagCommand(g),
		newRmiCommand(g, "rmi"),
		newSaveCommand(g),
		newLoadCommand(g),
		newImportCommand(g),
		newBuildCommand(g),
		newBuilderCommand(g),
		newPullCommand(g),
		newPushCommand(g),
		newLoginCommand(g),
		newLogoutCommand(g),
		newInspectCommand(g),
		newInfoCommand(g),
		newVersionCommand(g),
		newEventsCommand(g),
		newDaemonCommand(g),
		newNetworkCommand(g),
		newVolumeCommand(g),
	)
	root.AddCommand(containerVerbs(g, false)...)
	return root
}

// globalShorthands rewrites -H before the verb to --host. Docker's global
// -H lives beside verbs' own -H (history's --human, daemon's --host);
// cobra's persistent flags cannot share a shorthand with a verb's flag, so
// the global one is only a shorthand where docker parses it: before the
// verb.
func globalShorthands(args []string) []string {
	out := append([]string(nil), args...)
	for i := 0; i < len(out); i++ {
		a := out[i]
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			break
		}
		switch {
		case a == "-H":
			out[i] = "--host"
			i++ // its value
		case strings.HasPrefix(a, "-H"):
			out[i] = "--host=" + strings.TrimPrefix(strings.TrimPrefix(a, "-H"), "=")
		case !strings.Contains(a, "=") && (a == "--host" || a == "--log-level" || a == "--root" || a == "--storage-driver"):
			i++
		}
	}
	return out
}

func (g *globals) setupLogging(cmd *cobra.Command) error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToLower(g.logLevel))); err != nil {
		return usageErr("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	l := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	slog.SetDefault(l)
	cmd.SetContext(log.WithLogger(cmd.Context(), l))
	return nil
}

// client is the API client for -H, or for the environment's host; one per
// process, so its connection is reused across a verb's calls.
func (g *globals) client() (*client.Client, error) {
	if g.cli != nil {
		return g.cli, nil
	}
	var (
		c   *client.Client
		err error
	)
	if g.host != "" {
		c, err = client.New(g.host)
	} else {
		c, err = client.FromEnv()
	}
	if err != nil {
		return nil, localError{err}
	}
	g.cli = c
	return c, nil
}

// withClient runs fn with the shared client.
func (g *globals) withClient(cmd *cobra.Command, fn func(ctx context.Context, c *client.Client) error) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	return fn(cmd.Context(), c)
}
