package main

import (
	"context"
	"fmt"
	"os"

	"github.com/distribution/reference"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/daemon"
	"github.com/berth-dev/berth/internal/distribution/display"
	"github.com/berth-dev/berth/internal/image"
)

func newPushCommand(g *globals) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			named, err := image.ParseTag(args[0])
			if err != nil {
				return err
			}
			auth, err := storedAuth(reference.Domain(named))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			return g.withEngine(cmd, func(ctx context.Context, e *daemon.Engine) error {
				opts := daemon.PushOptions{Auth: auth}
				if !quiet {
					fmt.Fprintf(out, "The push refers to repository [%s]\n", reference.TrimNamed(named).String())
					f, isFile := out.(*os.File)
					opts.Progress = display.New(out, isFile && isTerminal(f)).Update
				}
				res, err := e.Push(ctx, named.String(), opts)
				if err != nil {
					return err
				}
				if quiet {
					fmt.Fprintln(out, reference.FamiliarString(named))
					return nil
				}
				fmt.Fprintf(out, "%s: digest: %s size: %d\n", res.Tag, res.Digest, res.Size)
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress verbose output")
	return cmd
}
