package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/client"
)

var statsTable = table{headers: map[string]string{
	"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
	"MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}, cols: []string{"ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs"}}

func newStatsCommand(g *globals) *cobra.Command {
	var (
		all, noStream, noTrunc bool
		format                 string
	)
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				ids := args
				if len(ids) == 0 {
					list, err := c.ContainerList(ctx, client.ListOptions{All: all})
					if err != nil {
						return err
					}
					for _, s := range list {
						ids = append(ids, s.ID)
					}
				}
				out := cmd.OutOrStdout()
				if noStream {
					rows := make([]map[string]string, len(ids))
					for i, id := range ids {
						s, err := oneStats(ctx, c, id)
						if err != nil {
							return err
						}
						rows[i] = statsRow(s.ID, s.Name, s, noTrunc)
					}
					return statsTable.print(out, format, rows)
				}
				// Streaming: one goroutine per container keeps its latest
				// sample; the table is redrawn as samples come.
				var mu sync.Mutex
				latest := map[string]map[string]string{}
				updates := make(chan struct{}, 1)
				errc := make(chan error, len(ids))
				for _, id := range ids {
					go func() {
						rc, err := c.ContainerStats(ctx, id, true)
						if err != nil {
							errc <- err
							return
						}
						defer rc.Close()
						dec := json.NewDecoder(rc)
						for {
							var s container.StatsResponse
							if err := dec.Decode(&s); err != nil {
								if errors.Is(err, io.EOF) {
									err = nil
								}
								errc <- err
								return
							}
							mu.Lock()
							latest[id] = statsRow(s.ID, s.Name, s, noTrunc)
							mu.Unlock()
							select {
							case updates <- struct{}{}:
							default:
							}
						}
					}()
				}
				done := 0
				for done < len(ids) {
					select {
					case <-updates:
						mu.Lock()
						rows := make([]map[string]string, 0, len(ids))
						for _, id := range ids {
							if r, ok := latest[id]; ok {
								rows = append(rows, r)
							}
						}
						mu.Unlock()
						fmt.Fprint(out, "\x1b[2J\x1b[H")
						if err := statsTable.print(out, format, rows); err != nil {
							return err
						}
					case err := <-errc:
						if err != nil {
							return err
						}
						done++
					case <-ctx.Done():
						return nil
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "disable streaming stats and only pull the first result")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not truncate output")
	cmd.Flags().StringVar(&format, "format", "", "format output using a Go template, 'json', or 'table TEMPLATE'")
	return cmd
}

func oneStats(ctx context.Context, c *client.Client, id string) (container.StatsResponse, error) {
	var s container.StatsResponse
	rc, err := c.ContainerStats(ctx, id, false)
	if err != nil {
		return s, err
	}
	defer rc.Close()
	if err := json.NewDecoder(rc).Decode(&s); err != nil {
		return s, fmt.Errorf("stats %s: %w", id, err)
	}
	return s, nil
}
