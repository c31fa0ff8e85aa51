package daemon

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	containertypes "github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/logfile"
)

// ContainerLogsOptions select log lines (GET /containers/{id}/logs).
type ContainerLogsOptions struct {
	Follow, Stdout, Stderr, Timestamps, Details bool
	Since, Until                                time.Time // zero: unbounded
	Tail                                        string    // "all" (or "") or a number of lines
}

// ContainerLogsResult is a container's log stream.
type ContainerLogsResult struct {
	// Tty says the container has a terminal: its output is one stream and
	// is sent raw, without the stdout/stderr framing.
	Tty      bool
	Messages <-chan LogMessage
}

// LogMessage is one entry of a container's log.
type LogMessage struct {
	Stream string // "stdout" or "stderr"
	Line   []byte // as written: ends with "\n" for a whole line
	Time   time.Time
	Attrs  map[string]string // with Details (none yet)
	// Err ends the stream with an error in band.
	Err error
}

// ContainerLogs reads a container's json-file log. Messages is closed at
// the end: at once without Follow; with it, once the container has stopped
// and its last lines are read, or when ctx ends.
func (e *Engine) ContainerLogs(ctx context.Context, ref string, opts ContainerLogsOptions) (ContainerLogsResult, error) {
	ct, _, err := e.lookup(ref)
	if err != nil {
		return ContainerLogsResult{}, err
	}
	if !opts.Stdout && !opts.Stderr {
		return ContainerLogsResult{}, fmt.Errorf("you must choose at least one stream: %w", errdefs.ErrInvalidArgument)
	}
	r := ct.Snapshot()
	if t := r.HostConfig.LogConfig.Type; t != "" && t != "json-file" {
		return ContainerLogsResult{}, fmt.Errorf("configured logging driver does not support reading: %w", errdefs.ErrInvalidArgument)
	}
	tail := -1
	if s := strings.TrimSpace(opts.Tail); s != "" && s != "all" {
		// docker reads a tail it cannot parse as "all".
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			tail = n
		}
	}
	ro := logfile.ReadOptions{Tail: tail, Since: opts.Since, Until: opts.Until, Follow: opts.Follow}
	if opts.Follow {
		// The follow ends once the container is not running. Registered
		// now, so an exit between here and the read is not missed.
		done := make(chan struct{})
		wctx, cancel := context.WithCancel(ctx)
		ch := ct.Wait(wctx, containertypes.WaitConditionNotRunning)
		go func() {
			defer cancel()
			select {
			case <-ch:
				close(done)
			case <-wctx.Done():
			}
		}()
		ro.Done = done
	}
	out := make(chan LogMessage, 64)
	if r.LogPath == "" {
		close(out)
		return ContainerLogsResult{Tty: r.Config.Tty, Messages: out}, nil
	}
	go func() {
		defer close(out)
		err := logfile.Read(ctx, r.LogPath, ro, func(en logfile.Entry) error {
			if en.Stream == "stdout" && !opts.Stdout || en.Stream == "stderr" && !opts.Stderr {
				return nil
			}
			select {
			case out <- LogMessage{Stream: en.Stream, Line: en.Line, Time: en.Time}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil && ctx.Err() == nil {
			select {
			case out <- LogMessage{Err: err}:
			case <-ctx.Done():
			}
		}
	}()
	return ContainerLogsResult{Tty: r.Config.Tty, Messages: out}, nil
}
