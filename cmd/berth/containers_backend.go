package main

import (
	"context"
	"io"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/daemon"
)

// containerAPI adapts the Engine's container methods to the API's
// containerBackend: the API's option structs live in internal/api, which
// internal/daemon may not import, so the translation happens here.
type containerAPI struct{ e *daemon.Engine }

func (a containerAPI) ContainerCreate(ctx context.Context, o api.CreateOptions) (container.CreateResponse, error) {
	res, err := a.e.ContainerCreate(ctx, daemon.ContainerCreateOptions{
		Name: o.Name, Platform: o.Platform,
		Config: o.Request.Config, HostConfig: o.Request.HostConfig, NetworkingConfig: o.Request.NetworkingConfig,
	})
	if err != nil {
		return container.CreateResponse{}, err
	}
	return container.CreateResponse{ID: res.ID, Warnings: res.Warnings}, nil
}

func (a containerAPI) ContainerStart(ctx context.Context, id string) error {
	return a.e.ContainerStart(ctx, id)
}

func (a containerAPI) ContainerStop(ctx context.Context, id string, o api.StopOptions) error {
	return a.e.ContainerStop(ctx, id, daemon.ContainerStopOptions{Signal: o.Signal, Timeout: o.Timeout})
}

func (a containerAPI) ContainerRestart(ctx context.Context, id string, o api.StopOptions) error {
	return a.e.ContainerRestart(ctx, id, daemon.ContainerStopOptions{Signal: o.Signal, Timeout: o.Timeout})
}

func (a containerAPI) ContainerKill(ctx context.Context, id, signal string) error {
	return a.e.ContainerKill(ctx, id, signal)
}

func (a containerAPI) ContainerPause(ctx context.Context, id string) error {
	return a.e.ContainerPause(ctx, id)
}

func (a containerAPI) ContainerUnpause(ctx context.Context, id string) error {
	return a.e.ContainerUnpause(ctx, id)
}

func (a containerAPI) ContainerWait(ctx context.Context, id string, cond container.WaitCondition) (<-chan container.WaitResponse, error) {
	return a.e.ContainerWait(ctx, id, cond)
}

func (a containerAPI) ContainerRemove(ctx context.Context, id string, o api.RemoveOptions) error {
	return a.e.ContainerRemove(ctx, id, daemon.ContainerRemoveOptions{Force: o.Force, RemoveVolumes: o.RemoveVolumes, RemoveLink: o.RemoveLink})
}

func (a containerAPI) ContainerRename(ctx context.Context, id, newName string) error {
	return a.e.ContainerRename(ctx, id, newName)
}

func (a containerAPI) ContainerUpdate(ctx context.Context, id string, cfg container.UpdateConfig) (container.UpdateResponse, error) {
	return a.e.ContainerUpdate(ctx, id, cfg)
}

func (a containerAPI) ContainerInspect(ctx context.Context, id string, size bool) (container.InspectResponse, error) {
	return a.e.ContainerInspect(ctx, id, size)
}

func (a containerAPI) ContainerList(ctx context.Context, o api.ListOptions) ([]container.Summary, error) {
	return a.e.ContainerList(ctx, daemon.ContainerListOptions{All: o.All, Limit: o.Limit, Size: o.Size, Filters: daemon.Filters(o.Filters)})
}

func (a containerAPI) ContainerChanges(ctx context.Context, id string) ([]container.FilesystemChange, error) {
	return a.e.ContainerChanges(ctx, id)
}

func (a containerAPI) ContainerExport(ctx context.Context, id string, out io.Writer) error {
	return a.e.ContainerExport(ctx, id, out)
}

func (a containerAPI) ContainerStatPath(ctx context.Context, id, path string) (container.PathStat, error) {
	return a.e.ContainerStatPath(ctx, id, path)
}

func (a containerAPI) ContainerArchive(ctx context.Context, id, path string) (io.ReadCloser, container.PathStat, error) {
	return a.e.ContainerArchive(ctx, id, path)
}

func (a containerAPI) ContainerExtract(ctx context.Context, id, path string, o api.ExtractOptions, tar io.Reader) error {
	return a.e.ContainerExtract(ctx, id, path, daemon.ContainerExtractOptions{NoOverwriteDirNonDir: o.NoOverwriteDirNonDir, CopyUIDGID: o.CopyUIDGID}, tar)
}

func (a containerAPI) ContainerCommit(ctx context.Context, o api.CommitOptions) (container.CommitResponse, error) {
	res, err := a.e.ContainerCommit(ctx, daemon.ContainerCommitOptions{
		Container: o.Container, Reference: o.Reference, Comment: o.Comment, Author: o.Author,
		Pause: o.Pause, Changes: o.Changes, Config: o.Config,
	})
	if err != nil {
		return container.CommitResponse{}, err
	}
	return container.CommitResponse{ID: res.ID.String()}, nil
}

func (a containerAPI) ContainersPrune(ctx context.Context, filters map[string][]string) (container.PruneReport, error) {
	return a.e.ContainersPrune(ctx, daemon.Filters(filters))
}

// The monitor engineer's verbs: logs, attach, resize, stats, top, exec.

func streamsFn(f func(tty bool) (api.Streams, error)) func(tty bool) (daemon.AttachStreams, error) {
	if f == nil {
		return nil
	}
	return func(tty bool) (daemon.AttachStreams, error) {
		st, err := f(tty)
		return daemon.AttachStreams{Stdin: st.Stdin, Stdout: st.Stdout, Stderr: st.Stderr, Close: st.Close}, err
	}
}

func (a containerAPI) ContainerTop(ctx context.Context, id, psArgs string) (container.TopResponse, error) {
	return a.e.ContainerTop(ctx, id, psArgs)
}

func (a containerAPI) ContainerLogs(ctx context.Context, id string, o api.LogsOptions) (api.LogsResult, error) {
	res, err := a.e.ContainerLogs(ctx, id, daemon.ContainerLogsOptions{
		Follow: o.Follow, Stdout: o.Stdout, Stderr: o.Stderr, Timestamps: o.Timestamps, Details: o.Details,
		Since: o.Since, Until: o.Until, Tail: o.Tail,
	})
	if err != nil {
		return api.LogsResult{}, err
	}
	out := make(chan api.LogMessage)
	go func() {
		defer close(out)
		for m := range res.Messages {
			select {
			case out <- api.LogMessage{Stream: m.Stream, Line: m.Line, Time: m.Time, Attrs: m.Attrs, Err: m.Err}:
			case <-ctx.Done():
				// Drain so the producer, which also watches ctx, is not
				// left blocked.
				for range res.Messages {
				}
				return
			}
		}
	}()
	return api.LogsResult{Tty: res.Tty, Messages: out}, nil
}

func (a containerAPI) ContainerAttach(ctx context.Context, id string, o api.AttachOptions) error {
	return a.e.ContainerAttach(ctx, id, daemon.ContainerAttachOptions{
		Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, Stream: o.Stream, Logs: o.Logs,
		DetachKeys: o.DetachKeys, Streams: streamsFn(o.Streams),
	})
}

func (a containerAPI) ContainerResize(ctx context.Context, id string, height, width uint) error {
	return a.e.ContainerResize(ctx, id, height, width)
}

func (a containerAPI) ContainerStats(ctx context.Context, id string, o api.StatsOptions) (<-chan container.StatsResponse, error) {
	return a.e.ContainerStats(ctx, id, daemon.ContainerStatsOptions{Stream: o.Stream, OneShot: o.OneShot})
}

// execAPI adapts the Engine's exec methods to the API's execBackend.
type execAPI struct{ e *daemon.Engine }

func (a execAPI) ExecCreate(ctx context.Context, containerID string, req container.ExecCreateRequest) (container.ExecCreateResponse, error) {
	return a.e.ExecCreate(ctx, containerID, req)
}

func (a execAPI) ExecStart(ctx context.Context, id string, o api.ExecStartOptions) error {
	return a.e.ExecStart(ctx, id, daemon.ExecStartOptions{Detach: o.Detach, Tty: o.Tty, ConsoleSize: o.ConsoleSize, Streams: streamsFn(o.Streams)})
}

func (a execAPI) ExecInspect(ctx context.Context, id string) (container.ExecInspectResponse, error) {
	return a.e.ExecInspect(ctx, id)
}

func (a execAPI) ExecResize(ctx context.Context, id string, height, width uint) error {
	return a.e.ExecResize(ctx, id, height, width)
}
