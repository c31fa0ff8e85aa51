package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/errdefs"
)

// TestAttachHijack: the client asks to upgrade, gets 101, writes stdin
// and reads multiplexed output, and half-closes stdin.
func TestAttachHijack(t *testing.T) {
	c, paths := fakeDaemon(t, "1.51", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1.51/containers/gone/attach" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"No such container: gone"}`)
			return
		}
		if r.Header.Get("Upgrade") != "tcp" || r.Header.Get("Connection") != "Upgrade" {
			t.Errorf("no upgrade asked: %v", r.Header)
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
		brw.Flush()
		in, _ := io.ReadAll(bufio.NewReader(brw)) // until the client's CloseWrite
		conn.Write(frame(1, "echo:"+string(in)))
		conn.Write(frame(2, "warn"))
	})
	h, err := c.ContainerAttach(context.Background(), "web", AttachOptions{Stdin: true, Stdout: true, Stderr: true, Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.MediaType != "application/vnd.docker.multiplexed-stream" {
		t.Errorf("media type %q", h.MediaType)
	}
	io.WriteString(h.Conn, "hi")
	if err := h.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var o, e bytes.Buffer
	if _, err := StdCopy(&o, &e, h.Reader); err != nil {
		t.Fatal(err)
	}
	if o.String() != "echo:hi" || e.String() != "warn" {
		t.Errorf("stdout %q stderr %q", o.String(), e.String())
	}
	if _, err := c.ContainerAttach(context.Background(), "gone", AttachOptions{Stdout: true}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("attach to a missing container = %v", err)
	}
	want := "POST /v1.51/containers/web/attach"
	found := false
	for _, p := range *paths {
		found = found || p == want
	}
	if !found {
		t.Errorf("requests %v lack %s", *paths, want)
	}
}

// TestWaitRegistersFirst: ContainerWait returns once the daemon sent its
// 200, and the result arrives later.
func TestWaitRegistersFirst(t *testing.T) {
	release := make(chan struct{})
	c, _ := fakeDaemon(t, "1.51", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, `{"StatusCode":7}`)
	})
	resc, errc := c.ContainerWait(context.Background(), "web", container.WaitConditionNextExit)
	select {
	case err := <-errc:
		t.Fatal(err)
	case <-resc:
		t.Fatal("result before the container exited")
	default:
	}
	close(release)
	select {
	case res := <-resc:
		if res.StatusCode != 7 {
			t.Errorf("status %d", res.StatusCode)
		}
	case err := <-errc:
		t.Fatal(err)
	}
}
