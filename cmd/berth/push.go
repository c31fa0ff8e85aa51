package main

import (
	"context"
	"fmt"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/client"
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
				return localError{err}
			}
			auth, err := storedAuth(reference.Domain(named))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var show func(jsonstream.Message)
				if !quiet {
					show = newProgress(out).show
				}
				if _, err := c.ImagePush(ctx, named.String(), auth, show); err != nil {
					return err
				}
				if quiet {
					fmt.Fprintln(out, reference.FamiliarString(named))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress verbose output")
	return cmd
}
