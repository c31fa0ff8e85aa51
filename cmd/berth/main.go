// Command berth is the berth CLI. For now it builds a daemon.Engine in its
// own process on --root and calls its methods; once `berth daemon` serves
// the Docker API, the verbs become API clients and keep their flags.
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

	"github.com/berth-dev/berth/internal/daemon"
	"github.com/berth-dev/berth/internal/log"
)

// Exit codes, as docker's: 125 when berth itself fails (bad flags, an
// engine error); commands that run a container will add 126/127 and the
// container's own code.
const exitBerth = 125

// globals are the root command's flags.
type globals struct {
	root          string
	storageDriver string
	logLevel      string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(exitBerth)
	}
}

// exitError carries an exit code other than 125.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// newRootCommand builds the command tree. Each verb lives in its own file
// as newXCommand(g); add new ones to the list below.
func newRootCommand() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "berth",
		Short:         "A container engine",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return g.setupLogging(cmd)
		},
	}
	root.PersistentFlags().StringVar(&g.root, "root", "/var/lib/berth", "root directory of persistent state")
	root.PersistentFlags().StringVar(&g.storageDriver, "storage-driver", "", "storage driver: overlay or vfs (default: overlay when the kernel and filesystem allow it)")
	root.PersistentFlags().StringVarP(&g.logLevel, "log-level", "l", "warn", `log level: "debug", "info", "warn", "error"`)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w\nSee '%s --help'.", err, cmd.CommandPath())
	})

	imageCmd := &cobra.Command{Use: "image", Short: "Manage images"}
	imageCmd.AddCommand(
		newImagesCommand(g, "ls"),
		newPullCommand(g),
		newPushCommand(g),
		newInspectCommand(g),
		newHistoryCommand(g),
		newTagCommand(g),
		newRmiCommand(g, "rm"),
		newSaveCommand(g),
		newLoadCommand(g),
		newImportCommand(g),
		newPruneCommand(g),
	)
	root.AddCommand(
		imageCmd,
		newImagesCommand(g, "images"),
		newHistoryCommand(g),
		newTagCommand(g),
		newRmiCommand(g, "rmi"),
		newSaveCommand(g),
		newLoadCommand(g),
		newImportCommand(g),
		newPullCommand(g),
		newPushCommand(g),
		newLoginCommand(g),
		newLogoutCommand(g),
		newDaemonCommand(g),
	)
	return root
}

func (g *globals) setupLogging(cmd *cobra.Command) error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToLower(g.logLevel))); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	l := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	slog.SetDefault(l)
	cmd.SetContext(log.WithLogger(cmd.Context(), l))
	return nil
}

// withEngine opens the Engine on --root for one command and closes it
// afterwards.
func (g *globals) withEngine(cmd *cobra.Command, fn func(ctx context.Context, e *daemon.Engine) error) error {
	ctx := cmd.Context()
	e, err := daemon.New(ctx, daemon.Config{Root: g.root, StorageDriver: g.storageDriver})
	if err != nil {
		return err
	}
	err = fn(ctx, e)
	if cerr := e.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}
