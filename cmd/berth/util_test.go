package main

import (
	"bytes"
	"testing"
	"time"
)

func TestHumanSize(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{{0, "0B"}, {999, "999B"}, {1000, "1kB"}, {2139136, "2.14MB"}, {4_262_000_000, "4.26GB"}}
	for _, tt := range tests {
		if got := humanSize(tt.n); got != tt.want {
			t.Errorf("humanSize(%d) = %s, want %s", tt.n, got, tt.want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "Less than a second"},
		{30 * time.Second, "30 seconds"},
		{90 * time.Second, "About a minute"},
		{10 * time.Minute, "10 minutes"},
		{65 * time.Minute, "About an hour"},
		{5 * time.Hour, "5 hours"},
		{3 * 24 * time.Hour, "3 days"},
		{20 * 24 * time.Hour, "2 weeks"},
		{90 * 24 * time.Hour, "3 months"},
		{3 * 365 * 24 * time.Hour, "3 years"},
	}
	for _, tt := range tests {
		if got := humanDuration(tt.d); got != tt.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestTableFormats(t *testing.T) {
	rows := []map[string]string{{"Repository": "busybox", "Tag": "latest"}}
	tb := table{cols: []string{"Repository", "Tag"}, headers: map[string]string{"Repository": "REPOSITORY", "Tag": "TAG"}}
	tests := []struct{ format, want string }{
		{"", "REPOSITORY   TAG\nbusybox      latest\n"},
		{"{{.Repository}}:{{.Tag}}", "busybox:latest\n"},
		{"table {{.Tag}}", "TAG\nlatest\n"},
		{"json", `{"Repository":"busybox","Tag":"latest"}` + "\n"},
		{"{{json .}}", `{"Repository":"busybox","Tag":"latest"}` + "\n"},
		{"{{upper .Tag}}", "LATEST\n"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := tb.print(&buf, tt.format, rows); err != nil {
			t.Errorf("%q: %v", tt.format, err)
			continue
		}
		if buf.String() != tt.want {
			t.Errorf("%q: got %q, want %q", tt.format, buf.String(), tt.want)
		}
	}
	if err := tb.print(&bytes.Buffer{}, "{{.Nope}}", rows); err == nil {
		t.Error("unknown field accepted")
	}
}
