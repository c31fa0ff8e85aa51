package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/jsonstream"

	"github.com/berth-dev/berth/internal/errdefs"
)

func frame(stream byte, s string) []byte {
	hdr := make([]byte, 8)
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(s)))
	return append(hdr, s...)
}

func TestStdCopy(t *testing.T) {
	tests := []struct {
		name           string
		in             []byte
		stdout, stderr string
		wantErr        string
	}{
		{"split", bytes.Join([][]byte{frame(1, "out1 "), frame(2, "err"), frame(1, "out2"), frame(1, "")}, nil), "out1 out2", "err", ""},
		{"daemon error", bytes.Join([][]byte{frame(1, "x"), frame(3, "container died")}, nil), "x", "", "daemon: container died"},
		{"unknown stream", frame(7, "x"), "", "", "unknown stream id 7"},
		{"cut short", frame(1, "hello")[:10], "he", "", "cut short"},
		{"header cut short", []byte{1, 0, 0}, "", "", "read stream header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var o, e bytes.Buffer
			_, err := StdCopy(&o, &e, bytes.NewReader(tc.in))
			if o.String() != tc.stdout || e.String() != tc.stderr {
				t.Errorf("stdout %q stderr %q", o.String(), e.String())
			}
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestDecodeStream(t *testing.T) {
	in := `{"status":"Pulling from library/busybox","id":"latest"}
{"status":"Downloading","progressDetail":{"current":1,"total":2},"id":"abc"}
{"errorDetail":{"code":401,"message":"denied"},"error":"denied"}
{"status":"never read"}`
	var got []jsonstream.Message
	err := DecodeStream(strings.NewReader(in), func(m jsonstream.Message) error { got = append(got, m); return nil })
	var se *StreamError
	if !errors.As(err, &se) || se.Message != "denied" || !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Fatalf("err = %v, want a StreamError of class unauthorized", err)
	}
	if len(got) != 2 || got[1].Progress.Current != 1 {
		t.Errorf("messages %+v", got)
	}
	// The legacy top-level error alone is enough.
	if err := DecodeStream(strings.NewReader(`{"error":"old style"}`), nil); err == nil || err.Error() != "old style" {
		t.Errorf("legacy error = %v", err)
	}
}

// TestStatusClasses checks each status comes back as its class with the
// daemon's message.
func TestStatusClasses(t *testing.T) {
	tests := []struct {
		status int
		class  error
	}{
		{404, errdefs.ErrNotFound}, {409, errdefs.ErrConflict}, {400, errdefs.ErrInvalidArgument},
		{401, errdefs.ErrUnauthorized}, {403, errdefs.ErrForbidden}, {501, errdefs.ErrNotImplemented},
		{503, errdefs.ErrUnavailable}, {500, errServer},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			c, _ := fakeDaemon(t, "1.51", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				io.WriteString(w, `{"message":"No such thing: x"}`)
			})
			_, err := c.Info(context.Background())
			if !errors.Is(err, tc.class) || !strings.HasPrefix(err.Error(), "No such thing: x") {
				t.Errorf("err = %v, want class %v", err, tc.class)
			}
		})
	}
}

// fakeDaemon serves /_ping with apiVersion and everything else with h on
// a unix socket, returning a client for it and the paths it was asked.
func fakeDaemon(t *testing.T, apiVersion string, h http.HandlerFunc) (*Client, *[]string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.Method+" "+r.URL.Path)
		w.Header().Set("Api-Version", apiVersion)
		if r.URL.Path == "/_ping" {
			io.WriteString(w, "OK")
			return
		}
		h(w, r)
	}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, &paths
}

func TestVersionNegotiation(t *testing.T) {
	tests := []struct{ server, want string }{{"1.44", "1.44"}, {"1.51", "1.51"}, {"1.60", MaxAPIVersion}, {"", MaxAPIVersion}}
	for _, tc := range tests {
		t.Run(tc.server, func(t *testing.T) {
			c, paths := fakeDaemon(t, tc.server, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") })
			if _, err := c.Info(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Info(context.Background()); err != nil {
				t.Fatal(err)
			}
			want := []string{"GET /_ping", "GET /v" + tc.want + "/info", "GET /v" + tc.want + "/info"}
			if strings.Join(*paths, ",") != strings.Join(want, ",") {
				t.Errorf("requests %v, want %v (negotiated once)", *paths, want)
			}
		})
	}
	t.Run("pinned", func(t *testing.T) {
		c, paths := fakeDaemon(t, "1.51", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") })
		c2, _ := New(c.host.String(), WithVersion("1.41"))
		defer c2.Close()
		if _, err := c2.Info(context.Background()); err != nil {
			t.Fatal(err)
		}
		if strings.Join(*paths, ",") != "GET /v1.41/info" {
			t.Errorf("requests %v", *paths)
		}
	})
}

func TestNewRejectsBadHosts(t *testing.T) {
	for _, h := range []string{"ftp://x", "::"} {
		if _, err := New(h); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("New(%q) = %v", h, err)
		}
	}
}

func TestPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root connects to any socket")
	}
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.Chmod(sock, 0)
	c, _ := New("unix://" + sock)
	if _, err := c.Info(context.Background()); !errors.Is(err, errdefs.ErrForbidden) {
		t.Errorf("Info on a socket we may not use = %v, want forbidden", err)
	}
}
