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
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/daemon"
)

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func newSaveCommand(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withEngine(cmd, func(ctx context.Context, e *daemon.Engine) error {
				if output == "" || output == "-" {
					if f, ok := cmd.OutOrStdout().(*os.File); ok && isTerminal(f) {
						return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
					}
					return e.ImageSave(ctx, daemon.ImageSaveOptions{Refs: args, Output: cmd.OutOrStdout()})
				}
				// Write beside the target and rename, so a failed save
				// leaves no half-written archive under its name.
				tmp, err := os.CreateTemp(filepath.Dir(output), ".berth-save-")
				if err != nil {
					return fmt.Errorf("save: %w", err)
				}
				defer os.Remove(tmp.Name())
				if err := e.ImageSave(ctx, daemon.ImageSaveOptions{Refs: args, Output: tmp}); err != nil {
					tmp.Close()
					return err
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
			var in io.Reader = cmd.InOrStdin()
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
			return g.withEngine(cmd, func(ctx context.Context, e *daemon.Engine) error {
				res, err := e.ImageLoad(ctx, daemon.ImageLoadOptions{Input: in, Platform: platform})
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				for _, im := range res.Images {
					if len(im.RepoTags) == 0 {
						fmt.Fprintln(out, "Loaded image ID:", im.ID)
					}
					for _, t := range im.RepoTags {
						if old, ok := im.Moved[t]; ok {
							fmt.Fprintf(out, "The image %s already exists, renaming the old one with ID %s to empty string\n", t, old)
						}
						fmt.Fprintln(out, "Loaded image:", t)
					}
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
			var src io.Reader = cmd.InOrStdin()
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
			return g.withEngine(cmd, func(ctx context.Context, e *daemon.Engine) error {
				res, err := e.ImageImport(ctx, daemon.ImageImportOptions{Source: src, Reference: ref, Changes: changes, Message: message, Platform: platform})
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), res.ID)
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, "apply Dockerfile instruction to the created image")
	cmd.Flags().StringVarP(&message, "message", "m", "", "set commit message for imported image")
	cmd.Flags().StringVar(&platform, "platform", "", "set platform if server is multi-platform capable")
	return cmd
}
