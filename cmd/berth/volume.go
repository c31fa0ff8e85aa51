package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/volume"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/client"
)

// newVolumeCommand is `berth volume` and its verbs, with docker's flags
// and output; each is one or a few API calls.
func newVolumeCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "Manage volumes"}
	cmd.AddCommand(
		newVolumeCreateCommand(g),
		newVolumeLsCommand(g),
		newVolumeInspectCommand(g),
		newVolumeRmCommand(g),
		newVolumePruneCommand(g),
	)
	return cmd
}

func newVolumeCreateCommand(g *globals) *cobra.Command {
	var (
		driver, name   string
		labels, values []string
	)
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" && name != args[0] {
					return usageErr("conflicting options: either specify --name or provide positional arg, not both")
				}
				name = args[0]
			}
			opts := map[string]string{}
			for _, o := range values {
				k, v, ok := strings.Cut(o, "=")
				if !ok || k == "" {
					return usageErr("invalid option %q: want KEY=VALUE", o)
				}
				opts[k] = v
			}
			req := volume.CreateRequest{Name: name, Driver: driver, DriverOpts: opts, Labels: keyValues(labels)}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				v, err := c.VolumeCreate(ctx, req)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), v.Name)
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&driver, "driver", "d", "local", "specify volume driver name (only local)")
	fl.StringVar(&name, "name", "", "specify volume name")
	_ = fl.MarkHidden("name")
	fl.StringArrayVar(&labels, "label", nil, "set metadata for a volume")
	fl.StringArrayVarP(&values, "opt", "o", nil, "set driver specific options (type, device, o: tmpfs, or a bind with type=none o=bind)")
	return cmd
}

var volumesTable = table{headers: map[string]string{
	"Driver": "DRIVER", "Name": "VOLUME NAME", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT", "Labels": "LABELS",
	"CreatedAt": "CREATED", "Links": "LINKS", "Size": "SIZE",
}, cols: []string{"Driver", "Name"}}

// volumeRow is one volume as ls's --format sees it (docker's fields).
func volumeRow(v volume.Volume) map[string]string {
	labels := make([]string, 0, len(v.Labels))
	for k, val := range v.Labels {
		labels = append(labels, k+"="+val)
	}
	slices.Sort(labels)
	links, size := "N/A", "N/A"
	if v.UsageData != nil {
		links, size = fmt.Sprint(v.UsageData.RefCount), humanSize(v.UsageData.Size)
	}
	return map[string]string{"Driver": v.Driver, "Name": v.Name, "Scope": v.Scope, "Mountpoint": v.Mountpoint,
		"Labels": strings.Join(labels, ","), "CreatedAt": v.CreatedAt, "Links": links, "Size": size}
}

func newVolumeLsCommand(g *globals) *cobra.Command {
	var (
		quiet   bool
		filters []string
		format  string
	)
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(filters)
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				res, err := c.VolumeList(ctx, f)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				for _, w := range res.Warnings {
					fmt.Fprintln(cmd.ErrOrStderr(), w)
				}
				slices.SortFunc(res.Volumes, func(a, b volume.Volume) int { return strings.Compare(a.Name, b.Name) })
				rows := make([]map[string]string, 0, len(res.Volumes))
				for _, v := range res.Volumes {
					rows = append(rows, volumeRow(v))
				}
				if quiet {
					for _, r := range rows {
						fmt.Fprintln(out, r["Name"])
					}
					return nil
				}
				return volumesTable.print(out, format, rows)
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "only display volume names")
	fl.StringArrayVarP(&filters, "filter", "f", nil, `provide filter values (e.g. "dangling=true")`)
	fl.StringVar(&format, "format", "", "format output using a Go template, 'json', or 'table TEMPLATE'")
	return cmd
}

func newVolumeInspectCommand(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return inspectEach(ctx, cmd, args, format, func(ctx context.Context, name string) (any, error) {
					return c.VolumeInspect(ctx, name)
				})
			})
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	return cmd
}

func newVolumeRmCommand(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var failed []string
				for _, name := range args {
					if err := c.VolumeRemove(ctx, name, force); err != nil {
						failed = append(failed, errorText(err))
						continue
					}
					fmt.Fprintln(cmd.OutOrStdout(), name)
				}
				if len(failed) > 0 {
					return exitError{code: 1, err: errors.New(strings.Join(failed, "\n"))}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not error if a volume does not exist")
	return cmd
}

func newVolumePruneCommand(g *globals) *cobra.Command {
	var (
		all, force bool
		filters    []string
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(filters)
			if err != nil {
				return err
			}
			warning := "WARNING! This will remove anonymous local volumes not used by at least one container."
			if all {
				if len(f["all"]) > 0 {
					return usageErr("conflicting options: cannot specify both --all and --filter all=1")
				}
				f["all"] = []string{"true"}
				warning = "WARNING! This will remove all local volumes not used by at least one container."
			}
			if !force && !confirm(cmd, warning) {
				return nil
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				rep, err := volumesPrune(ctx, c, cmd, f)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "Total reclaimed space:", humanSize(int64(rep.SpaceReclaimed)))
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused volumes, not just anonymous ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, `provide filter values (e.g. "label=<label>")`)
	return cmd
}

// volumesPrune prunes and lists what went, as volume prune and system
// prune --volumes print it.
func volumesPrune(ctx context.Context, c *client.Client, cmd *cobra.Command, f map[string][]string) (volume.PruneReport, error) {
	rep, err := c.VolumesPrune(ctx, f)
	if err != nil {
		return rep, err
	}
	if len(rep.VolumesDeleted) > 0 {
		out := cmd.OutOrStdout()
		fmt.Fprintln(out, "Deleted Volumes:")
		for _, n := range rep.VolumesDeleted {
			fmt.Fprintln(out, n)
		}
		fmt.Fprintln(out)
	}
	return rep, nil
}
