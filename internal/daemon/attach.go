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
	// A container that is not running is attached as its next run begins.
	// That hook goes in before the streams are handed over: the client
	// takes the hijack's answer as "attached" and may start the container
	// at once (docker run does), and a run that began before the hook was
	// there would be over, its output gone, before this attach could see it.
	var running procHandle
	var next *nextAttach
	if opts.Stream {
		if h := e.procOf(r.ID); h != nil && ct.Snapshot().State.IsRunning() {
			running = h
		} else {
			next = e.attachAtNextStart(ctx, c, r.ID)
		}
	}
	st, err := opts.Streams(tty)
	if err != nil {
		next.abandon()
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
			next.abandon()
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
	if running != nil {
		ch := make(chan error, 1)
		go func() { ch <- running.Attach(ctx, ao) }()
		result = ch
	} else {
		result = next.attach(ao)
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
// with the new monitor, and for the client's streams to be ready.
const attachWait = 5 * time.Second

// nextAttach is an attach waiting for the container's next run: the hook
// is in place before the attach has its streams (see ContainerAttach).
type nextAttach struct {
	opts   chan monitor.AttachOptions // gets the attach's options, once
	gone   chan struct{}              // closed: the attach was abandoned
	result chan error
}

// attachAtNextStart registers an attach with the container's next run,
// made when that run exists and before its process starts. The attach's
// streams follow with attach (or abandon).
func (e *Engine) attachAtNextStart(ctx context.Context, c *ctrs, id string) *nextAttach {
	n := &nextAttach{opts: make(chan monitor.AttachOptions, 1), gone: make(chan struct{}), result: make(chan error, 1)}
	c.OnNextStart(id, func(h procHandle) error {
		if ctx.Err() != nil {
			return nil // the client went before the start
		}
		var o monitor.AttachOptions
		select {
		case o = <-n.opts:
		case <-n.gone:
			return nil
		case <-time.After(attachWait):
			return nil
		}
		ready := make(chan struct{})
		o.Attached = func() { close(ready) }
		go func() { n.result <- h.Attach(ctx, o) }()
		select {
		case <-ready:
		case <-time.After(attachWait):
		}
		return nil
	})
	return n
}

// attach gives the waiting attach its options; the channel yields the
// attach's end.
func (n *nextAttach) attach(o monitor.AttachOptions) <-chan error {
	n.opts <- o
	return n.result
}

// abandon withdraws an attach that will not happen; nil does nothing.
func (n *nextAttach) abandon() {
	if n != nil {
		close(n.gone)
	}
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
