package daemon

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	containertypes "github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestContainerAutoRemove(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx := context.Background()
	id := create(t, e, "", containertypes.Config{Cmd: []string{"true"}, Volumes: map[string]struct{}{"/data": {}}}, &containertypes.HostConfig{AutoRemove: true})
	removed, err := e.ContainerWait(ctx, id, containertypes.WaitConditionRemoved)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	select {
	case <-removed:
	case <-time.After(20 * time.Second):
		t.Fatal("not removed")
	}
	if _, err := e.ContainerInspect(ctx, id, false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("inspect after --rm: %v", err)
	}
	c, _ := e.ctrs()
	if vols, _ := c.vols.List(); len(vols) != 0 {
		t.Fatalf("anonymous volume kept: %v", vols)
	}
	// A --rm container whose command cannot run is removed too, and the
	// error is the request's (400; the CLI exits 127 on its words).
	bad := create(t, e, "", containertypes.Config{Cmd: []string{"nosuchcmd"}}, &containertypes.HostConfig{AutoRemove: true})
	err = e.ContainerStart(ctx, bad)
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "executable file not found") {
		t.Fatalf("start of a missing command: %v", err)
	}
	if _, err := e.ContainerInspect(ctx, bad, false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("--rm container kept after a failed start: %v", err)
	}
}

func TestContainerRestartPolicy(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx := context.Background()
	id := create(t, e, "", containertypes.Config{Cmd: []string{"sh", "-c", "exit 2"}},
		&containertypes.HostConfig{RestartPolicy: containertypes.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}})
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	// Back-off 100 ms then 200 ms: the third exit is final.
	deadline := time.Now().Add(15 * time.Second)
	for {
		ins, err := e.ContainerInspect(ctx, id, false)
		if err != nil {
			t.Fatal(err)
		}
		if ins.State.Status == "exited" && ins.RestartCount == 2 {
			if ins.State.ExitCode != 2 {
				t.Fatalf("exit %d", ins.State.ExitCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %s, restarts %d", ins.State.Status, ins.RestartCount)
		}
		waitExit(t, e, id, containertypes.WaitConditionNextExit)
	}

	// always: a stop is final; the policy does not fight it.
	id2 := create(t, e, "", containertypes.Config{Cmd: []string{"sleep", "100"}},
		&containertypes.HostConfig{RestartPolicy: containertypes.RestartPolicy{Name: "always"}})
	if err := e.ContainerStart(ctx, id2); err != nil {
		t.Fatal(err)
	}
	zero := 0
	if err := e.ContainerStop(ctx, id2, ContainerStopOptions{Timeout: &zero}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if ins, _ := e.ContainerInspect(ctx, id2, false); ins.State.Status != "exited" || ins.RestartCount != 0 {
		t.Fatalf("after stop: %s, %d restarts", ins.State.Status, ins.RestartCount)
	}

	// A stop between two runs cancels the pending restart; a pending
	// restart does not hold up the engine's shutdown (cleanup).
	id3 := create(t, e, "", containertypes.Config{Cmd: []string{"sh", "-c", "exit 1"}},
		&containertypes.HostConfig{RestartPolicy: containertypes.RestartPolicy{Name: "always"}})
	if err := e.ContainerStart(ctx, id3); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		ins, _ := e.ContainerInspect(ctx, id3, false)
		if ins.State.Status == "restarting" && ins.RestartCount >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("id3: %s after %d restarts", ins.State.Status, ins.RestartCount)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := e.ContainerStop(ctx, id3, ContainerStopOptions{}); err != nil {
		t.Fatal(err)
	}
	ins, _ := e.ContainerInspect(ctx, id3, false)
	n := ins.RestartCount
	time.Sleep(time.Second)
	if ins, _ := e.ContainerInspect(ctx, id3, false); ins.State.Status != "exited" || ins.RestartCount != n {
		t.Fatalf("after a stop while restarting: %s, %d restarts (was %d)", ins.State.Status, ins.RestartCount, n)
	}
	// And one left pending at shutdown.
	id4 := create(t, e, "", containertypes.Config{Cmd: []string{"sh", "-c", "exit 1"}},
		&containertypes.HostConfig{RestartPolicy: containertypes.RestartPolicy{Name: "always"}})
	if err := e.ContainerStart(ctx, id4); err != nil {
		t.Fatal(err)
	}
	for {
		if ins, _ := e.ContainerInspect(ctx, id4, false); ins.State.Status == "restarting" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	c, _ := e.ctrs()
	done := make(chan struct{})
	go func() {
		ct, _ := c.store.Get(id4)
		ct.Lock()
		c.cancelRestart(c.liveOf(id4))
		ct.Unlock()
		c.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled restart holds the wait group")
	}
}

func TestContainerLiveRestore(t *testing.T) {
	testutil.RequireRoot(t)
	root := t.TempDir()
	ctx := context.Background()
	parent := "/berth-test-restore"
	cfg := ContainerConfig{ExecRoot: filepath.Join(root, "run"), CgroupParent: parent}
	open := func() *Engine {
		e, err := New(ctx, Config{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.InitContainers(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		return e
	}
	e := open()
	loadTestImage(t, e)
	long := create(t, e, "long", containertypes.Config{Cmd: []string{"sleep", "100"}}, nil)
	short := create(t, e, "short", containertypes.Config{Cmd: []string{"sh", "-c", "sleep 0.3; exit 4"}}, nil)
	again := create(t, e, "again", containertypes.Config{Cmd: []string{"sh", "-c", "sleep 0.3; exit 1"}},
		&containertypes.HostConfig{RestartPolicy: containertypes.RestartPolicy{Name: "on-failure", MaximumRetryCount: 1}})
	always := create(t, e, "always", containertypes.Config{Cmd: []string{"sleep", "100"}},
		&containertypes.HostConfig{RestartPolicy: containertypes.RestartPolicy{Name: "always"}})
	unless := create(t, e, "unless", containertypes.Config{Cmd: []string{"sleep", "100"}},
		&containertypes.HostConfig{RestartPolicy: containertypes.RestartPolicy{Name: "unless-stopped"}})
	adopt := create(t, e, "adopt", containertypes.Config{Cmd: []string{"sleep", "100"}}, nil)
	for _, id := range []string{long, short, again, always, unless, adopt} {
		if err := e.ContainerStart(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	zero := 0
	for _, id := range []string{always, unless} {
		if err := e.ContainerStop(ctx, id, ContainerStopOptions{Timeout: &zero}); err != nil {
			t.Fatal(err)
		}
	}
	ins, _ := e.ContainerInspect(ctx, long, false)
	pid := ins.State.Pid
	// The daemon goes; the containers do not.
	e.ShutdownContainers()
	e.Close()
	// adopt's record as a daemon that died before saving its start
	// leaves it: created.
	recPath := filepath.Join(root, "containers", adopt, "config.v2.json")
	b, err := os.ReadFile(recPath)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte(`"Status":"running"`), []byte(`"Status":"created"`), 1)
	if err := os.WriteFile(recPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	e = open()
	t.Cleanup(func() {
		for _, id := range []string{long, short, again, always, unless, adopt} {
			_ = e.ContainerRemove(ctx, id, ContainerRemoveOptions{Force: true})
		}
		e.ShutdownContainers()
		e.Close()
		removeCgroupParent(parent)
	})
	ins, err = e.ContainerInspect(ctx, long, false)
	if err != nil || ins.State.Status != "running" || ins.State.Pid != pid {
		t.Fatalf("long after restore: %v %+v (pid was %d)", err, ins.State, pid)
	}
	if ins, _ := e.ContainerInspect(ctx, adopt, false); ins.State.Status != "running" || ins.State.Pid == 0 {
		t.Fatalf("adopt after restore: %+v", ins.State)
	}
	if ins, _ := e.ContainerInspect(ctx, short, false); ins.State.Status != "exited" || ins.State.ExitCode != 4 {
		t.Fatalf("short after restore: %+v", ins.State)
	}
	// The restarted daemon applies the policy to what ended while it was
	// away, then follows the new run.
	if code := waitExit(t, e, again, containertypes.WaitConditionNextExit); code != 1 {
		t.Fatalf("again exit %d", code)
	}
	if ins, _ := e.ContainerInspect(ctx, again, false); ins.RestartCount != 1 {
		t.Fatalf("again restarts %d", ins.RestartCount)
	}
	// A daemon start revives always (even stopped by hand), not
	// unless-stopped.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ins, _ := e.ContainerInspect(ctx, always, false)
		if ins.State.Status == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("always after the daemon's restart: %+v", ins.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ins, _ := e.ContainerInspect(ctx, unless, false); ins.State.Status != "exited" {
		t.Fatalf("unless-stopped after the daemon's restart: %+v", ins.State)
	}
	// Wait and stop work on a restored container.
	next, _ := e.ContainerWait(ctx, long, containertypes.WaitConditionNextExit)
	if err := e.ContainerStop(ctx, long, ContainerStopOptions{Timeout: &zero}); err != nil {
		t.Fatal(err)
	}
	if res := <-next; res.StatusCode != 137 {
		t.Fatalf("long exit %d", res.StatusCode)
	}
}

func TestContainerFiles(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx := context.Background()
	id := create(t, e, "files", containertypes.Config{Cmd: []string{"sh", "-c", "echo hi > /tmp/x; ln -s / /hostroot; rm /etc/motd; sleep 100"}}, nil)
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := e.ContainerStatPath(ctx, id, "/hostroot"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("container did not write its files")
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, err := e.ContainerStatPath(ctx, id, "/tmp/x")
	if err != nil || st.Name != "x" || st.Size != 3 {
		t.Fatalf("stat %+v %v", st, err)
	}
	if _, err := e.ContainerStatPath(ctx, id, "/nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("stat missing: %v", err)
	}
	// A symlink to / inside the container stays inside it: the host's
	// files are out of reach through it, for reading and writing.
	marker := filepath.Join(t.TempDir(), "host-only")
	os.WriteFile(marker, []byte("host"), 0o644)
	if _, err := e.ContainerStatPath(ctx, id, "/hostroot"+marker); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("host file seen through a symlink: %v", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "in.txt", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
	tw.Write([]byte("ok"))
	tw.Close()
	dir := filepath.Dir(marker)
	if err := e.ContainerExtract(ctx, id, "/hostroot"+dir, ContainerExtractOptions{}, bytes.NewReader(buf.Bytes())); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("extract through a symlink to a host path: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "in.txt")); err == nil {
		t.Fatal("extract wrote on the host")
	}
	if err := e.ContainerExtract(ctx, id, "/hostroot/tmp", ContainerExtractOptions{}, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	rc, st, err := e.ContainerArchive(ctx, id, "/tmp")
	if err != nil {
		t.Fatal(err)
	}
	names := tarNames(t, rc)
	if !strings.Contains(names, "tmp/x") || !strings.Contains(names, "tmp/in.txt") || !st.Mode.IsDir() {
		t.Fatalf("archive of /tmp: %s (%v)", names, st.Mode)
	}

	changes, err := e.ContainerChanges(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.Kind.String()+" "+c.Path)
	}
	want := "D /etc/motd,A /hostroot,C /tmp,A /tmp/in.txt,A /tmp/x"
	if strings.Join(got, ",") != strings.Replace(want, "D /etc/motd,", "C /etc,D /etc/motd,", 1) && strings.Join(got, ",") != want {
		t.Fatalf("changes %v", got)
	}

	var exp bytes.Buffer
	if err := e.ContainerExport(ctx, id, &exp); err != nil {
		t.Fatal(err)
	}
	names = tarNames(t, io.NopCloser(&exp))
	if !strings.Contains(names, "bin/busybox") || !strings.Contains(names, "tmp/x") || strings.Contains(names, "etc/motd\n") {
		t.Fatalf("export: %d bytes", exp.Len())
	}

	res, err := e.ContainerCommit(ctx, ContainerCommitOptions{Container: id, Reference: "committed:1", Pause: true, Changes: []string{`CMD ["cat", "/tmp/x"]`}})
	if err != nil {
		t.Fatal(err)
	}
	im, err := e.ImageInspect(ctx, "committed:1")
	if err != nil || im.ID != res.ID.String() || len(im.RootFS.Layers) != 3 || strings.Join(im.Config.Cmd, " ") != "cat /tmp/x" {
		t.Fatalf("committed image %+v %v", im, err)
	}
	// The committed image runs with the container's changes.
	id2 := create(t, e, "", containertypes.Config{Image: "committed:1"}, nil)
	if err := e.ContainerStart(ctx, id2); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, e, id2, containertypes.WaitConditionNotRunning); code != 0 {
		t.Fatalf("committed image: exit %d", code)
	}
	// rmi refuses an image a container uses.
	if _, err := e.ImageRemove(ctx, "committed:1", ImageRemoveOptions{}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("rmi in use: %v", err)
	}
}

func tarNames(t *testing.T, rc io.ReadCloser) string {
	t.Helper()
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, strings.TrimSuffix(h.Name, "/"))
	}
	return strings.Join(names, "\n") + "\n"
}

func TestContainerListFilters(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx := context.Background()
	a := create(t, e, "alpha", containertypes.Config{Cmd: []string{"sleep", "100"}, Labels: map[string]string{"app": "web"}}, nil)
	b := create(t, e, "beta", containertypes.Config{Cmd: []string{"sh", "-c", "exit 5"}}, nil)
	c := create(t, e, "gamma", containertypes.Config{Cmd: []string{"true"}}, &containertypes.HostConfig{Binds: []string{"vol1:/v"}})
	for _, id := range []string{a, b} {
		if err := e.ContainerStart(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	waitExit(t, e, b, containertypes.WaitConditionNotRunning)
	tests := []struct {
		name string
		opts ContainerListOptions
		want string
	}{
		{"running", ContainerListOptions{}, "alpha"},
		{"all", ContainerListOptions{All: true}, "gamma beta alpha"},
		{"limit", ContainerListOptions{Limit: 1}, "gamma"},
		{"label", ContainerListOptions{All: true, Filters: Filters{"label": {"app=web"}}}, "alpha"},
		{"status", ContainerListOptions{Filters: Filters{"status": {"exited"}}}, "beta"},
		{"exited", ContainerListOptions{Filters: Filters{"exited": {"5"}}}, "beta"},
		{"name", ContainerListOptions{All: true, Filters: Filters{"name": {"^/b"}}}, "beta"},
		{"id", ContainerListOptions{All: true, Filters: Filters{"id": {c[:8]}}}, "gamma"},
		{"before", ContainerListOptions{Filters: Filters{"before": {"gamma"}}}, "beta alpha"},
		{"since", ContainerListOptions{Filters: Filters{"since": {"alpha"}}}, "gamma beta"},
		{"volume", ContainerListOptions{All: true, Filters: Filters{"volume": {"vol1"}}}, "gamma"},
		{"ancestor", ContainerListOptions{All: true, Filters: Filters{"ancestor": {"busybox"}}}, "gamma beta alpha"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list, err := e.ContainerList(ctx, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range list {
				names = append(names, strings.TrimPrefix(s.Names[0], "/"))
			}
			if got := strings.Join(names, " "); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := e.ContainerList(ctx, ContainerListOptions{Filters: Filters{"bogus": {"1"}}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("bogus filter: %v", err)
	}
	// Rename and update.
	if err := e.ContainerRename(ctx, "alpha", "beta"); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("rename onto a taken name: %v", err)
	}
	if err := e.ContainerRename(ctx, "alpha", "delta"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ContainerUpdate(ctx, "delta", containertypes.UpdateConfig{Resources: containertypes.Resources{Memory: 64 << 20, MemorySwap: 128 << 20}}); err != nil {
		t.Fatal(err)
	}
	ins, _ := e.ContainerInspect(ctx, a, true)
	if ins.Name != "/delta" || ins.HostConfig.Memory != 64<<20 || ins.SizeRw == nil {
		t.Fatalf("after rename/update: %s %d", ins.Name, ins.HostConfig.Memory)
	}
	rep, err := e.ContainersPrune(ctx, Filters{})
	if err != nil || len(rep.ContainersDeleted) != 2 {
		t.Fatalf("prune %+v %v", rep, err)
	}
}

// TestContainerOnDefaultNetwork: with networking initialised, the default
// mode attaches the container to the default bridge at start and detaches
// it at exit; inspect shows the address.
func TestContainerOnDefaultNetwork(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx := context.Background()
	c, _ := e.ctrs()
	cfg := NetworkConfig{ExecRoot: c.cfg.ExecRoot, DefaultBridge: "bc" + netTag(),
		DefaultSubnet: netip.MustParsePrefix("10.218.0.0/24"), Table: "berth_c" + netTag()}
	if err := e.InitNetworks(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Containers first (ctrEngine's cleanup runs after this one).
		for _, ct := range c.store.List() {
			_ = e.ContainerRemove(ctx, ct.ID(), ContainerRemoveOptions{Force: true})
		}
		if err := e.TeardownNetworks(ctx); err != nil {
			t.Error(err)
		}
	})
	id := create(t, e, "", containertypes.Config{Cmd: []string{"sleep", "100"}}, nil)
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	ins, err := e.ContainerInspect(ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	for _, es := range ins.NetworkSettings.Networks {
		addr = es.IPAddress.String()
	}
	if !strings.HasPrefix(addr, "10.218.0.") {
		t.Fatalf("networks %+v", ins.NetworkSettings.Networks)
	}
	zero := 0
	if err := e.ContainerStop(ctx, id, ContainerStopOptions{Timeout: &zero}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := e.networkSettings(id); ok {
		t.Fatal("endpoint kept after exit")
	}
	if _, err := e.ContainerCreate(ctx, ContainerCreateOptions{Config: &containertypes.Config{Image: "busybox"}, HostConfig: &containertypes.HostConfig{NetworkMode: "nonet"}}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("unknown network: %v", err)
	}
}

// TestContainerVolumeCopyUp: a new volume gets the image's files at its
// destination at the first start; an existing, filled one does not.
func TestContainerVolumeCopyUp(t *testing.T) {
	testutil.RequireRoot(t)
	e := ctrEngine(t)
	ctx := context.Background()
	id := create(t, e, "", containertypes.Config{Cmd: []string{"cat", "/opt/replaced/new.txt"}, Volumes: map[string]struct{}{"/etc": {}}},
		&containertypes.HostConfig{Binds: []string{"optvol:/opt"}})
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, e, id, containertypes.WaitConditionNotRunning); code != 0 {
		t.Fatalf("exit %d", code)
	}
	c, _ := e.ctrs()
	v, err := c.vols.Get("optvol")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(v.Mountpoint, "replaced", "new.txt")); err != nil {
		t.Fatalf("named volume not filled: %v", err)
	}
	ins, _ := e.ContainerInspect(ctx, id, false)
	for _, m := range ins.Mounts {
		if m.Destination == "/etc" {
			if _, err := os.Stat(filepath.Join(m.Source, "passwd")); err != nil {
				t.Fatalf("anonymous volume not filled: %v", err)
			}
		}
	}
	// --volumes-from shares them, read-only when asked.
	from := create(t, e, "", containertypes.Config{Cmd: []string{"sh", "-c", "test -f /opt/replaced/new.txt && ! touch /opt/x"}},
		&containertypes.HostConfig{VolumesFrom: []string{id + ":ro"}})
	if err := e.ContainerStart(ctx, from); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, e, from, containertypes.WaitConditionNotRunning); code != 0 {
		t.Fatalf("volumes-from: exit %d", code)
	}
	if err := e.ContainerRemove(ctx, from, ContainerRemoveOptions{RemoveVolumes: true}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(v.Mountpoint, "mine"), []byte("x"), 0o644)
	os.RemoveAll(filepath.Join(v.Mountpoint, "replaced"))
	id2 := create(t, e, "", containertypes.Config{Cmd: []string{"true"}}, &containertypes.HostConfig{Binds: []string{"optvol:/opt"}})
	if err := e.ContainerStart(ctx, id2); err != nil {
		t.Fatal(err)
	}
	waitExit(t, e, id2, containertypes.WaitConditionNotRunning)
	if _, err := os.Stat(filepath.Join(v.Mountpoint, "replaced")); err == nil {
		t.Fatal("an existing volume was filled again")
	}
	for _, x := range []string{id, id2} {
		if err := e.ContainerRemove(ctx, x, ContainerRemoveOptions{RemoveVolumes: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.vols.Get("optvol"); err != nil {
		t.Fatal("rm -v removed a named volume")
	}
	c.vols.Remove("optvol")
}
