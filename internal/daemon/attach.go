package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	evtypes "github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/monitor"
)

// ContainerAttachOptions are POST /containers/{id}/attach's.
type ContainerAttachOptions struct {
	Stdin, Stdout, Stderr, Stream, Logs bool
	DetachKeys                          string
	// Streams takes the connection over and returns the client's end;
	// tty selects raw output instead of the multiplexed framing.
	Streams func(tty bool) (AttachStreams, error)
}

// ContainerAttach connects the client to the container's stdio. With Logs
// the log is replayed first. With Stream it follows the running
// container's output until it ends or the client detaches; a container
// that is not running yet is attached as its next start begins, before its
// process runs (docker run: attach, then start), so no output is missed.
func (e *Engine) ContainerAttach(ctx context.Context, ref string, opts ContainerAttachOptions) error {
	ct, c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	r := ct.Snapshot()
	switch r.State.Status {
	case container.Removing, container.Dead:
		return fmt.Errorf("container %s is marked for removal: %w", r.ID, errdefs.ErrConflict)
	case container.Restarting:
		return fmt.Errorf("You cannot attach to a restarting container, wait until it is running: %w", errdefs.ErrConflict) //nolint:staticcheck // docker's words
	}
	keys, err := monitor.ParseDetachKeys(opts.DetachKeys)
	if err != nil {
		return err
	}
	if opts.Streams == nil {
		return fmt.Errorf("attach %s: no streams: %w", r.ID, errdefs.ErrInvalidArgument)
	}
	tty := r.Config.Tty
	st, err := opts.Streams(tty)
	if err != nil {
		return err
	}
	stdout, stderr := st.Stdout, st.Stderr
	if !opts.Stdout {
		stdout = nil
	}
	if !opts.Stderr {
		stderr = nil
	}
	if tty && stderr != nil && stdout == nil {
		stdout = stderr
	}
	if opts.Logs {
		if err := e.replayLogs(ctx, ref, stdout, stderr); err != nil {
			return err
		}
	}
	if !opts.Stream {
		return nil
	}
	ao := monitor.AttachOptions{Stdout: stdout, Stderr: stderr, DetachKeys: keys}
	if tty {
		ao.Stderr = nil
	}
	if opts.Stdin && r.Config.OpenStdin {
		ao.Stdin = st.Stdin
	}
	var result <-chan error
	if h := e.procOf(r.ID); h != nil && ct.Snapshot().State.IsRunning() {
		ch := make(chan error, 1)
		go func() { ch <- h.Attach(ctx, ao) }()
		result = ch
	} else {
		result = e.attachAtNextStart(ctx, c, r.ID, ao)
	}
	select {
	case err = <-result:
	case <-ctx.Done():
		return nil
	}
	if errors.Is(err, monitor.ErrDetached) {
		rr := ct.Snapshot()
		e.emitContainer(ctx, evtypes.ActionDetach, &rr, nil)
		return nil
	}
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil // the container ended as we came
	}
	return err
}

// attachWait bounds how long a start waits for an attach to register
// with the new monitor.
const attachWait = 5 * time.Second

// attachAtNextStart attaches ao when the container's next run exists and
// before its process starts; the channel yields the attach's end.
func (e *Engine) attachAtNextStart(ctx context.Context, c *ctrs, id string, ao monitor.AttachOptions) <-chan error {
	ch := make(chan error, 1)
	c.OnNextStart(id, func(h procHandle) error {
		if ctx.Err() != nil {
			return nil // the client went before the start
		}
		ready := make(chan struct{})
		o := ao
		o.Attached = func() { close(ready) }
		go func() { ch <- h.Attach(ctx, o) }()
		select {
		case <-ready:
		case <-time.After(attachWait):
		}
		return nil
	})
	return ch
}

// replayLogs writes the container's log so far to the streams.
func (e *Engine) replayLogs(ctx context.Context, ref string, stdout, stderr io.Writer) error {
	res, err := e.ContainerLogs(ctx, ref, ContainerLogsOptions{Stdout: stdout != nil, Stderr: stderr != nil, Tail: "all"})
	if err != nil {
		if errors.Is(err, errdefs.ErrInvalidArgument) {
			return nil // no log to replay (log driver none)
		}
		return err
	}
	for m := range res.Messages {
		if m.Err != nil {
			return m.Err
		}
		w := stdout
		if m.Stream == "stderr" && !res.Tty {
			w = stderr
		}
		if w != nil {
			if _, err := w.Write(m.Line); err != nil {
				return err
			}
		}
	}
	return nil
}

// ContainerResize sets the container's terminal size.
func (e *Engine) ContainerResize(ctx context.Context, ref string, height, width uint) error {
	ct, _, err := e.lookup(ref)
	if err != nil {
		return err
	}
	h := e.procOf(ct.ID())
	if h == nil {
		return errNotRunning(ct.ID())
	}
	return h.Resize(ctx, height, width)
}
