package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/client"
)

// TestMonitorQuickExitKeepsOutput runs many containers that print and exit
// at once, from parallel clients, each the way docker run --rm does it:
// create, attach, wait for removal, start, read the stream to its end.
// Docker's guarantees must hold for every one of them: an attach made
// before the start sees all the output, the stream ends, the wait answers
// the container's exit code, and the removal succeeds (nothing is left).
// Under load a container's whole run can fit between two steps of the
// daemon's, which is what this test is for.
func TestMonitorQuickExitKeepsOutput(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	c := d.Client(t)
	// No container stays running: the shared cgroup parent (/berth)
	// empties and is made again while others start, which must not fail
	// them either (see internal/cgroups' fillCpuset).
	const (
		total   = 200
		clients = 6
	)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var (
		mu    sync.Mutex
		fails []string
		wg    sync.WaitGroup
	)
	next := make(chan int)
	go func() {
		defer close(next)
		for i := range total {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := quickRun(ctx, c, i); err != nil {
					mu.Lock()
					fails = append(fails, err.Error())
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Errorf("runs did not finish in time: %v", ctx.Err())
	}
	if len(fails) > 0 {
		t.Fatalf("%d of %d quick runs went wrong; first ones:\n%s", len(fails), total, strings.Join(fails[:min(len(fails), 10)], "\n"))
	}
	if left := strings.Fields(d.DockerOK(t, "ps", "-a", "--format", "{{.Names}}")); len(left) != 0 {
		t.Fatalf("--rm containers left behind: %v", left)
	}
}

// quickRun is one docker run --rm of a container that writes a line to
// each stream and exits with a code of its own.
func quickRun(ctx context.Context, c *client.Client, i int) error {
	code := i % 5
	req := container.CreateRequest{
		Config: &container.Config{
			Image: "busybox", AttachStdout: true, AttachStderr: true,
			Cmd: []string{"sh", "-c", fmt.Sprintf("echo out-%d; echo err-%d >&2; exit %d", i, i, code)},
		},
		HostConfig: &container.HostConfig{AutoRemove: true, NetworkMode: "none"},
	}
	res, err := c.ContainerCreate(ctx, "", req)
	if err != nil {
		return fmt.Errorf("run %d: create: %w", i, err)
	}
	conn, err := c.ContainerAttach(ctx, res.ID, client.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return fmt.Errorf("run %d: attach: %w", i, err)
	}
	defer conn.Close()
	resc, errc := c.ContainerWait(ctx, res.ID, container.WaitConditionRemoved)
	if err := c.ContainerStart(ctx, res.ID); err != nil {
		return fmt.Errorf("run %d: start: %w", i, err)
	}
	var stdout, stderr bytes.Buffer
	copied := make(chan error, 1)
	go func() {
		_, err := client.StdCopy(&stdout, &stderr, conn.Reader)
		copied <- err
	}()
	// The stream must end by itself once the container is gone.
	select {
	case err := <-copied:
		if err != nil {
			return fmt.Errorf("run %d: attach stream: %w", i, err)
		}
	case <-time.After(10 * time.Second):
		return fmt.Errorf("run %d: the attach stream did not end (got %q, %q)", i, stdout.String(), stderr.String())
	}
	var got int64
	select {
	case r := <-resc:
		if r.Error != nil && r.Error.Message != "" {
			return fmt.Errorf("run %d: wait: %s", i, r.Error.Message)
		}
		got = r.StatusCode
	case err := <-errc:
		return fmt.Errorf("run %d: wait: %w", i, err)
	case <-time.After(10 * time.Second):
		return fmt.Errorf("run %d: wait for removal did not answer", i)
	}
	if want := fmt.Sprintf("out-%d\n", i); stdout.String() != want {
		return fmt.Errorf("run %d: stdout %q, want %q", i, stdout.String(), want)
	}
	if want := fmt.Sprintf("err-%d\n", i); stderr.String() != want {
		return fmt.Errorf("run %d: stderr %q, want %q", i, stderr.String(), want)
	}
	if got != int64(code) {
		return fmt.Errorf("run %d: exit code %d, want %d", i, got, code)
	}
	return nil
}
