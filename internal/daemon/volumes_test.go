package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	containertypes "github.com/moby/moby/api/types/container"
	mounttypes "github.com/moby/moby/api/types/mount"
	volumetypes "github.com/moby/moby/api/types/volume"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/events"
	"github.com/berth-dev/berth/internal/testutil"
)

// volEngine is ctrEngine whose cleanup removes the containers, then every
// volume (a volume with pins or mount options holds mounts).
func volEngine(t *testing.T) *Engine {
	e := ctrEngine(t)
	t.Cleanup(func() {
		ctx := context.Background()
		c, err := e.ctrs()
		if err != nil {
			return
		}
		for _, ct := range c.store.List() {
			if err := e.ContainerRemove(ctx, ct.ID(), ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				t.Errorf("cleanup: rm %s: %v", ct.ID(), err)
			}
		}
		vols, _ := c.vols.List()
		for _, v := range vols {
			if err := c.vols.Remove(v.Name); err != nil {
				t.Errorf("cleanup: volume rm %s: %v", v.Name, err)
			}
		}
	})
	return e
}

func volNames(t *testing.T, e *Engine, f Filters) string {
	t.Helper()
	res, err := e.VolumeList(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range res.Volumes {
		names = append(names, v.Name)
	}
	return strings.Join(names, ",")
}

func TestVolumeLifecycle(t *testing.T) {
	testutil.RequireRoot(t)
	e := volEngine(t)
	ctx := context.Background()
	_, sub := e.Events().Subscribe(time.Time{}, nil)
	defer sub.Close()

	v, err := e.VolumeCreate(ctx, volumetypes.CreateRequest{Name: "data", Labels: map[string]string{"app": "web"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Driver != "local" || v.Scope != "local" || v.Labels["app"] != "web" || v.CreatedAt == "" || !strings.HasSuffix(v.Mountpoint, "/volumes/data/_data") || v.UsageData != nil {
		t.Fatalf("created %+v", v)
	}
	if again, err := e.VolumeCreate(ctx, volumetypes.CreateRequest{Name: "data", Driver: "local"}); err != nil || again.CreatedAt != v.CreatedAt {
		t.Fatalf("second create: %+v %v", again, err)
	}
	anon, err := e.VolumeCreate(ctx, volumetypes.CreateRequest{})
	if err != nil || len(anon.Name) != 64 {
		t.Fatalf("anonymous: %+v %v", anon, err)
	}
	if _, err := e.VolumeCreate(ctx, volumetypes.CreateRequest{Name: "other", Labels: map[string]string{"app": "db"}}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		req  volumetypes.CreateRequest
		want error
	}{
		{"unknown driver", volumetypes.CreateRequest{Name: "x1", Driver: "nfs-plugin"}, errdefs.ErrNotImplemented},
		{"cluster volume", volumetypes.CreateRequest{Name: "x1", ClusterVolumeSpec: &volumetypes.ClusterVolumeSpec{}}, errdefs.ErrNotImplemented},
		{"bad name", volumetypes.CreateRequest{Name: "a/b"}, errdefs.ErrInvalidArgument},
		{"bad option", volumetypes.CreateRequest{Name: "x1", DriverOpts: map[string]string{"colour": "red"}}, errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.VolumeCreate(ctx, tc.req); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := e.VolumeInspect(ctx, "x1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("a refused create left a volume: %v", err)
	}

	id := create(t, e, "user", containertypes.Config{Cmd: []string{"sh", "-c", "echo hi > /data/f"}}, &containertypes.HostConfig{Binds: []string{"data:/data"}})
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, e, id, containertypes.WaitConditionNotRunning); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if b, err := os.ReadFile(filepath.Join(v.Mountpoint, "f")); err != nil || string(b) != "hi\n" {
		t.Fatalf("volume holds %q %v", b, err)
	}

	for _, tc := range []struct {
		name string
		f    Filters
		want string
	}{
		{"all", nil, anon.Name + ",data,other"},
		{"name regexp", Filters{"name": {"^da"}}, "data"},
		{"label", Filters{"label": {"app=db"}}, "other"},
		{"label key", Filters{"label": {"app"}}, "data,other"},
		{"dangling", Filters{"dangling": {"true"}}, anon.Name + ",other"},
		{"not dangling", Filters{"dangling": {"false"}}, "data"},
		{"driver", Filters{"driver": {"local"}}, anon.Name + ",data,other"},
		{"other driver", Filters{"driver": {"nfs"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := strings.Split(tc.want, ",")
			slices.Sort(want) // the anonymous volume's random name sorts anywhere
			if got := volNames(t, e, tc.f); got != strings.Join(want, ",") {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	for _, f := range []Filters{{"colour": {"x"}}, {"dangling": {"maybe"}}} {
		if _, err := e.VolumeList(ctx, f); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("filter %v: %v", f, err)
		}
	}

	// In use by a stopped container: docker's conflict, with the ID.
	err = e.VolumeRemove(ctx, "data", false)
	if !errors.Is(err, errdefs.ErrConflict) || err.Error() != "remove data: volume is in use - ["+id+"]: conflict" {
		t.Fatalf("rm in use: %v", err)
	}
	if err := e.VolumeRemove(ctx, "data", true); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("rm -f in use: %v", err)
	}
	if err := e.VolumeRemove(ctx, "nosuch", false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatal(err)
	}
	if err := e.VolumeRemove(ctx, "nosuch", true); err != nil {
		t.Fatalf("rm -f of a missing volume: %v", err)
	}

	du, err := e.DiskUsage(ctx, DiskUsageOptions{Volumes: true})
	if err != nil {
		t.Fatal(err)
	}
	if du.VolumeUsage == nil || du.VolumeUsage.TotalCount != 3 || du.VolumeUsage.ActiveCount != 1 || du.VolumeUsage.TotalSize != 3 {
		t.Fatalf("df: %+v", du.VolumeUsage)
	}
	for _, it := range du.VolumeUsage.Items {
		if it.Name == "data" && (it.UsageData == nil || it.UsageData.RefCount != 1 || it.UsageData.Size != 3) {
			t.Fatalf("df item %+v %+v", it, it.UsageData)
		}
	}

	// Prune: only anonymous volumes by default, every unused one with
	// all=true; one in use stays either way.
	rep, err := e.VolumesPrune(ctx, nil)
	if err != nil || strings.Join(rep.VolumesDeleted, ",") != anon.Name {
		t.Fatalf("prune: %+v %v", rep, err)
	}
	if _, err := e.VolumesPrune(ctx, Filters{"until": {"1h"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("prune until: %v", err)
	}
	rep, err = e.VolumesPrune(ctx, Filters{"all": {"true"}, "label!": {"app=web"}})
	if err != nil || strings.Join(rep.VolumesDeleted, ",") != "other" {
		t.Fatalf("prune all: %+v %v", rep, err)
	}
	if err := e.ContainerRemove(ctx, id, ContainerRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.VolumeRemove(ctx, "data", false); err != nil {
		t.Fatal(err)
	}
	if got := volNames(t, e, nil); got != "" {
		t.Fatalf("left %q", got)
	}

	var actions []string
	timeout := time.After(5 * time.Second)
collect:
	for {
		select {
		case m, ok := <-sub.C:
			if !ok {
				break collect
			}
			if m.Type == "volume" {
				actions = append(actions, string(m.Action)+" "+m.Actor.ID)
			}
			if m.Type == "volume" && m.Action == "destroy" && m.Actor.ID == "data" {
				break collect
			}
		case <-timeout:
			break collect
		}
	}
	want := []string{"create data", "create " + anon.Name, "create other", "destroy " + anon.Name, "prune ", "destroy other", "prune ", "destroy data"}
	if strings.Join(actions, "|") != strings.Join(want, "|") {
		t.Fatalf("events %q, want %q", actions, want)
	}
}

func TestVolumeSubpath(t *testing.T) {
	testutil.RequireRoot(t)
	e := volEngine(t)
	ctx := context.Background()
	v, err := e.VolumeCreate(ctx, volumetypes.CreateRequest{Name: "shared"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(v.Mountpoint, "app/conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "top"), []byte("top"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(v.Mountpoint, "escape")); err != nil {
		t.Fatal(err)
	}
	mnt := func(sub string) *containertypes.HostConfig {
		return &containertypes.HostConfig{Mounts: []mounttypes.Mount{{Type: mounttypes.TypeVolume, Source: "shared", Target: "/x",
			VolumeOptions: &mounttypes.VolumeOptions{Subpath: sub}}}}
	}
	id := create(t, e, "sub", containertypes.Config{Cmd: []string{"sh", "-c", "ls /x; echo w > /x/written"}}, mnt("app/conf"))
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, e, id, containertypes.WaitConditionNotRunning); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if b, err := os.ReadFile(filepath.Join(v.Mountpoint, "app/conf/written")); err != nil || string(b) != "w\n" {
		t.Fatalf("subpath got %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(v.Mountpoint, "written")); err == nil {
		t.Fatal("the container wrote to the volume's root")
	}
	// The volume is in use through its subpath too.
	if err := e.VolumeRemove(ctx, "shared", false); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("rm: %v", err)
	}

	before := len(mustList(t, e))
	for _, sub := range []string{"escape", "../..", "/etc", "nosuch", "escape/passwd"} {
		t.Run(sub, func(t *testing.T) {
			_, err := e.ContainerCreate(ctx, ContainerCreateOptions{Config: &containertypes.Config{Image: "busybox"}, HostConfig: mnt(sub)})
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "subpath") {
				t.Fatalf("hostile subpath %q: %v", sub, err)
			}
			if n := len(mustList(t, e)); n != before {
				t.Fatalf("a refused create left a container (%d, was %d)", n, before)
			}
		})
	}
}

func mustList(t *testing.T, e *Engine) []containertypes.Summary {
	t.Helper()
	l, err := e.ContainerList(context.Background(), ContainerListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestVolumeMountEvents(t *testing.T) {
	testutil.RequireRoot(t)
	e := volEngine(t)
	ctx := context.Background()
	stop := e.StartVolumeEvents(ctx)
	defer stop()
	_, sub := e.Events().Subscribe(time.Time{}, events.Filter{"type": {"volume"}})
	defer sub.Close()
	id := create(t, e, "", containertypes.Config{Cmd: []string{"true"}}, &containertypes.HostConfig{Binds: []string{"logs:/logs:ro"}})
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitExit(t, e, id, containertypes.WaitConditionNotRunning)
	var got []string
	timeout := time.After(5 * time.Second)
	for len(got) < 3 {
		select {
		case m := <-sub.C:
			a := m.Actor.Attributes
			got = append(got, string(m.Action)+" "+m.Actor.ID+" "+a["container"]+" "+a["destination"]+" "+a["read/write"])
		case <-timeout:
			t.Fatalf("events so far: %q", got)
		}
	}
	want := []string{"create logs   ", "mount logs " + id + " /logs false", "unmount logs " + id + "  "}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("events %q, want %q", got, want)
	}
}
