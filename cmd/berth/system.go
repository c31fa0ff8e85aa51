package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/client"
	buildversion "github.com/berth-dev/berth/internal/version"
)

func newVersionCommand(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the berth version information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			clientInfo := map[string]any{"Version": buildversion.Version, "ApiVersion": client.MaxAPIVersion, "GoVersion": runtime.Version(),
				"Os": runtime.GOOS, "Arch": runtime.GOARCH}
			sv, serr := c.ServerVersion(cmd.Context())
			out := cmd.OutOrStdout()
			if format != "" {
				doc := map[string]any{"Client": clientInfo}
				if serr == nil {
					doc["Server"] = sv
				}
				if err := execTemplate(out, format, doc); err != nil {
					return localError{err}
				}
				return serr
			}
			fmt.Fprintf(out, "Client:\n Version:           %s\n API version:       %s\n Go version:        %s\n OS/Arch:           %s/%s\n",
				buildversion.Version, c.APIVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if serr != nil {
				return serr
			}
			fmt.Fprintf(out, "\nServer:\n Engine:\n  Version:          %s\n  API version:      %s (minimum version %s)\n  Go version:       %s\n  OS/Arch:          %s/%s\n  Kernel Version:   %s\n",
				sv.Version, sv.APIVersion, sv.MinAPIVersion, sv.GoVersion, sv.Os, sv.Arch, sv.KernelVersion)
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	return cmd
}

func newInfoCommand(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				info, err := c.Info(ctx)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if format != "" {
					if err := execTemplate(out, format, info); err != nil {
						return localError{err}
					}
					return nil
				}
				fmt.Fprintf(out, "Server:\n Containers: %d\n  Running: %d\n  Paused: %d\n  Stopped: %d\n Images: %d\n",
					info.Containers, info.ContainersRunning, info.ContainersPaused, info.ContainersStopped, info.Images)
				fmt.Fprintf(out, " Server Version: %s\n Storage Driver: %s\n Logging Driver: %s\n Cgroup Driver: %s\n Cgroup Version: %s\n",
					info.ServerVersion, info.Driver, info.LoggingDriver, info.CgroupDriver, info.CgroupVersion)
				fmt.Fprintf(out, " Kernel Version: %s\n Operating System: %s\n OSType: %s\n Architecture: %s\n CPUs: %d\n Total Memory: %s\n Name: %s\n ID: %s\n Docker Root Dir: %s\n",
					info.KernelVersion, info.OperatingSystem, info.OSType, info.Architecture, info.NCPU, humanSize(info.MemTotal), info.Name, info.ID, info.DockerRootDir)
				for _, w := range info.Warnings {
					fmt.Fprintln(cmd.ErrOrStderr(), w)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	return cmd
}

func newDFCommand(g *globals) *cobra.Command {
	var (
		verbose bool
		format  string
	)
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show berth disk usage",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				du, err := c.DiskUsage(ctx)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				type row = map[string]string
				var rows []row
				reclaim := func(r, total int64) string {
					if total <= 0 {
						return humanSize(r)
					}
					return fmt.Sprintf("%s (%d%%)", humanSize(r), r*100/total)
				}
				if u := du.ImageUsage; u != nil {
					rows = append(rows, row{"Type": "Images", "TotalCount": fmt.Sprint(u.TotalCount), "Active": fmt.Sprint(u.ActiveCount), "Size": humanSize(u.TotalSize), "Reclaimable": reclaim(u.Reclaimable, u.TotalSize)})
				}
				if u := du.ContainerUsage; u != nil {
					rows = append(rows, row{"Type": "Containers", "TotalCount": fmt.Sprint(u.TotalCount), "Active": fmt.Sprint(u.ActiveCount), "Size": humanSize(u.TotalSize), "Reclaimable": reclaim(u.Reclaimable, u.TotalSize)})
				}
				if u := du.VolumeUsage; u != nil {
					rows = append(rows, row{"Type": "Local Volumes", "TotalCount": fmt.Sprint(u.TotalCount), "Active": fmt.Sprint(u.ActiveCount), "Size": humanSize(u.TotalSize), "Reclaimable": reclaim(u.Reclaimable, u.TotalSize)})
				}
				if u := du.BuildCacheUsage; u != nil {
					rows = append(rows, row{"Type": "Build Cache", "TotalCount": fmt.Sprint(u.TotalCount), "Active": fmt.Sprint(u.ActiveCount), "Size": humanSize(u.TotalSize), "Reclaimable": reclaim(u.Reclaimable, u.TotalSize)})
				}
				if !verbose {
					t := table{cols: []string{"Type", "TotalCount", "Active", "Size", "Reclaimable"},
						headers: map[string]string{"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}}
					return t.print(out, format, rows)
				}
				fmt.Fprintln(out, "Images space usage:")
				fmt.Fprintln(out)
				var irows []row
				if du.ImageUsage != nil {
					for _, im := range du.ImageUsage.Items {
						for _, rt := range imageRows(im.RepoTags, im.RepoDigests, false) {
							irows = append(irows, row{"Repository": rt[0], "Tag": rt[1], "ID": shortID(im.ID), "CreatedSince": since(time.Unix(im.Created, 0)),
								"Size": humanSize(im.Size), "SharedSize": humanSize(max(im.SharedSize, 0)), "UniqueSize": humanSize(im.Size - max(im.SharedSize, 0)), "Containers": fmt.Sprint(im.Containers)})
						}
					}
				}
				it := imagesTable
				it.cols = []string{"Repository", "Tag", "ID", "CreatedSince", "Size", "SharedSize", "UniqueSize", "Containers"}
				if err := it.print(out, "", irows); err != nil {
					return err
				}
				fmt.Fprintln(out)
				fmt.Fprintln(out, "Containers space usage:")
				fmt.Fprintln(out)
				var crows []row
				if du.ContainerUsage != nil {
					for _, s := range du.ContainerUsage.Items {
						r := psRow(s, false)
						r["Size"] = humanSize(s.SizeRw)
						crows = append(crows, r)
					}
				}
				pt := psTable
				pt.cols = []string{"ID", "Image", "Command", "LocalVolumes", "Size", "RunningFor", "Status", "Names"}
				if err := pt.print(out, "", crows); err != nil {
					return err
				}
				fmt.Fprintln(out)
				fmt.Fprintln(out, "Local Volumes space usage:")
				fmt.Fprintln(out)
				var vrows []row
				if du.VolumeUsage != nil {
					for _, v := range du.VolumeUsage.Items {
						vrows = append(vrows, volumeRow(v))
					}
				}
				vt := volumesTable
				vt.cols = []string{"Name", "Links", "Size"}
				return vt.print(out, "", vrows)
			})
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show detailed information on space usage")
	cmd.Flags().StringVar(&format, "format", "", "format output using a Go template, 'json', or 'table TEMPLATE'")
	return cmd
}

func newSystemPruneCommand(g *globals) *cobra.Command {
	var (
		all, force, volumes bool
		filters             []string
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused data",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(filters)
			if err != nil {
				return err
			}
			vols := ""
			if volumes {
				vols = "\n  - anonymous volumes not used by at least one container"
			}
			warning := "WARNING! This will remove:\n  - all stopped containers" + vols + "\n  - all dangling images"
			if all {
				warning = "WARNING! This will remove:\n  - all stopped containers" + vols + "\n  - all images without at least one container associated to them"
			}
			if !force && !confirm(cmd, warning) {
				return nil
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				out := cmd.OutOrStdout()
				cres, err := c.ContainersPrune(ctx, f)
				if err != nil {
					return err
				}
				if len(cres.ContainersDeleted) > 0 {
					fmt.Fprintln(out, "Deleted Containers:")
					for _, id := range cres.ContainersDeleted {
						fmt.Fprintln(out, id)
					}
					fmt.Fprintln(out)
				}
				var vreclaimed uint64
				if volumes {
					// Only label filters apply to volumes (docker's rule).
					vf := map[string][]string{}
					for _, k := range []string{"label", "label!"} {
						if len(f[k]) > 0 {
							vf[k] = f[k]
						}
					}
					vres, err := volumesPrune(ctx, c, cmd, vf)
					if err != nil {
						return err
					}
					vreclaimed = vres.SpaceReclaimed
				}
				imf := map[string][]string{}
				for k, v := range f {
					imf[k] = v
				}
				if all {
					imf["dangling"] = []string{"false"}
				}
				ires, err := c.ImagePrune(ctx, imf)
				if err != nil {
					return err
				}
				if len(ires.ImagesDeleted) > 0 {
					fmt.Fprintln(out, "Deleted Images:")
					for _, it := range ires.ImagesDeleted {
						if it.Untagged != "" {
							fmt.Fprintln(out, "untagged:", it.Untagged)
						}
						if it.Deleted != "" {
							fmt.Fprintln(out, "deleted:", it.Deleted)
						}
					}
					fmt.Fprintln(out)
				}
				fmt.Fprintln(out, "Total reclaimed space:", humanSize(int64(cres.SpaceReclaimed+vreclaimed+ires.SpaceReclaimed)))
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images not just dangling ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().BoolVar(&volumes, "volumes", false, "prune anonymous volumes")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, `provide filter values (e.g. "label=<key>=<value>")`)
	return cmd
}

func newEventsCommand(g *globals) *cobra.Command {
	var (
		since, until, format string
		filters              []string
	)
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(filters)
			if err != nil {
				return err
			}
			now := time.Now()
			var opts client.EventsOptions
			opts.Filters = f
			if opts.Since, err = parseTime(since, now); err != nil {
				return err
			}
			if opts.Until, err = parseTime(until, now); err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				msgs, errc := c.Events(ctx, opts)
				out := cmd.OutOrStdout()
				for m := range msgs {
					if err := printEvent(out, format, m); err != nil {
						return err
					}
				}
				return <-errc
			})
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "show all events created since timestamp")
	cmd.Flags().StringVar(&until, "until", "", "stream events until this timestamp")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided")
	cmd.Flags().StringVar(&format, "format", "", "format the output using the given Go template, or 'json'")
	return cmd
}

// printEvent prints one event as docker does: "TIME TYPE ACTION ID
// (k=v, ...)", or through --format.
func printEvent(w io.Writer, format string, m events.Message) error {
	switch format {
	case "":
	case "json", "{{json .}}":
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	default:
		if err := execTemplate(w, format, m); err != nil {
			return localError{err}
		}
		return nil
	}
	t := time.Unix(0, m.TimeNano)
	if m.TimeNano == 0 {
		t = time.Unix(m.Time, 0)
	}
	var attrs []string
	keys := make([]string, 0, len(m.Actor.Attributes))
	for k := range m.Actor.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		attrs = append(attrs, k+"="+m.Actor.Attributes[k])
	}
	line := fmt.Sprintf("%s %s %s %s", t.Format("2006-01-02T15:04:05.000000000Z07:00"), m.Type, m.Action, m.Actor.ID)
	if len(attrs) > 0 {
		line += " (" + strings.Join(attrs, ", ") + ")"
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

// statsRow is one line of docker stats.
func statsRow(id, name string, s container.StatsResponse, noTrunc bool) map[string]string {
	cpu := 0.0
	cpuDelta := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	online := float64(s.CPUStats.OnlineCPUs)
	if online == 0 {
		online = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	if online == 0 {
		online = 1
	}
	if sysDelta > 0 && cpuDelta > 0 {
		cpu = cpuDelta / sysDelta * online * 100
	}
	mem := float64(s.MemoryStats.Usage)
	if v, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && float64(v) < mem {
		mem -= float64(v)
	} else if v, ok := s.MemoryStats.Stats["inactive_file"]; ok && float64(v) < mem {
		mem -= float64(v)
	}
	limit := float64(s.MemoryStats.Limit)
	memPerc := 0.0
	if limit > 0 {
		memPerc = mem / limit * 100
	}
	var rx, tx uint64
	for _, n := range s.Networks {
		rx += n.RxBytes
		tx += n.TxBytes
	}
	var br, bw uint64
	for _, e := range s.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			br += e.Value
		case "write":
			bw += e.Value
		}
	}
	if !noTrunc {
		id = shortID(id)
	}
	return map[string]string{
		"ID": id, "Container": id, "Name": strings.TrimPrefix(name, "/"),
		"CPUPerc": fmt.Sprintf("%.2f%%", cpu), "MemUsage": binSize(mem) + " / " + binSize(limit), "MemPerc": fmt.Sprintf("%.2f%%", memPerc),
		"NetIO": humanSize(int64(rx)) + " / " + humanSize(int64(tx)), "BlockIO": humanSize(int64(br)) + " / " + humanSize(int64(bw)),
		"PIDs": fmt.Sprint(s.PidsStats.Current),
	}
}

// binSize is docker's memory size: binary units (MiB).
func binSize(f float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.4g%s", f, units[i])
}
