package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/distribution/reference"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/daemon"
	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/distribution/credentials"
	"github.com/berth-dev/berth/internal/distribution/display"
	"github.com/berth-dev/berth/internal/image"
)

func newPullCommand(g *globals) *cobra.Command {
	var (
		platform   string
		quiet, all bool
	)
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			named, err := image.ParseReference(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			auth, err := storedAuth(reference.Domain(named))
			if err != nil {
				return err
			}
			return g.withEngine(cmd, func(ctx context.Context, e *daemon.Engine) error {
				if !all {
					_, err := pullOne(ctx, e, out, args[0], named, platform, auth, quiet)
					return err
				}
				if _, ok := named.(reference.Digested); ok {
					return fmt.Errorf("tag can't be used with --all-tags/-a")
				}
				tags, err := e.Registry().Tags(ctx, named, auth)
				if err != nil {
					return err
				}
				for _, tag := range tags {
					tn, err := reference.WithTag(reference.TrimNamed(named), tag)
					if err != nil {
						return err
					}
					if _, err := pullOne(ctx, e, out, tn.String(), tn, platform, auth, quiet); err != nil {
						return err
					}
				}
				if !quiet {
					fmt.Fprintf(out, "All tags of %s are pulled\n", reference.FamiliarName(named))
				}
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&platform, "platform", "", "set platform if server is multi-platform capable (os[/arch[/variant]])")
	fl.BoolVarP(&quiet, "quiet", "q", false, "suppress verbose output")
	fl.BoolVarP(&all, "all-tags", "a", false, "download all tagged images in the repository")
	return cmd
}

// pullOne pulls one reference, printing what docker pull prints: a header,
// per-layer progress (bars on a terminal, status lines otherwise), the
// digest, the status line and the full reference.
func pullOne(ctx context.Context, e *daemon.Engine, out io.Writer, arg string, named reference.Named, platform string, auth *distribution.AuthConfig, quiet bool) (daemon.PullResult, error) {
	opts := daemon.PullOptions{Platform: platform, Auth: auth}
	if !quiet {
		if t, ok := named.(reference.Tagged); ok {
			if _, explicit := parsedTag(arg); !explicit {
				fmt.Fprintf(out, "Using default tag: %s\n", t.Tag())
			}
			fmt.Fprintf(out, "%s: Pulling from %s\n", t.Tag(), reference.Path(named))
		} else if d, ok := named.(reference.Digested); ok {
			fmt.Fprintf(out, "%s: Pulling from %s\n", d.Digest(), reference.Path(named))
		}
		f, isFile := out.(*os.File)
		opts.Progress = display.New(out, isFile && isTerminal(f)).Update
	}
	res, err := e.Pull(ctx, named.String(), opts)
	if err != nil {
		return res, err
	}
	if !quiet {
		fmt.Fprintf(out, "Digest: %s\n", res.Digest)
		fmt.Fprintf(out, "Status: %s\n", res.Status)
	}
	fmt.Fprintln(out, res.Name)
	return res, nil
}

// parsedTag says whether the user wrote a tag (docker prints "Using
// default tag" otherwise).
func parsedTag(arg string) (string, bool) {
	n, err := reference.ParseNormalizedNamed(arg)
	if err != nil {
		return "", false
	}
	if t, ok := n.(reference.Tagged); ok {
		return t.Tag(), true
	}
	return "", false
}

// storedAuth reads the credential docker (or berth login) stored for
// registry; none is anonymous (nil).
func storedAuth(registry string) (*distribution.AuthConfig, error) {
	path, err := credentials.DefaultPath()
	if err != nil {
		return nil, nil //nolint:nilerr // no home directory: pull anonymously
	}
	f, err := credentials.Load(path)
	if err != nil {
		return nil, err
	}
	a, ok, err := f.Get(registry)
	if err != nil || !ok {
		return nil, err
	}
	return &distribution.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken}, nil
}
