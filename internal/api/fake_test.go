package api

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/daemon"
	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/events"
)

// fakeBackend implements every backend interface in memory. It records
// calls so tests can check that a refused request changed nothing; the
// error to return and the data to serve are set per test.
type fakeBackend struct {
	mu    sync.Mutex
	calls []string
	err   error // returned by every call when set

	images   map[string]imagetypes.InspectResponse
	progress []distribution.Progress // sent by Pull/Push before returning
	pullErr  error                   // returned by Pull after progress
	bus      *events.Bus

	logs     []LogMessage
	tty      bool
	waitRes  chan container.WaitResponse // when nil, waits end with waitCode
	waitCode int64
	execCode int // the exit code ExecInspect reports
	// attachIn receives what the client wrote to stdin during attach.
	attachIn chan string
	// attachHold makes attach read stdin until it ends, then close
	// attachDone: a session that lasts until something ends it.
	attachHold bool
	attachDone chan struct{}
}

func newFake() *fakeBackend {
	return &fakeBackend{images: map[string]imagetypes.InspectResponse{}, bus: events.New(0)}
}

func (f *fakeBackend) record(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	return f.err
}

// setErr makes every later call fail with err (safe while serving).
func (f *fakeBackend) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeBackend) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// imageBackend

func (f *fakeBackend) ImageList(ctx context.Context, opts daemon.ImageListOptions) (daemon.ImageListResult, error) {
	if err := f.record(fmt.Sprintf("ImageList %v", opts.Filters)); err != nil {
		return daemon.ImageListResult{}, err
	}
	var out daemon.ImageListResult
	for _, im := range f.images {
		out.Images = append(out.Images, imagetypes.Summary{ID: im.ID, RepoTags: im.RepoTags})
	}
	return out, nil
}

func (f *fakeBackend) ImageInspectWith(ctx context.Context, ref string, opts daemon.ImageInspectOptions) (daemon.ImageInspectResult, error) {
	call := "ImageInspect " + ref
	if opts.Platform != "" {
		call += " platform=" + opts.Platform
	}
	if err := f.record(call); err != nil {
		return daemon.ImageInspectResult{}, err
	}
	im, ok := f.images[ref]
	if !ok {
		return daemon.ImageInspectResult{}, fmt.Errorf("No such image: %s: %w", ref, errdefs.ErrNotFound)
	}
	return daemon.ImageInspectResult{InspectResponse: im}, nil
}

func (f *fakeBackend) ImageHistory(ctx context.Context, ref string) ([]imagetypes.HistoryResponseItem, error) {
	return nil, f.record("ImageHistory " + ref)
}

func (f *fakeBackend) ImageTag(ctx context.Context, opts daemon.ImageTagOptions) error {
	return f.record("ImageTag " + opts.Source + " " + opts.Target)
}

func (f *fakeBackend) ImageRemove(ctx context.Context, ref string, opts daemon.ImageRemoveOptions) (daemon.ImageRemoveResult, error) {
	if err := f.record(fmt.Sprintf("ImageRemove %s force=%v", ref, opts.Force)); err != nil {
		return daemon.ImageRemoveResult{}, err
	}
	return daemon.ImageRemoveResult{Items: []imagetypes.DeleteResponse{{Untagged: ref}}}, nil
}

func (f *fakeBackend) Pull(ctx context.Context, ref string, opts daemon.PullOptions) (daemon.PullResult, error) {
	if err := f.record("Pull " + ref); err != nil {
		return daemon.PullResult{}, err
	}
	for _, p := range f.progress {
		opts.Progress(p)
	}
	if f.pullErr != nil {
		return daemon.PullResult{}, f.pullErr
	}
	return daemon.PullResult{Name: ref, Digest: digest.FromString("m"), Status: "Downloaded newer image for " + ref}, nil
}

func (f *fakeBackend) Push(ctx context.Context, ref string, opts daemon.PushOptions) (daemon.PushResult, error) {
	if err := f.record("Push " + ref); err != nil {
		return daemon.PushResult{}, err
	}
	for _, p := range f.progress {
		opts.Progress(p)
	}
	return daemon.PushResult{Name: ref, Tag: "1", Digest: digest.FromString("m"), Size: 527}, nil
}

func (f *fakeBackend) ImageSave(ctx context.Context, opts daemon.ImageSaveOptions) error {
	call := fmt.Sprintf("ImageSave %v", opts.Refs)
	if opts.Platform != "" {
		call += " platform=" + opts.Platform
	}
	if err := f.record(call); err != nil {
		return err
	}
	_, err := io.WriteString(opts.Output, "TAR")
	return err
}

func (f *fakeBackend) ImageLoad(ctx context.Context, opts daemon.ImageLoadOptions) (daemon.ImageLoadResult, error) {
	b, _ := io.ReadAll(opts.Input)
	if err := f.record("ImageLoad " + string(b)); err != nil {
		return daemon.ImageLoadResult{}, err
	}
	im := daemon.LoadedImage{ID: digest.FromString("c"), RepoTags: []string{"busybox:latest"}}
	if string(b) == "over another" {
		im.Moved = map[string]digest.Digest{"busybox:latest": digest.FromString("old")}
	}
	return daemon.ImageLoadResult{Images: []daemon.LoadedImage{im}}, nil
}

func (f *fakeBackend) ImageImport(ctx context.Context, opts daemon.ImageImportOptions) (daemon.ImageImportResult, error) {
	return daemon.ImageImportResult{ID: digest.FromString("i")}, f.record("ImageImport " + opts.Reference)
}

func (f *fakeBackend) ImagePrune(ctx context.Context, opts daemon.ImagePruneOptions) (daemon.ImagePruneResult, error) {
	return daemon.ImagePruneResult{}, f.record(fmt.Sprintf("ImagePrune %v", opts.Filters))
}

func (f *fakeBackend) Login(ctx context.Context, opts daemon.LoginOptions) (daemon.LoginResult, error) {
	if err := f.record("Login " + opts.Registry + " " + opts.Auth.Username); err != nil {
		return daemon.LoginResult{}, err
	}
	return daemon.LoginResult{Status: "Login Succeeded"}, nil
}

// systemBackend

func (f *fakeBackend) Info(ctx context.Context) (system.Info, error) {
	return system.Info{ID: "fake", OSType: "linux"}, f.record("Info")
}

func (f *fakeBackend) Version(ctx context.Context) (system.VersionResponse, error) {
	return system.VersionResponse{Version: "test", Components: []system.ComponentVersion{{Name: "Engine"}}}, f.record("Version")
}

func (f *fakeBackend) DiskUsage(ctx context.Context, opts daemon.DiskUsageOptions) (system.DiskUsage, error) {
	return system.DiskUsage{ImageUsage: &imagetypes.DiskUsage{TotalSize: 42, Items: []imagetypes.Summary{{ID: "sha256:x", Size: 42}}}}, f.record("DiskUsage")
}

func (f *fakeBackend) Events() *events.Bus { return f.bus }

// containerBackend

func (f *fakeBackend) ContainerCreate(ctx context.Context, opts CreateOptions) (container.CreateResponse, error) {
	if err := f.record("ContainerCreate " + opts.Name + " " + opts.Request.Image); err != nil {
		return container.CreateResponse{}, err
	}
	return container.CreateResponse{ID: "c0ffee"}, nil
}
func (f *fakeBackend) ContainerStart(ctx context.Context, id string) error {
	return f.record("ContainerStart " + id)
}
func (f *fakeBackend) ContainerStop(ctx context.Context, id string, opts StopOptions) error {
	t := "nil"
	if opts.Timeout != nil {
		t = fmt.Sprint(*opts.Timeout)
	}
	return f.record("ContainerStop " + id + " " + opts.Signal + " " + t)
}
func (f *fakeBackend) ContainerRestart(ctx context.Context, id string, opts StopOptions) error {
	return f.record("ContainerRestart " + id)
}
func (f *fakeBackend) ContainerKill(ctx context.Context, id, signal string) error {
	return f.record("ContainerKill " + id + " " + signal)
}
func (f *fakeBackend) ContainerPause(ctx context.Context, id string) error {
	return f.record("ContainerPause " + id)
}
func (f *fakeBackend) ContainerUnpause(ctx context.Context, id string) error {
	return f.record("ContainerUnpause " + id)
}
func (f *fakeBackend) ContainerWait(ctx context.Context, id string, cond container.WaitCondition) (<-chan container.WaitResponse, error) {
	if err := f.record("ContainerWait " + id + " " + string(cond)); err != nil {
		return nil, err
	}
	if f.waitRes == nil {
		// Every wait ends at once with the exit code waitCode.
		ch := make(chan container.WaitResponse, 1)
		ch <- container.WaitResponse{StatusCode: f.waitCode}
		return ch, nil
	}
	return f.waitRes, nil
}
func (f *fakeBackend) ContainerRemove(ctx context.Context, id string, opts RemoveOptions) error {
	return f.record(fmt.Sprintf("ContainerRemove %s force=%v v=%v", id, opts.Force, opts.RemoveVolumes))
}
func (f *fakeBackend) ContainerRename(ctx context.Context, id, newName string) error {
	return f.record("ContainerRename " + id + " " + newName)
}
func (f *fakeBackend) ContainerUpdate(ctx context.Context, id string, cfg container.UpdateConfig) (container.UpdateResponse, error) {
	return container.UpdateResponse{}, f.record(fmt.Sprintf("ContainerUpdate %s mem=%d", id, cfg.Memory))
}
func (f *fakeBackend) ContainerTop(ctx context.Context, id, psArgs string) (container.TopResponse, error) {
	return container.TopResponse{Titles: []string{"PID"}, Processes: [][]string{{"1"}}}, f.record("ContainerTop " + id + " " + psArgs)
}
func (f *fakeBackend) ContainerInspect(ctx context.Context, id string, size bool) (container.InspectResponse, error) {
	if err := f.record("ContainerInspect " + id); err != nil {
		return container.InspectResponse{}, err
	}
	return container.InspectResponse{ID: id, Name: "/web", Config: &container.Config{Tty: f.tty, Image: "busybox", OpenStdin: true},
		State: &container.State{Status: container.StateRunning, Running: true}}, nil
}
func (f *fakeBackend) ContainerList(ctx context.Context, opts ListOptions) ([]container.Summary, error) {
	return nil, f.record(fmt.Sprintf("ContainerList all=%v limit=%d filters=%v", opts.All, opts.Limit, opts.Filters))
}
func (f *fakeBackend) ContainerLogs(ctx context.Context, id string, opts LogsOptions) (LogsResult, error) {
	if err := f.record("ContainerLogs " + id + " tail=" + opts.Tail); err != nil {
		return LogsResult{}, err
	}
	ch := make(chan LogMessage, len(f.logs))
	for _, m := range f.logs {
		ch <- m
	}
	close(ch)
	return LogsResult{Tty: f.tty, Messages: ch}, nil
}
func (f *fakeBackend) ContainerAttach(ctx context.Context, id string, opts AttachOptions) error {
	if err := f.record("ContainerAttach " + id); err != nil {
		return err
	}
	st, err := opts.Streams(f.tty)
	if err != nil {
		return err
	}
	if f.attachHold {
		_, _ = io.Copy(io.Discard, st.Stdin)
		close(f.attachDone)
		return nil
	}
	// Echo one line of stdin back on stdout, and say hello on stderr.
	buf := make([]byte, 64)
	n := copy(buf, "no stdin\n")
	if st.Stdin != nil {
		n, _ = st.Stdin.Read(buf)
	}
	if f.attachIn != nil {
		f.attachIn <- string(buf[:n])
	}
	_, _ = st.Stdout.Write(buf[:n])
	_, _ = st.Stderr.Write([]byte("err\n"))
	return nil
}
func (f *fakeBackend) ContainerResize(ctx context.Context, id string, h, w uint) error {
	return f.record(fmt.Sprintf("ContainerResize %s %dx%d", id, h, w))
}
func (f *fakeBackend) ContainerStats(ctx context.Context, id string, opts StatsOptions) (<-chan container.StatsResponse, error) {
	if err := f.record(fmt.Sprintf("ContainerStats %s stream=%v", id, opts.Stream)); err != nil {
		return nil, err
	}
	ch := make(chan container.StatsResponse, 3)
	for i := range 3 {
		ch <- container.StatsResponse{ID: id, Name: "/web", Read: time.Unix(int64(i), 0)}
	}
	close(ch)
	return ch, nil
}
func (f *fakeBackend) ContainerChanges(ctx context.Context, id string) ([]container.FilesystemChange, error) {
	return []container.FilesystemChange{{Kind: container.ChangeAdd, Path: "/new"}}, f.record("ContainerChanges " + id)
}
func (f *fakeBackend) ContainerExport(ctx context.Context, id string, out io.Writer) error {
	if err := f.record("ContainerExport " + id); err != nil {
		return err
	}
	_, err := io.WriteString(out, "TAR")
	return err
}
func (f *fakeBackend) ContainerStatPath(ctx context.Context, id, path string) (container.PathStat, error) {
	st := container.PathStat{Name: "f", Size: 3, Mode: 0o644}
	if strings.HasSuffix(path, "dir") {
		st = container.PathStat{Name: "dir", Mode: os.ModeDir | 0o755}
	}
	return st, f.record("ContainerStatPath " + id + " " + path)
}
func (f *fakeBackend) ContainerArchive(ctx context.Context, id, path string) (io.ReadCloser, container.PathStat, error) {
	if err := f.record("ContainerArchive " + id + " " + path); err != nil {
		return nil, container.PathStat{}, err
	}
	return io.NopCloser(stringsReader("TAR")), container.PathStat{Name: "f", Size: 3}, nil
}
func (f *fakeBackend) ContainerExtract(ctx context.Context, id, path string, opts ExtractOptions, tar io.Reader) error {
	b, _ := io.ReadAll(tar)
	return f.record("ContainerExtract " + id + " " + path + " " + string(b))
}
func (f *fakeBackend) ContainerCommit(ctx context.Context, opts CommitOptions) (container.CommitResponse, error) {
	return container.CommitResponse{ID: "sha256:new"}, f.record(fmt.Sprintf("ContainerCommit %s %s pause=%v", opts.Container, opts.Reference, opts.Pause))
}
func (f *fakeBackend) ContainersPrune(ctx context.Context, filters map[string][]string) (container.PruneReport, error) {
	return container.PruneReport{}, f.record("ContainersPrune")
}

// execBackend

func (f *fakeBackend) ExecCreate(ctx context.Context, containerID string, req container.ExecCreateRequest) (container.ExecCreateResponse, error) {
	return container.ExecCreateResponse{ID: "e1"}, f.record(fmt.Sprintf("ExecCreate %s %v", containerID, req.Cmd))
}
func (f *fakeBackend) ExecStart(ctx context.Context, id string, opts ExecStartOptions) error {
	if err := f.record(fmt.Sprintf("ExecStart %s detach=%v", id, opts.Detach)); err != nil {
		return err
	}
	if opts.Detach {
		return nil
	}
	st, err := opts.Streams(opts.Tty)
	if err != nil {
		return err
	}
	_, _ = st.Stdout.Write([]byte("exec out\n"))
	return nil
}
func (f *fakeBackend) ExecInspect(ctx context.Context, id string) (container.ExecInspectResponse, error) {
	code := f.execCode
	return container.ExecInspectResponse{ID: id, ExitCode: &code, Running: false}, f.record("ExecInspect " + id)
}
func (f *fakeBackend) ExecResize(ctx context.Context, id string, h, w uint) error {
	return f.record(fmt.Sprintf("ExecResize %s %dx%d", id, h, w))
}

var errNoSuch = fmt.Errorf("No such container: nope: %w", errdefs.ErrNotFound)
