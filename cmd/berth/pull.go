package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/client"
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
				return localError{err}
			}
			if all {
				// The API pulls all tags when no tag is given; berth's
				// daemon does not serve that yet (it answers 501).
				return usageErr("pull --all-tags: not supported by berth yet")
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return pullImage(ctx, c, cmd.OutOrStdout(), args[0], named, platform, quiet)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&platform, "platform", "", "set platform if server is multi-platform capable (os[/arch[/variant]])")
	fl.BoolVarP(&quiet, "quiet", "q", false, "suppress verbose output")
	fl.BoolVarP(&all, "all-tags", "a", false, "download all tagged images in the repository")
	return cmd
}

// pullImage pulls one reference through the daemon, printing what docker
// pull prints: per-layer progress (bars on a terminal, status lines
// otherwise), the digest, the status line and the full reference.
func pullImage(ctx context.Context, c *client.Client, out io.Writer, arg string, named reference.Named, platform string, quiet bool) error {
	auth, err := storedAuth(reference.Domain(named))
	if err != nil {
		return err
	}
	opts := client.PullOptions{Platform: platform, Auth: auth}
	if !quiet {
		if _, explicit := parsedTag(arg); !explicit {
			if t, ok := named.(reference.Tagged); ok {
				fmt.Fprintf(out, "Using default tag: %s\n", t.Tag())
			}
		}
		opts.Progress = newProgress(out).show
	}
	if err := c.ImagePull(ctx, named.String(), opts); err != nil {
		return err
	}
	fmt.Fprintln(out, named.String())
	return nil
}

// progress renders the daemon's JSON progress messages as docker does:
// layer updates go to the registry engineer's display (bars in place on
// a terminal, one line per status change otherwise), other statuses are
// printed as lines.
type progress struct {
	w io.Writer
	d *display.Display
}

func newProgress(w io.Writer) *progress {
	f, isFile := w.(*os.File)
	return &progress{w: w, d: display.New(w, isFile && isTerminal(f))}
}

func (p *progress) show(m jsonstream.Message) {
	switch {
	case m.Stream != "":
		fmt.Fprint(p.w, m.Stream)
	case m.ID != "" && strings.HasPrefix(m.Status, "Pulling from "):
		fmt.Fprintf(p.w, "%s: %s\n", m.ID, m.Status)
	case m.ID != "" && m.Status != "":
		u := distribution.Progress{ID: m.ID, Status: distribution.Status(m.Status), Time: time.Now()}
		if m.Progress != nil {
			u.Current, u.Total = m.Progress.Current, m.Progress.Total
		}
		p.d.Update(u)
	case m.Status != "":
		fmt.Fprintln(p.w, m.Status)
	}
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
// registry; none is anonymous (nil). The daemon gets it in the
// X-Registry-Auth header, as from docker.
func storedAuth(server string) (*registry.AuthConfig, error) {
	path, err := credentials.DefaultPath()
	if err != nil {
		return nil, nil //nolint:nilerr // no home directory: pull anonymously
	}
	f, err := credentials.Load(path)
	if err != nil {
		return nil, err
	}
	a, ok, err := f.Get(server)
	if err != nil || !ok {
		return nil, err
	}
	return &registry.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, ServerAddress: server}, nil
}
