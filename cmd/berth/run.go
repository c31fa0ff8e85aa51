package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
)

func newRunCommand(g *globals) *cobra.Command {
	var (
		f          createFlags
		detach, rm bool
		sigProxy   bool
		detachKeys string
		attach     []string
		cidfile    string
	)
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := f.request(cmd.Flags(), args[0], args[1:])
			if err != nil {
				return err
			}
			req.HostConfig.AutoRemove = rm
			req.HostConfig.ContainerIDFile = cidfile
			setConsoleSize(&req)
			if !detach {
				req.Config.AttachStdin = f.interactive
				req.Config.AttachStdout, req.Config.AttachStderr = true, true
				if len(attach) > 0 {
					req.Config.AttachStdout, req.Config.AttachStderr = false, false
					for _, a := range attach {
						switch strings.ToLower(a) {
						case "stdin":
							req.Config.AttachStdin = true
						case "stdout":
							req.Config.AttachStdout = true
						case "stderr":
							req.Config.AttachStderr = true
						default:
							return usageErr("invalid argument %q for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR", a)
						}
					}
				}
			} else {
				req.Config.StdinOnce = false
			}
			if !detach && f.tty && f.interactive && !isTerminal(os.Stdin) {
				return localError{errors.New("the input device is not a TTY")}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			id, err := createContainer(ctx, c, cmd, f.name, req, f.pull, f.platform)
			if err != nil {
				return err
			}
			if detach {
				if err := c.ContainerStart(ctx, id); err != nil {
					return startError(err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), id)
				return nil
			}
			return runAttached(ctx, c, cmd, id, req.Config, rm, sigProxy && !f.tty, detachKeys)
		},
	}
	fl := cmd.Flags()
	f.register(fl)
	fl.BoolVarP(&detach, "detach", "d", false, "run container in background and print container ID")
	fl.BoolVar(&rm, "rm", false, "automatically remove the container and its anonymous volumes when it exits")
	fl.BoolVar(&sigProxy, "sig-proxy", true, "proxy received signals to the process")
	fl.StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	fl.StringArrayVarP(&attach, "attach", "a", nil, "attach to STDIN, STDOUT or STDERR")
	fl.StringVar(&cidfile, "cidfile", "", "write the container ID to the file")
	return cmd
}

func newCreateCommand(g *globals) *cobra.Command {
	var f createFlags
	var cidfile string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := f.request(cmd.Flags(), args[0], args[1:])
			if err != nil {
				return err
			}
			req.HostConfig.ContainerIDFile = cidfile
			setConsoleSize(&req)
			req.Config.AttachStdin = f.interactive
			req.Config.AttachStdout, req.Config.AttachStderr = true, true
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				id, err := createContainer(ctx, c, cmd, f.name, req, f.pull, f.platform)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), id)
				return nil
			})
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().StringVar(&cidfile, "cidfile", "", "write the container ID to the file")
	return cmd
}

// setConsoleSize gives a container with a terminal our terminal's size
// from its first moment, as docker's CLI does (HostConfig.ConsoleSize,
// height then width): a program that reads its size at once (stty size,
// a full-screen tool) sees it before any resize could arrive.
func setConsoleSize(req *container.CreateRequest) {
	if !req.Config.Tty || req.HostConfig.ConsoleSize != [2]uint{} {
		return
	}
	ws, err := unix.IoctlGetWinsize(int(os.Stdout.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Row == 0 || ws.Col == 0 {
		return // not a terminal
	}
	req.HostConfig.ConsoleSize = [2]uint{uint(ws.Row), uint(ws.Col)}
}

// createContainer creates the container, pulling its image first when
// it is missing (or always, with --pull always), as docker does.
func createContainer(ctx context.Context, c *client.Client, cmd *cobra.Command, name string, req container.CreateRequest, pull, platform string) (string, error) {
	switch pull {
	case "missing", "always", "never":
	default:
		return "", usageErr("invalid pull option: %q: must be one of \"always\", \"missing\" or \"never\"", pull)
	}
	ref := req.Config.Image
	named, err := image.ParseReference(ref)
	isName := err == nil
	doPull := func() error {
		if !isName {
			return err
		}
		return pullImage(ctx, c, cmd.ErrOrStderr(), ref, named, platform, false)
	}
	if pull == "always" {
		if err := doPull(); err != nil {
			return "", err
		}
	}
	res, err := c.ContainerCreate(ctx, name, req)
	if err != nil && errors.Is(err, errdefs.ErrNotFound) && pull == "missing" && isName && strings.Contains(strings.ToLower(err.Error()), "image") {
		fmt.Fprintf(cmd.ErrOrStderr(), "Unable to find image '%s' locally\n", ref)
		if perr := doPull(); perr != nil {
			return "", perr
		}
		res, err = c.ContainerCreate(ctx, name, req)
	}
	if err != nil {
		return "", err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "WARNING:", w)
	}
	if p := req.HostConfig.ContainerIDFile; p != "" {
		if err := os.WriteFile(p, []byte(res.ID), 0o644); err != nil {
			return res.ID, localError{fmt.Errorf("write cidfile: %w", err)}
		}
	}
	return res.ID, nil
}

// startError gives a failed start docker's exit code: 127 when the
// command is not found, 126 when it cannot be invoked, 125 otherwise.
func startError(err error) error {
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory") ||
		strings.Contains(msg, "not found in $path"):
		return exitError{code: exitNotFound, err: err}
	case strings.Contains(msg, "permission denied") || strings.Contains(msg, "exec format error") ||
		strings.Contains(msg, "is a directory") || strings.Contains(msg, "cannot invoke"):
		return exitError{code: exitNoInvoke, err: err}
	}
	return err
}

// runAttached is run in the foreground, in docker's order: attach, wait
// (registered before the start, so the exit cannot be missed), start,
// then copy the streams until the output ends and return the exit code.
func runAttached(ctx context.Context, c *client.Client, cmd *cobra.Command, id string, cfg *container.Config, rm, proxySignals bool, detachKeys string) error {
	attached := cfg.AttachStdin || cfg.AttachStdout || cfg.AttachStderr
	// The attach and the wait only need to be in place before the start:
	// they go out together, one round trip to the daemon instead of two.
	type attachResult struct {
		conn *client.HijackedConn
		err  error
	}
	attachc := make(chan attachResult, 1)
	if attached {
		go func() {
			conn, err := c.ContainerAttach(ctx, id, client.AttachOptions{Stream: true, Stdin: cfg.AttachStdin,
				Stdout: cfg.AttachStdout, Stderr: cfg.AttachStderr, DetachKeys: detachKeys})
			attachc <- attachResult{conn, err}
		}()
	}
	cond := container.WaitConditionNextExit
	if rm {
		cond = container.WaitConditionRemoved
	}
	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	resc, errc := c.ContainerWait(waitCtx, id, cond)
	var conn *client.HijackedConn
	if attached {
		a := <-attachc
		if a.err != nil {
			return a.err
		}
		conn = a.conn
		defer conn.Close()
	}
	if err := c.ContainerStart(ctx, id); err != nil {
		if rm {
			_ = c.ContainerRemove(context.WithoutCancel(ctx), id, client.RemoveOptions{Force: true})
		}
		return startError(err)
	}
	if proxySignals {
		stop := proxySignalsTo(ctx, c, id)
		defer stop()
	}
	var (
		res     container.WaitResponse
		gotExit bool
	)
	if attached {
		type pumped struct {
			detached bool
			err      error
		}
		done := make(chan pumped, 1)
		go func() {
			d, err := pumpStreams(ctx, c, cmd, conn, id, cfg.Tty, cfg.AttachStdin, false, detachKeys)
			done <- pumped{d, err}
		}()
		var p pumped
		select {
		case p = <-done:
		case res = <-resc:
			// The container is gone; its output ends with it. Should
			// the attach stream not close, do not hang on it: the
			// exit code is known.
			gotExit = true
			select {
			case p = <-done:
			case <-time.After(outputGrace):
				conn.Close()
				p = <-done
			}
		case err := <-errc:
			return err
		}
		if p.err != nil && !gotExit {
			return p.err
		}
		if p.detached {
			return nil
		}
	}
	if !gotExit {
		select {
		case res = <-resc:
		case err := <-errc:
			return err
		}
	}
	if res.Error != nil && res.Error.Message != "" {
		return exitError{code: exitBerth, err: errors.New(res.Error.Message)}
	}
	if res.StatusCode != 0 {
		return exitError{code: int(res.StatusCode)}
	}
	return nil
}

// outputGrace is how long a run waits for the output stream to end once
// the container's exit is known.
const outputGrace = 2 * time.Second

// pumpStreams copies stdin to the container and its output to ours until
// the output ends. With a tty it puts our terminal in raw mode, keeps the
// container's size in step (SIGWINCH) and watches stdin for the detach
// keys, as docker's CLI does. It says whether the user detached.
func pumpStreams(ctx context.Context, c *client.Client, cmd *cobra.Command, conn *client.HijackedConn, id string, tty, stdin, isExec bool, detachKeys string) (bool, error) {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	in := cmd.InOrStdin()
	var esc *escapeReader
	if tty {
		if stdin {
			keys, err := parseDetachKeys(detachKeys)
			if err != nil {
				return false, err
			}
			esc = &escapeReader{r: in, keys: keys}
			in = esc
			if isTerminal(os.Stdin) {
				if restore, err := makeRaw(os.Stdin); err == nil {
					defer restore()
				}
			}
		}
		if isTerminal(os.Stdout) {
			stop := followResize(ctx, c, id, isExec)
			defer stop()
		}
	}
	if stdin {
		go func() {
			_, _ = io.Copy(conn.Conn, in)
			if esc != nil && esc.isDetached() {
				// Closing the session is the detach: the daemon keeps
				// the container running.
				_ = conn.Close()
				return
			}
			_ = conn.CloseWrite()
		}()
	}
	var err error
	if tty {
		_, err = io.Copy(stdout, conn.Reader)
	} else {
		_, err = client.StdCopy(stdout, stderr, conn.Reader)
	}
	if esc != nil && esc.isDetached() {
		return true, nil
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return false, err
	}
	return false, nil
}

// proxySignalsTo forwards the signals a user sends to berth to the
// container, as docker's --sig-proxy; SIGCHLD, SIGPIPE, SIGURG (the Go
// runtime's preemption) and SIGWINCH are not a user's.
func proxySignalsTo(ctx context.Context, c *client.Client, id string) func() {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case s := <-ch:
				sig, ok := s.(unix.Signal)
				if !ok || sig == unix.SIGCHLD || sig == unix.SIGPIPE || sig == unix.SIGURG || sig == unix.SIGWINCH {
					continue
				}
				_ = c.ContainerKill(ctx, id, unix.SignalName(sig))
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
		wg.Wait()
	}
}
