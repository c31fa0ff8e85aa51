package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/image"
)

var imagesTable = table{
	headers: map[string]string{
		"Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
		"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
		"Containers": "CONTAINERS", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "VirtualSize": "SIZE",
	},
}

func newImagesCommand(g *globals, use string) *cobra.Command {
	var (
		quiet, digests, noTrunc, all bool
		filters                      []string
		format                       string
	)
	cmd := &cobra.Command{
		Use:     use + " [OPTIONS] [REPOSITORY[:TAG]]",
		Short:   "List images",
		Aliases: aliases(use, "ls", "list"),
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(filters)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				f["reference"] = append(f["reference"], args[0])
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				images, err := c.ImageList(ctx, all, f)
				if err != nil {
					return err
				}
				var rows []map[string]string
				for _, im := range images {
					id := im.ID
					if !noTrunc {
						id = strings.TrimPrefix(id, "sha256:")[:12]
					}
					created := time.Unix(im.Created, 0)
					for _, rt := range imageRows(im.RepoTags, im.RepoDigests, digests) {
						rows = append(rows, map[string]string{
							"ID": id, "Repository": rt[0], "Tag": rt[1], "Digest": rt[2],
							"CreatedSince": since(created), "CreatedAt": created.Format("2006-01-02 15:04:05 -0700 MST"),
							"Size": humanSize(im.Size), "VirtualSize": humanSize(im.Size),
							"Containers": "N/A", "SharedSize": "N/A", "UniqueSize": "N/A",
						})
					}
				}
				out := cmd.OutOrStdout()
				if quiet {
					for _, r := range rows {
						fmt.Fprintln(out, r["ID"])
					}
					return nil
				}
				t := imagesTable
				t.cols = []string{"Repository", "Tag", "ID", "CreatedSince", "Size"}
				if digests {
					t.cols = []string{"Repository", "Tag", "Digest", "ID", "CreatedSince", "Size"}
				}
				return t.print(out, format, rows)
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	fl.BoolVarP(&all, "all", "a", false, "show all images (by default a build's intermediate images are hidden)")
	fl.BoolVar(&digests, "digests", false, "show digests")
	fl.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided")
	fl.StringVar(&format, "format", "", "format output using a Go template, 'json', or 'table TEMPLATE'")
	return cmd
}

// imageRows gives docker's (repository, tag, digest) rows for one image:
// one per tag, with the digest of the same repository if known; repo
// digests of repositories without a tag get a <none> tag; an image with
// neither is <none> <none>.
func imageRows(tags, digests []string, showDigests bool) [][3]string {
	var rows [][3]string
	digestOf := map[string]string{}
	for _, d := range digests {
		repo, dg := image.FamiliarRepoTag(d)
		digestOf[repo] = dg
	}
	seen := map[string]bool{}
	for _, t := range tags {
		repo, tag := image.FamiliarRepoTag(t)
		dg := digestOf[repo]
		if dg == "" {
			dg = "<none>"
		}
		rows = append(rows, [3]string{repo, tag, dg})
		seen[repo] = true
	}
	repos := make([]string, 0, len(digestOf))
	for r := range digestOf {
		repos = append(repos, r)
	}
	slices.Sort(repos)
	for _, r := range repos {
		if !seen[r] && (showDigests || len(tags) == 0) {
			rows = append(rows, [3]string{r, "<none>", digestOf[r]})
		}
	}
	if len(rows) == 0 {
		rows = append(rows, [3]string{"<none>", "<none>", "<none>"})
	}
	return rows
}

func newImageInspectCommand(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspectObjects(cmd, g, "image", format, args)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	return cmd
}

func newHistoryCommand(g *globals) *cobra.Command {
	var (
		human, quiet, noTrunc bool
		format                string
	)
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				items, err := c.ImageHistory(ctx, args[0])
				if err != nil {
					return err
				}
				var rows []map[string]string
				for _, h := range items {
					id := h.ID
					if !noTrunc && strings.HasPrefix(id, "sha256:") {
						id = strings.TrimPrefix(id, "sha256:")[:12]
					}
					createdBy := strings.ReplaceAll(h.CreatedBy, "\t", " ")
					if !noTrunc && len(createdBy) > 45 {
						createdBy = createdBy[:44] + "…"
					}
					created := time.Unix(h.Created, 0)
					createdSince, size := since(created), humanSize(h.Size)
					if !human {
						createdSince, size = created.Format(time.RFC3339), fmt.Sprint(h.Size)
					}
					rows = append(rows, map[string]string{
						"ID": id, "CreatedSince": createdSince, "CreatedAt": created.Format(time.RFC3339),
						"CreatedBy": createdBy, "Size": size, "Comment": h.Comment,
					})
				}
				out := cmd.OutOrStdout()
				if quiet {
					for _, r := range rows {
						fmt.Fprintln(out, r["ID"])
					}
					return nil
				}
				t := table{
					cols:    []string{"ID", "CreatedSince", "CreatedBy", "Size", "Comment"},
					headers: map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"},
				}
				return t.print(out, format, rows)
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&human, "human", "H", true, "print sizes and dates in human readable format")
	fl.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	fl.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	fl.StringVar(&format, "format", "", "format output using a Go template, 'json', or 'table TEMPLATE'")
	return cmd
}

func newTagCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return c.ImageTag(ctx, args[0], args[1])
			})
		},
	}
}

func newRmiCommand(g *globals, use string) *cobra.Command {
	var force, noPrune bool
	cmd := &cobra.Command{
		Use:     use + " [OPTIONS] IMAGE [IMAGE...]",
		Short:   "Remove one or more images",
		Aliases: aliases(use, "rm", "remove"),
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var errs []error
				out := cmd.OutOrStdout()
				for _, ref := range args {
					items, err := c.ImageRemove(ctx, ref, force)
					for _, it := range items {
						if it.Untagged != "" {
							fmt.Fprintln(out, "Untagged:", it.Untagged)
						}
						if it.Deleted != "" {
							fmt.Fprintln(out, "Deleted:", it.Deleted)
						}
					}
					if err != nil {
						errs = append(errs, err)
					}
				}
				return errors.Join(errs...)
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force removal of the image")
	cmd.Flags().BoolVar(&noPrune, "no-prune", false, "do not delete untagged parents (berth keeps no parent images)")
	return cmd
}

func newPruneCommand(g *globals) *cobra.Command {
	var (
		all, force bool
		filters    []string
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(filters)
			if err != nil {
				return err
			}
			if all {
				f["dangling"] = []string{"false"}
			}
			if !force {
				warning := "WARNING! This will remove all dangling images."
				if all {
					warning = "WARNING! This will remove all images without at least one container associated to them."
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s\nAre you sure you want to continue? [y/N] ", warning)
				var answer string
				fmt.Fscanln(cmd.InOrStdin(), &answer)
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return nil
				}
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				res, err := c.ImagePrune(ctx, f)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if len(res.ImagesDeleted) > 0 {
					fmt.Fprintln(out, "Deleted Images:")
					for _, it := range res.ImagesDeleted {
						if it.Untagged != "" {
							fmt.Fprintln(out, "untagged:", it.Untagged)
						}
						if it.Deleted != "" {
							fmt.Fprintln(out, "deleted:", it.Deleted)
						}
					}
					fmt.Fprintln(out)
				}
				fmt.Fprintln(out, "Total reclaimed space:", humanSize(int64(res.SpaceReclaimed)))
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images, not just dangling ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, `provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}

// aliases gives the image subcommands docker's second names (image list,
// image remove); top-level verbs get none.
func aliases(use, name string, more ...string) []string {
	if use != name {
		return nil
	}
	return more
}
