package display

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/distribution"
)

func TestSize(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0B"}, {999, "999B"}, {1000, "1kB"}, {1536, "1.54kB"}, {62921593, "62.9MB"}, {3 << 30, "3.22GB"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := Size(tc.n); got != tc.want {
				t.Fatalf("Size(%d) = %q, want %q", tc.n, got, tc.want)
			}
		})
	}
}

func updates() []distribution.Progress {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return []distribution.Progress{
		{ID: "aaaaaaaaaaaa", Status: distribution.StatusResolved, Total: 2000000, Time: t0},
		{ID: "bbbbbbbbbbbb", Status: distribution.StatusExists, Time: t0},
		{ID: "cccccccccccc", Config: true, Status: distribution.StatusDownloading, Time: t0},
		{ID: "aaaaaaaaaaaa", Status: distribution.StatusDownloading, Current: 1, Total: 2000000, Time: t0},
		{ID: "aaaaaaaaaaaa", Status: distribution.StatusDownloading, Current: 1000000, Total: 2000000, Time: t0.Add(time.Second)},
		{ID: "aaaaaaaaaaaa", Status: distribution.StatusDownloaded, Current: 2000000, Total: 2000000, Time: t0.Add(2 * time.Second)},
	}
}

func TestPlain(t *testing.T) {
	var out bytes.Buffer
	d := New(&out, false)
	for _, p := range updates() {
		d.Update(p)
	}
	want := "aaaaaaaaaaaa: Pulling fs layer\nbbbbbbbbbbbb: Already exists\naaaaaaaaaaaa: Download complete 1MB/s\n"
	if out.String() != want {
		t.Fatalf("plain output:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestTerminal(t *testing.T) {
	var out bytes.Buffer
	d := New(&out, true)
	for _, p := range updates() {
		d.Update(p)
	}
	s := out.String()
	if strings.Contains(s, "cccccccccccc") {
		t.Fatal("config shown")
	}
	// The half-way update draws a bar, bytes and a rate on layer a's line,
	// two lines up from the bottom.
	if !strings.Contains(s, "\x1b[2A\r\x1b[2Kaaaaaaaaaaaa: Downloading [=========================>                        ] 1MB/2MB 1MB/s") {
		t.Fatalf("terminal output %q", s)
	}
}
