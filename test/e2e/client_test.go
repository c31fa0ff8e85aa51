package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	registrytypes "github.com/moby/moby/api/types/registry"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/internal/testutil/registry"
)

// TestClientSession drives the same image and system calls through
// internal/client, checking that error classes survive HTTP.
func TestClientSession(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	c := d.Client(t)
	ctx := context.Background()
	start := time.Now()

	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := c.ServerVersion(ctx)
	if err != nil || v.APIVersion != api.MaxAPIVersion || c.APIVersion() != api.MaxAPIVersion {
		t.Fatalf("version %+v (client speaks %s): %v", v, c.APIVersion(), err)
	}

	f, err := os.Open(testutil.Images(t).DockerArchive)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := c.ImageLoad(ctx, f)
	f.Close()
	if err != nil || len(lines) != 1 || lines[0] != "Loaded image: busybox:latest" {
		t.Fatalf("load = %q, %v", lines, err)
	}
	list, err := c.ImageList(ctx, false, map[string][]string{"reference": {"busybox"}})
	if err != nil || len(list) != 1 {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if _, err := c.ImageInspect(ctx, "nope:1"); !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "No such image: nope:1") {
		t.Errorf("inspect nope = %v, want not found", err)
	}
	if _, err := c.ImageList(ctx, false, map[string][]string{"bogus": {"x"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("list with a bad filter = %v, want invalid argument", err)
	}
	if err := c.ImageTag(ctx, "busybox", "client/copy:2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImageRemove(ctx, list[0].ID, false); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("remove by id with two repositories = %v, want conflict", err)
	}
	del, err := c.ImageRemove(ctx, "client/copy:2", false)
	if err != nil || len(del) != 1 || del[0].Untagged != "client/copy:2" {
		t.Errorf("remove tag = %+v, %v", del, err)
	}
	du, err := c.DiskUsage(ctx)
	if err != nil || du.ImageUsage == nil || du.ImageUsage.TotalCount != 1 || du.ImageUsage.TotalSize <= 0 {
		t.Errorf("disk usage = %+v, %v", du.ImageUsage, err)
	}
	info, err := c.Info(ctx)
	if err != nil || info.Images != 1 || info.DockerRootDir != d.Root {
		t.Errorf("info images=%d root=%s: %v", info.Images, info.DockerRootDir, err)
	}

	hist, err := c.ImageHistory(ctx, "busybox")
	if err != nil || len(hist) == 0 || hist[0].ID != list[0].ID {
		t.Errorf("history = %+v, %v", hist, err)
	}
	rc, err := c.ImageSave(ctx, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	saved, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Contains(saved, []byte("manifest.json")) {
		t.Errorf("save: %d bytes, %v", len(saved), err)
	}
	if _, err := c.ImageSave(ctx, "nope:1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("save of a missing image = %v, want not found", err)
	}

	// Push and pull through a registry, with progress.
	reg := registry.Start(t, registry.Options{})
	ref := reg.Ref("client/busybox:1")
	if err := c.ImageTag(ctx, "busybox", ref); err != nil {
		t.Fatal(err)
	}
	var statuses []string
	res, err := c.ImagePush(ctx, ref, nil, func(m jsonstream.Message) { statuses = append(statuses, m.Status) })
	if err != nil || res.Tag != "1" || !strings.HasPrefix(res.Digest, "sha256:") || res.Size <= 0 {
		t.Fatalf("push = %+v, %v", res, err)
	}
	if !strings.Contains(strings.Join(statuses, "\n"), "Pushed") {
		t.Errorf("push progress: %q", statuses)
	}
	if err := c.ImagePull(ctx, reg.Ref("client/missing:1"), client.PullOptions{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("pull of a missing image = %v, want not found", err)
	}
	if _, err := c.ImageRemove(ctx, ref, false); err != nil {
		t.Fatal(err)
	}
	statuses = nil
	if err := c.ImagePull(ctx, ref, client.PullOptions{Progress: func(m jsonstream.Message) { statuses = append(statuses, m.Status) }}); err != nil {
		t.Fatal(err)
	}
	if last := statuses[len(statuses)-1]; last != "Status: Downloaded newer image for "+ref && last != "Status: Image is up to date for "+ref {
		t.Errorf("pull ended with %q", last)
	}

	// Events: the replay between start and now, filtered to tags.
	ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msgs, errc := c.Events(ectx, client.EventsOptions{Since: start, Until: time.Now(), Filters: map[string][]string{"event": {"tag"}}})
	var got []events.Message
	for m := range msgs {
		got = append(got, m)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Actor.Attributes["name"] != "client/copy:2" || got[0].TimeNano == 0 {
		t.Errorf("tag events = %+v", got)
	}
}

// TestClientNoDaemon says what is wrong when nothing listens.
func TestClientNoDaemon(t *testing.T) {
	c, err := client.New("unix://" + t.TempDir() + "/none.sock")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Info(context.Background())
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "Is the daemon running?") {
		t.Errorf("Info without a daemon = %v", err)
	}
}

// TestClientLogin checks a credential through the daemon: right is "Login
// Succeeded", wrong is ErrUnauthorized.
func TestClientLogin(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	reg := registry.Start(t, registry.Options{Auth: registry.Basic})
	c := d.Client(t)
	res, err := c.Login(context.Background(), registrytypes.AuthConfig{Username: reg.User, Password: reg.Password, ServerAddress: reg.Host})
	if err != nil || res.Status != "Login Succeeded" {
		t.Errorf("login = %+v, %v", res, err)
	}
	_, err = c.Login(context.Background(), registrytypes.AuthConfig{Username: reg.User, Password: "wrong", ServerAddress: reg.Host})
	if !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Errorf("login with a wrong password = %v, want unauthorized", err)
	}
}

// TestClientContainers drives the container lifecycle through the
// client against the real engine: create, start, inspect, list, wait
// registered before a kill, remove, and the error classes on the way.
func TestClientContainers(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	c := d.Client(t)
	ctx := context.Background()
	req := containertypes.CreateRequest{Config: &containertypes.Config{Image: "busybox", Cmd: []string{"sleep", "60"}}}
	created, err := c.ContainerCreate(ctx, "cl1", req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.ContainerRemove(context.Background(), created.ID, client.RemoveOptions{Force: true}) })
	if _, err := c.ContainerCreate(ctx, "cl1", req); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("create with a name in use = %v, want conflict", err)
	}
	if _, err := c.ContainerCreate(ctx, "", containertypes.CreateRequest{Config: &containertypes.Config{Image: "nope:1"}}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("create from a missing image = %v, want not found", err)
	}
	if err := c.ContainerStart(ctx, "cl1"); err != nil {
		t.Fatal(err)
	}
	if err := c.ContainerStart(ctx, "cl1"); err != nil && !errors.Is(err, errdefs.ErrNotModified) {
		t.Errorf("second start = %v, want nil or not modified", err)
	}
	ins, err := c.ContainerInspect(ctx, "cl1", false)
	if err != nil || ins.State == nil || !ins.State.Running || ins.State.Pid == 0 {
		t.Fatalf("inspect = %+v, %v", ins.State, err)
	}
	list, err := c.ContainerList(ctx, client.ListOptions{Filters: map[string][]string{"name": {"cl1"}}})
	if err != nil || len(list) != 1 || list[0].ID != created.ID {
		t.Errorf("list = %+v, %v", list, err)
	}
	resc, errc := c.ContainerWait(ctx, "cl1", containertypes.WaitConditionNotRunning)
	if err := c.ContainerKill(ctx, "cl1", "KILL"); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-resc:
		if res.StatusCode != 137 {
			t.Errorf("wait = %+v, want 137", res)
		}
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not return after kill")
	}
	if err := c.ContainerRemove(ctx, "cl1", client.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ContainerInspect(ctx, "cl1", false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("inspect after remove = %v, want not found", err)
	}
}
