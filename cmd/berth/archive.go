package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/client"
)

func newSaveCommand(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" || output == "-" {
				if f, ok := cmd.OutOrStdout().(*os.File); ok && isTerminal(f) {
					return localError{errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")}
				}
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				rc, err := c.ImageSave(ctx, args...)
				if err != nil {
					return err
				}
				defer rc.Close()
				if output == "" || output == "-" {
					_, err := io.Copy(cmd.OutOrStdout(), rc)
					return err
				}
				// Write beside the target and rename, so a failed save
				// leaves no half-written archive under its name.
				tmp, err := os.CreateTemp(filepath.Dir(output), ".berth-save-")
				if err != nil {
					return fmt.Errorf("save: %w", err)
				}
				defer os.Remove(tmp.Name())
				if _, err := io.Copy(tmp, rc); err != nil {
					tmp.Close()
					return fmt.Errorf("save: %w", err)
				}
				if err := tmp.Chmod(0o644); err != nil {
					tmp.Close()
					return fmt.Errorf("save: %w", err)
				}
				if err := tmp.Close(); err != nil {
					return fmt.Errorf("save: %w", err)
				}
				return os.Rename(tmp.Name(), output)
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file, instead of STDOUT")
	return cmd
}

func newLoadCommand(g *globals) *cobra.Command {
	var (
		input, platform string
		quiet           bool
	)
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			in := cmd.InOrStdin()
			if input != "" && input != "-" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			} else if f, ok := in.(*os.File); ok && isTerminal(f) {
				return errors.New("requested load from stdin, but stdin is empty")
			}
			if platform != "" {
				return usageErr("load --platform: not supported by berth's API client yet")
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				lines, err := c.ImageLoad(ctx, in)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				for _, l := range lines {
					fmt.Fprintln(out, l)
				}
				_ = quiet // docker's -q only hides progress, which berth's load does not print
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "read from tar archive file, instead of STDIN")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress the load output")
	cmd.Flags().StringVar(&platform, "platform", "", "load only the given platform from a multi-platform archive")
	return cmd
}

func newImportCommand(g *globals) *cobra.Command {
	var (
		changes           []string
		message, platform string
	)
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src := cmd.InOrStdin()
			if args[0] != "-" {
				if strings.Contains(args[0], "://") {
					return fmt.Errorf("import from a URL is not supported: %s", args[0])
				}
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				src = f
			}
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				id, err := c.ImageImport(ctx, src, client.ImportOptions{Reference: ref, Changes: changes, Message: message, Platform: platform})
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), id)
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, "apply Dockerfile instruction to the created image")
	cmd.Flags().StringVarP(&message, "message", "m", "", "set commit message for imported image")
	cmd.Flags().StringVar(&platform, "platform", "", "set platform if server is multi-platform capable")
	return cmd
}
