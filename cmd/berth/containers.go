package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/errdefs"
)

// containerVerbs are the container commands; sub selects their names
// under `berth container` (ls, rm, inspect, prune) rather than at the top
// level (ps, rm).
func containerVerbs(g *globals, sub bool) []*cobra.Command {
	cmds := []*cobra.Command{
		newRunCommand(g), newCreateCommand(g), newStartCommand(g), newStopCommand(g), newKillCommand(g),
		newRestartCommand(g), newEachCommand(g, "pause", "Pause all processes within one or more containers", (*client.Client).ContainerPause),
		newEachCommand(g, "unpause", "Unpause all processes within one or more containers", (*client.Client).ContainerUnpause),
		newWaitCommand(g), newRmCommand(g), newRenameCommand(g), newUpdateCommand(g), newTopCommand(g),
		newCpCommand(g), newDiffCommand(g), newCommitCommand(g), newExportCommand(g), newPortCommand(g),
		newLogsCommand(g), newAttachCommand(g), newExecCommand(g), newStatsCommand(g),
	}
	if sub {
		ls := newPsCommand(g)
		ls.Use, ls.Aliases = "ls [OPTIONS]", []string{"ps", "list"}
		ci := newContainerInspectCommand(g)
		cmds = append(cmds, ls, ci, newContainerPruneCommand(g))
	} else {
		cmds = append(cmds, newPsCommand(g))
	}
	return cmds
}

// forEach runs fn on every argument, printing each name that succeeded
// (docker's output) and every error; any error makes the exit code 1...
// docker exits 1 for these multi-container verbs.
func forEach(cmd *cobra.Command, args []string, fn func(ctx context.Context, id string) error) error {
	var errs []string
	for _, id := range args {
		if err := fn(cmd.Context(), id); err != nil {
			if errors.Is(err, errdefs.ErrUnavailable) && !fromDaemon(err) {
				return err
			}
			errs = append(errs, errorText(err))
			continue
		}
		fmt.Fprintln(cmd.OutOrStdout(), id)
	}
	if len(errs) > 0 {
		return exitError{code: 1, err: errors.New(strings.Join(errs, "\n"))}
	}
	return nil
}

func newEachCommand(g *globals, verb, short string, fn func(*client.Client, context.Context, string) error) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " CONTAINER [CONTAINER...]",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			return forEach(cmd, args, func(ctx context.Context, id string) error { return fn(c, ctx, id) })
		},
	}
}

func newStartCommand(g *globals) *cobra.Command {
	var attach, interactive bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if !attach && !interactive {
				return forEach(cmd, args, func(ctx context.Context, id string) error {
					if err := c.ContainerStart(ctx, id); err != nil {
						return err
					}
					return nil
				})
			}
			if len(args) > 1 {
				return usageErr("you cannot start and attach multiple containers at once")
			}
			info, err := c.ContainerInspect(ctx, args[0], false)
			if err != nil {
				return err
			}
			cfg := *info.Config
			cfg.AttachStdin = interactive && cfg.OpenStdin
			cfg.AttachStdout, cfg.AttachStderr = true, true
			return runAttachedExisting(ctx, c, cmd, info.ID, &cfg, detachKeys)
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "attach STDOUT/STDERR and forward signals")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "attach container's STDIN")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	return cmd
}

// runAttachedExisting is start -a: attach, wait, start, copy, exit code.
func runAttachedExisting(ctx context.Context, c *client.Client, cmd *cobra.Command, id string, cfg *container.Config, detachKeys string) error {
	return runAttached(ctx, c, cmd, id, cfg, false, !cfg.Tty, detachKeys)
}

// stopTimeout is -t (or stop's older --timeout) when given; nil leaves
// the container's own stop timeout in force.
func stopTimeout(cmd *cobra.Command) *int {
	for _, name := range []string{"time", "timeout"} {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			t, _ := cmd.Flags().GetInt(name)
			return &t
		}
	}
	return nil
}

func newStopCommand(g *globals) *cobra.Command {
	cmd := newStopLikeCommand(g, "stop", "Stop one or more running containers", (*client.Client).ContainerStop)
	cmd.Flags().IntP("timeout", "", 0, "seconds to wait before killing the container")
	_ = cmd.Flags().MarkHidden("timeout")
	return cmd
}

func newRestartCommand(g *globals) *cobra.Command {
	return newStopLikeCommand(g, "restart", "Restart one or more containers", (*client.Client).ContainerRestart)
}

// newStopLikeCommand builds stop and restart: both signal, wait -t
// seconds, then kill.
func newStopLikeCommand(g *globals, verb, short string, call func(*client.Client, context.Context, string, client.StopOptions) error) *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   verb + " [OPTIONS] CONTAINER [CONTAINER...]",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			opts := client.StopOptions{Signal: signal, Timeout: stopTimeout(cmd)}
			return forEach(cmd, args, func(ctx context.Context, id string) error { return call(c, ctx, id, opts) })
		},
	}
	cmd.Flags().IntP("time", "t", 0, "seconds to wait before killing the container")
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "signal to send to the container")
	return cmd
}

func newKillCommand(g *globals) *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			return forEach(cmd, args, func(ctx context.Context, id string) error { return c.ContainerKill(ctx, id, signal) })
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "signal to send to the container")
	return cmd
}

func newWaitCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var errs []string
			for _, id := range args {
				resc, errc := c.ContainerWait(cmd.Context(), id, container.WaitConditionNotRunning)
				select {
				case res := <-resc:
					fmt.Fprintln(cmd.OutOrStdout(), res.StatusCode)
				case err := <-errc:
					if !fromDaemon(err) {
						return err
					}
					errs = append(errs, errorText(err))
				}
			}
			if len(errs) > 0 {
				return exitError{code: 1, err: errors.New(strings.Join(errs, "\n"))}
			}
			return nil
		},
	}
}

func newRmCommand(g *globals) *cobra.Command {
	var force, volumes, link bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more containers",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			opts := client.RemoveOptions{Force: force, RemoveVolumes: volumes, RemoveLinks: link}
			return forEach(cmd, args, func(ctx context.Context, id string) error { return c.ContainerRemove(ctx, id, opts) })
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "remove anonymous volumes associated with the container")
	cmd.Flags().BoolVarP(&link, "link", "l", false, "remove the specified link")
	return cmd
}

func newRenameCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return c.ContainerRename(ctx, args[0], args[1])
			})
		},
	}
}

func newUpdateCommand(g *globals) *cobra.Command {
	var f createFlags
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			req, err := f.request(fl, "", nil)
			if err != nil {
				return err
			}
			var uc container.UpdateConfig
			uc.Resources = req.HostConfig.Resources
			if fl.Changed("restart") {
				uc.RestartPolicy = req.HostConfig.RestartPolicy
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			return forEach(cmd, args, func(ctx context.Context, id string) error {
				res, err := c.ContainerUpdate(ctx, id, uc)
				for _, w := range res.Warnings {
					fmt.Fprintln(cmd.ErrOrStderr(), "WARNING:", w)
				}
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.memory, "memory", "m", "", "memory limit")
	fl.StringVar(&f.memorySwap, "memory-swap", "", "swap limit equal to memory plus swap: -1 to enable unlimited swap")
	fl.StringVar(&f.cpus, "cpus", "", "number of CPUs")
	fl.StringVar(&f.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fl.Int64VarP(&f.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fl.Int64Var(&f.cpuQuota, "cpu-quota", 0, "limit CPU CFS quota")
	fl.Int64Var(&f.cpuPeriod, "cpu-period", 0, "limit CPU CFS period")
	fl.Int64Var(&f.pidsLimit, "pids-limit", 0, "tune container pids limit (set -1 for unlimited)")
	fl.Uint16Var(&f.blkioWeight, "blkio-weight", 0, "block IO (relative weight), between 10 and 1000, or 0 to disable")
	fl.StringVar(&f.restart, "restart", "", "restart policy to apply when a container exits")
	return cmd
}

func newTopCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				res, err := c.ContainerTop(ctx, args[0], strings.Join(args[1:], " "))
				if err != nil {
					return err
				}
				tw := newTabWriter(cmd.OutOrStdout())
				fmt.Fprintln(tw, strings.Join(res.Titles, "\t"))
				for _, p := range res.Processes {
					fmt.Fprintln(tw, strings.Join(p, "\t"))
				}
				return tw.Flush()
			})
		},
	}
}

func newDiffCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				changes, err := c.ContainerChanges(ctx, args[0])
				if err != nil {
					return err
				}
				for _, ch := range changes {
					k := "C"
					switch ch.Kind {
					case container.ChangeAdd:
						k = "A"
					case container.ChangeDelete:
						k = "D"
					}
					fmt.Fprintln(cmd.OutOrStdout(), k, ch.Path)
				}
				return nil
			})
		},
	}
}

func newCommitCommand(g *globals) *cobra.Command {
	var (
		changes         []string
		message, author string
		pause           bool
	)
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				res, err := c.ContainerCommit(ctx, args[0], client.CommitOptions{Reference: ref, Comment: message, Author: author, Pause: &pause, Changes: changes})
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), res.ID)
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, "apply Dockerfile instruction to the created image")
	cmd.Flags().StringVarP(&message, "message", "m", "", "commit message")
	cmd.Flags().StringVarP(&author, "author", "a", "", `author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	cmd.Flags().BoolVarP(&pause, "pause", "p", true, "pause container during commit")
	return cmd
}

func newExportCommand(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if output == "" {
				if f, ok := out.(*os.File); ok && isTerminal(f) {
					return localError{errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")}
				}
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				rc, err := c.ContainerExport(ctx, args[0])
				if err != nil {
					return err
				}
				defer rc.Close()
				if output != "" {
					f, err := os.Create(output)
					if err != nil {
						return localError{err}
					}
					defer f.Close()
					out = f
				}
				_, err = io.Copy(out, rc)
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file, instead of STDOUT")
	return cmd
}

func newPortCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				info, err := c.ContainerInspect(ctx, args[0], false)
				if err != nil {
					return err
				}
				var lines []string
				if info.NetworkSettings != nil {
					for p, bs := range info.NetworkSettings.Ports {
						if len(args) == 2 && p.String() != withProto(args[1]) {
							continue
						}
						for _, b := range bs {
							ip := "0.0.0.0"
							if b.HostIP.IsValid() {
								ip = b.HostIP.String()
							}
							if strings.Contains(ip, ":") {
								ip = "[" + ip + "]"
							}
							if len(args) == 2 {
								lines = append(lines, ip+":"+b.HostPort)
							} else {
								lines = append(lines, fmt.Sprintf("%s -> %s:%s", p, ip, b.HostPort))
							}
						}
					}
				}
				if len(args) == 2 && len(lines) == 0 {
					return fmt.Errorf("no public port '%s' published for %s", withProto(args[1]), args[0])
				}
				sort.Strings(lines)
				for _, l := range lines {
					fmt.Fprintln(cmd.OutOrStdout(), l)
				}
				return nil
			})
		},
	}
}

func newLogsCommand(g *globals) *cobra.Command {
	var (
		follow, timestamps, details bool
		since, until, tail          string
	)
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			opts := client.LogsOptions{Follow: follow, Timestamps: timestamps, Details: details, Tail: tail}
			var err error
			if opts.Since, err = parseTime(since, now); err != nil {
				return err
			}
			if opts.Until, err = parseTime(until, now); err != nil {
				return err
			}
			if tail == "all" {
				opts.Tail = ""
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				info, err := c.ContainerInspect(ctx, args[0], false)
				if err != nil {
					return err
				}
				rc, err := c.ContainerLogs(ctx, args[0], opts)
				if err != nil {
					return err
				}
				defer rc.Close()
				if info.Config != nil && info.Config.Tty {
					_, err = io.Copy(cmd.OutOrStdout(), rc)
				} else {
					_, err = client.StdCopy(cmd.OutOrStdout(), cmd.ErrOrStderr(), rc)
				}
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&follow, "follow", "f", false, "follow log output")
	fl.BoolVarP(&timestamps, "timestamps", "t", false, "show timestamps")
	fl.BoolVar(&details, "details", false, "show extra details provided to logs")
	fl.StringVar(&since, "since", "", "show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	fl.StringVar(&until, "until", "", "show logs before a timestamp or relative time")
	fl.StringVarP(&tail, "tail", "n", "all", "number of lines to show from the end of the logs")
	return cmd
}

// parseTime reads docker's time arguments: RFC 3339 (with or without
// nanoseconds or zone), a date, Unix seconds (with fraction), or a
// duration back from now.
func parseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usageErr("invalid time %q: want RFC 3339, Unix seconds or a duration", s)
}

func newAttachCommand(g *globals) *cobra.Command {
	var (
		noStdin, sigProxy bool
		detachKeys        string
	)
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			info, err := c.ContainerInspect(ctx, args[0], false)
			if err != nil {
				return err
			}
			if info.State == nil || !info.State.Running {
				return localError{fmt.Errorf("You cannot attach to a stopped container, start it first")} //nolint:staticcheck // docker's words
			}
			if info.State.Paused {
				return localError{fmt.Errorf("You cannot attach to a paused container, unpause it first")} //nolint:staticcheck // docker's words
			}
			stdin := !noStdin && info.Config.OpenStdin
			if info.Config.Tty && stdin && !isTerminal(os.Stdin) {
				return localError{errors.New("the input device is not a TTY")}
			}
			conn, err := c.ContainerAttach(ctx, info.ID, client.AttachOptions{Stream: true, Stdin: stdin, Stdout: true, Stderr: true, DetachKeys: detachKeys})
			if err != nil {
				return err
			}
			defer conn.Close()
			resc, errc := c.ContainerWait(ctx, info.ID, container.WaitConditionNotRunning)
			if sigProxy && !info.Config.Tty {
				stop := proxySignalsTo(ctx, c, info.ID)
				defer stop()
			}
			detached, err := pumpStreams(ctx, c, cmd, conn, info.ID, info.Config.Tty, stdin, false, detachKeys)
			if err != nil || detached {
				return err
			}
			select {
			case res := <-resc:
				if res.StatusCode != 0 {
					return exitError{code: int(res.StatusCode)}
				}
			case err := <-errc:
				return err
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "do not attach STDIN")
	cmd.Flags().BoolVar(&sigProxy, "sig-proxy", true, "proxy all received signals to the process")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	return cmd
}

func newExecCommand(g *globals) *cobra.Command {
	var (
		detach, interactive, tty, privileged bool
		user, workdir, detachKeys            string
		env, envFile                         []string
	)
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := container.ExecCreateRequest{User: user, Privileged: privileged, Tty: tty, WorkingDir: workdir,
				AttachStdin: interactive && !detach, AttachStdout: !detach, AttachStderr: !detach, Cmd: args[1:], DetachKeys: detachKeys}
			for _, p := range envFile {
				vars, err := readEnvFile(p)
				if err != nil {
					return err
				}
				req.Env = append(req.Env, vars...)
			}
			for _, e := range env {
				req.Env = append(req.Env, expandEnv(e)...)
			}
			if tty && interactive && !isTerminal(os.Stdin) {
				return localError{errors.New("the input device is not a TTY")}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			res, err := c.ExecCreate(ctx, args[0], req)
			if err != nil {
				return err
			}
			if detach {
				return c.ExecStartDetached(ctx, res.ID)
			}
			conn, err := c.ExecAttach(ctx, res.ID, container.ExecStartRequest{Tty: tty})
			if err != nil {
				return startError(err)
			}
			defer conn.Close()
			detached, err := pumpStreams(ctx, c, cmd, conn, res.ID, tty, interactive, true, detachKeys)
			if err != nil || detached {
				return err
			}
			ins, err := c.ExecInspect(ctx, res.ID)
			if err != nil {
				return err
			}
			if ins.ExitCode != nil && *ins.ExitCode != 0 {
				return exitError{code: *ins.ExitCode}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.BoolVarP(&detach, "detach", "d", false, "detached mode: run command in the background")
	fl.BoolVarP(&interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	fl.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-TTY")
	fl.BoolVar(&privileged, "privileged", false, "give extended privileges to the command")
	fl.StringVarP(&user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	fl.StringVarP(&workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	fl.StringArrayVarP(&env, "env", "e", nil, "set environment variables")
	fl.StringArrayVar(&envFile, "env-file", nil, "read in a file of environment variables")
	return cmd
}

// shortID is docker's 12-hex-digit container or image ID.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func marshalIndent(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}
