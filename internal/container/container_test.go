package container

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/errdefs"
)

func newRecord(name string) Record {
	return Record{ID: NewID(), Name: name, Created: time.Now(), State: State{Status: Created},
		Config: &container.Config{Image: "busybox"}, HostConfig: &container.HostConfig{}}
}

func TestTransitionTable(t *testing.T) {
	tests := []struct {
		from, to Status
		ok       bool
	}{
		{Created, Running, true},
		{Running, Paused, true},
		{Paused, Running, true},
		{Running, Exited, true},
		{Exited, Running, true},
		{Exited, Paused, false},
		{Created, Paused, false},
		{Removing, Running, false},
		{Dead, Running, false},
		{Running, Restarting, true},
		{Restarting, Running, true},
	}
	for _, tc := range tests {
		t.Run(string(tc.from)+"-"+string(tc.to), func(t *testing.T) {
			if got := CanTransition(tc.from, tc.to); got != tc.ok {
				t.Fatalf("CanTransition = %v, want %v", got, tc.ok)
			}
		})
	}
}

func TestNames(t *testing.T) {
	for _, n := range []string{"a", "-x", "_x", "a/b", "a b", ""} {
		if CheckName(n) == nil {
			t.Errorf("CheckName(%q) accepted", n)
		}
	}
	for _, n := range []string{"ab", "web.1", "a_b-c", "9x"} {
		if err := CheckName(n); err != nil {
			t.Errorf("CheckName(%q): %v", n, err)
		}
	}
	for i := range 100 {
		if err := CheckName(GenerateName(i % 2)); err != nil {
			t.Fatal(err)
		}
	}
	if id := NewID(); len(id) != 64 {
		t.Fatalf("id %q", id)
	}
}

func TestStorePersistsAndFinds(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, _, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Add(newRecord("web"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(newRecord("web")); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("second web: %v", err)
	}
	c.Lock()
	if err := c.SetRunning(42, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := c.SetStatus(Created); err == nil {
		t.Fatal("running → created allowed")
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	c.Unlock()
	// An orphan directory (a create cut short) is reported, not loaded.
	os.Mkdir(filepath.Join(dir, "deadbeef"), 0o700)

	s2, orphans, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(orphans) != 1 || orphans[0] != "deadbeef" {
		t.Fatalf("orphans %v", orphans)
	}
	for _, ref := range []string{c.ID(), c.ID()[:12], "web", "/web"} {
		got, err := s2.Get(ref)
		if err != nil {
			t.Fatalf("Get(%s): %v", ref, err)
		}
		if r := got.Snapshot(); r.State.Status != Running || r.State.Pid != 42 {
			t.Fatalf("state %+v", r.State)
		}
	}
	if _, err := s2.Get("nope"); !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "No such container: nope: not found" && !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Get(nope): %v", err)
	}
	got, _ := s2.Get("web")
	got.Lock()
	if err := s2.Rename(got, "api"); err != nil {
		t.Fatal(err)
	}
	got.Unlock()
	if _, err := s2.Get("web"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("old name still found: %v", err)
	}
	if !s2.FreeName("web") || s2.FreeName("api") {
		t.Fatal("name registry wrong after rename")
	}
	got.Lock()
	if err := s2.Delete(got); err != nil {
		t.Fatal(err)
	}
	got.Unlock()
	if _, err := os.Stat(s2.Dir(got.ID())); !os.IsNotExist(err) {
		t.Fatalf("dir still there: %v", err)
	}
}

func TestWaitConditions(t *testing.T) {
	s, _, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Add(newRecord("w1"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// not-running is met at once for a created container.
	if r := <-c.Wait(ctx, container.WaitConditionNotRunning); r.ExitCode != 0 {
		t.Fatalf("%+v", r)
	}
	c.Lock()
	c.SetRunning(1, time.Now())
	c.Unlock()
	next := c.Wait(ctx, container.WaitConditionNextExit)
	removed := c.Wait(ctx, container.WaitConditionRemoved)
	c.Lock()
	if err := c.SetExited(Exited, 3, false, time.Now(), ""); err != nil {
		t.Fatal(err)
	}
	c.Unlock()
	if r := <-next; r.ExitCode != 3 {
		t.Fatalf("next-exit %+v", r)
	}
	select {
	case <-removed:
		t.Fatal("removed before removal")
	case <-time.After(20 * time.Millisecond):
	}
	c.Lock()
	s.Delete(c)
	c.Unlock()
	if r := <-removed; r.ExitCode != 3 {
		t.Fatalf("removed %+v", r)
	}
	// A cancelled wait closes its channel.
	cctx, cancel := context.WithCancel(ctx)
	c2, _ := s.Add(newRecord("w2"))
	c2.Lock()
	c2.SetRunning(1, time.Now())
	c2.Unlock()
	ch := c2.Wait(cctx, container.WaitConditionNotRunning)
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("cancelled wait yielded")
	}
}

func TestRestartPolicy(t *testing.T) {
	onFail3 := container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 3}
	tests := []struct {
		name    string
		p       container.RestartPolicy
		code, n int
		manual  bool
		want    bool
	}{
		{"no", container.RestartPolicy{Name: "no"}, 1, 0, false, false},
		{"always clean exit", container.RestartPolicy{Name: container.RestartPolicyAlways}, 0, 5, false, true},
		{"always stopped", container.RestartPolicy{Name: container.RestartPolicyAlways}, 137, 0, true, false},
		{"on-failure ok", onFail3, 0, 0, false, false},
		{"on-failure fail", onFail3, 1, 2, false, true},
		{"on-failure exhausted", onFail3, 1, 3, false, false},
		{"unless-stopped", container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}, 0, 0, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ShouldRestart(tc.p, tc.code, tc.n, tc.manual); got != tc.want {
				t.Fatalf("got %v", got)
			}
		})
	}
	d := NextBackoff(0, 0)
	if d != BackoffStart {
		t.Fatal(d)
	}
	if d = NextBackoff(d, time.Second); d != 200*time.Millisecond {
		t.Fatal(d)
	}
	if d = NextBackoff(d, 11*time.Second); d != BackoffStart {
		t.Fatal(d)
	}
	if NextBackoff(BackoffMax, 0) != BackoffMax {
		t.Fatal("no cap")
	}
}
