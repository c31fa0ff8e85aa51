package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/errdefs"
)

func newTabWriter(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 10, 1, 3, ' ', 0) }

// parseFilters reads --filter key=value flags.
func parseFilters(fs []string) (map[string][]string, error) {
	m := map[string][]string{}
	for _, f := range fs {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, usageErr("bad format of filter (expected name=value): %s", f)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		m[k] = append(m[k], v)
	}
	return m, nil
}

var psTable = table{headers: map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT", "RunningFor": "CREATED",
	"Status": "STATUS", "Ports": "PORTS", "Names": "NAMES", "Size": "SIZE", "Labels": "LABELS", "Mounts": "MOUNTS",
	"Networks": "NETWORKS", "State": "STATE", "LocalVolumes": "LOCAL VOLUMES",
}}

func newPsCommand(g *globals) *cobra.Command {
	var (
		all, quiet, size, noTrunc, latest bool
		last                              int
		filters                           []string
		format                            string
	)
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(filters)
			if err != nil {
				return err
			}
			opts := client.ListOptions{All: all, Size: size, Limit: last, Filters: f}
			if latest {
				opts.Limit = 1
			}
			if opts.Limit > 0 {
				opts.All = true
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				list, err := c.ContainerList(ctx, opts)
				if err != nil {
					return err
				}
				rows := make([]map[string]string, 0, len(list))
				for _, s := range list {
					rows = append(rows, psRow(s, noTrunc))
				}
				out := cmd.OutOrStdout()
				if quiet {
					for _, r := range rows {
						fmt.Fprintln(out, r["ID"])
					}
					return nil
				}
				t := psTable
				t.cols = []string{"ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"}
				if size {
					t.cols = append(t.cols, "Size")
				}
				return t.print(out, format, rows)
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "only display container IDs")
	fl.BoolVarP(&size, "size", "s", false, "display total file sizes")
	fl.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	fl.BoolVarP(&latest, "latest", "l", false, "show the latest created container (includes all states)")
	fl.IntVarP(&last, "last", "n", -1, "show n last created containers (includes all states)")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided")
	fl.StringVar(&format, "format", "", "format output using a Go template, 'json', or 'table TEMPLATE'")
	return cmd
}

func psRow(s container.Summary, noTrunc bool) map[string]string {
	id, command := s.ID, s.Command
	if !noTrunc {
		id = shortID(id)
		if len(command) > 20 {
			command = command[:19] + "…"
		}
	}
	command = strconv.Quote(command)
	var names []string
	for _, n := range s.Names {
		n = strings.TrimPrefix(n, "/")
		if !strings.Contains(n, "/") { // links are other containers' names
			names = append(names, n)
		}
	}
	created := time.Unix(s.Created, 0)
	var ports []string
	for _, p := range s.Ports {
		if p.PublicPort == 0 {
			ports = append(ports, fmt.Sprintf("%d/%s", p.PrivatePort, p.Type))
			continue
		}
		ip := "0.0.0.0"
		if p.IP.IsValid() {
			ip = p.IP.String()
		}
		if strings.Contains(ip, ":") {
			ip = "[" + ip + "]"
		}
		ports = append(ports, fmt.Sprintf("%s:%d->%d/%s", ip, p.PublicPort, p.PrivatePort, p.Type))
	}
	var labels []string
	for k, v := range s.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	var mounts []string
	for _, m := range s.Mounts {
		n := m.Name
		if n == "" {
			n = m.Source
		}
		mounts = append(mounts, n)
	}
	var nets []string
	if s.NetworkSettings != nil {
		for n := range s.NetworkSettings.Networks {
			nets = append(nets, n)
		}
		sort.Strings(nets)
	}
	sizeStr := humanSize(s.SizeRw)
	if s.SizeRootFs > 0 {
		sizeStr += fmt.Sprintf(" (virtual %s)", humanSize(s.SizeRootFs))
	}
	return map[string]string{
		"ID": id, "Image": s.Image, "Command": command, "CreatedAt": created.Format("2006-01-02 15:04:05 -0700 MST"),
		"RunningFor": since(created), "Status": s.Status, "Ports": strings.Join(ports, ", "), "Names": strings.Join(names, ","),
		"Size": sizeStr, "Labels": strings.Join(labels, ","), "Mounts": strings.Join(mounts, ","), "Networks": strings.Join(nets, ","),
		"State": string(s.State), "LocalVolumes": strconv.Itoa(len(s.Mounts)),
	}
}

func newContainerPruneCommand(g *globals) *cobra.Command {
	var (
		force   bool
		filters []string
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(filters)
			if err != nil {
				return err
			}
			if !force && !confirm(cmd, "WARNING! This will remove all stopped containers.") {
				return nil
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				res, err := c.ContainersPrune(ctx, f)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if len(res.ContainersDeleted) > 0 {
					fmt.Fprintln(out, "Deleted Containers:")
					for _, id := range res.ContainersDeleted {
						fmt.Fprintln(out, id)
					}
					fmt.Fprintln(out)
				}
				fmt.Fprintln(out, "Total reclaimed space:", humanSize(int64(res.SpaceReclaimed)))
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, `provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}

// confirm asks docker's "Are you sure" question on stdin.
func confirm(cmd *cobra.Command, warning string) bool {
	fmt.Fprintf(cmd.OutOrStdout(), "%s\nAre you sure you want to continue? [y/N] ", warning)
	var answer string
	fmt.Fscanln(cmd.InOrStdin(), &answer)
	a := strings.ToLower(strings.TrimSpace(answer))
	return a == "y" || a == "yes"
}

func newContainerInspectCommand(g *globals) *cobra.Command {
	var (
		format string
		size   bool
	)
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Display detailed information on one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspectObjects(cmd, g, "container", format, args)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	cmd.Flags().BoolVarP(&size, "size", "s", false, "display total file sizes")
	return cmd
}

func newInspectCommand(g *globals) *cobra.Command {
	var format, typ string
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on berth objects",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch typ {
			case "", "container", "image":
			default:
				return usageErr("%q is not a valid value for --type", typ)
			}
			return inspectObjects(cmd, g, typ, format, args)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	cmd.Flags().StringVar(&typ, "type", "", "only inspect objects of the given type (container or image)")
	cmd.Flags().BoolVarP(&size, "size", "s", false, "display total file sizes if the type is container")
	return cmd
}

// inspectObjects prints the inspect documents of args (containers first,
// then images, for typ ""), as a JSON array or through a template; a
// missing object is docker's "No such object" and exit code 1.
func inspectObjects(cmd *cobra.Command, g *globals, typ, format string, args []string) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	var docs []any
	var errs []string
	for _, name := range args {
		var doc any
		var err error
		if typ == "" || typ == "container" {
			var r container.InspectResponse
			r, err = c.ContainerInspect(ctx, name, false)
			if err == nil {
				doc = r
			}
		}
		if doc == nil && (typ == "image" || (typ == "" && errors.Is(err, errdefs.ErrNotFound))) {
			r, ierr := c.ImageInspect(ctx, name)
			err = ierr
			if ierr == nil {
				doc = r
			}
		}
		if err != nil {
			if !errors.Is(err, errdefs.ErrNotFound) {
				return err
			}
			switch typ {
			case "":
				errs = append(errs, "Error: No such object: "+name)
			case "image":
				errs = append(errs, "Error: No such image: "+name)
			default:
				errs = append(errs, "Error: No such container: "+name)
			}
			continue
		}
		docs = append(docs, doc)
	}
	out := cmd.OutOrStdout()
	if format != "" {
		for _, d := range docs {
			if err := execTemplate(out, format, d); err != nil {
				return localError{err}
			}
		}
	} else {
		if docs == nil {
			docs = []any{}
		}
		if err := marshalIndent(out, docs); err != nil {
			return err
		}
	}
	if len(errs) > 0 {
		return exitError{code: 1, err: errors.New(strings.Join(errs, "\n"))}
	}
	return nil
}
