package daemon

import (
	"errors"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParseFilters(t *testing.T) {
	f, err := ParseFilters([]string{"dangling=true", "label=a=b", "Label=c"})
	if err != nil {
		t.Fatal(err)
	}
	if len(f["label"]) != 2 || f["label"][0] != "a=b" || f["dangling"][0] != "true" {
		t.Errorf("got %v", f)
	}
	if !f.labels("label", map[string]string{"a": "b", "c": ""}) || f.labels("label", map[string]string{"a": "x", "c": ""}) {
		t.Error("label matching")
	}
	if _, err := ParseFilters([]string{"novalue"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("novalue: %v", err)
	}
	if _, _, err := (Filters{"dangling": {"maybe"}}).bool("dangling"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("dangling=maybe: %v", err)
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"24h", now.Add(-24 * time.Hour)},
		{"2026-01-02", time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
		{"2026-01-02T03:04:05Z", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"1767225600", time.Unix(1767225600, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTime(tt.in, now)
			if err != nil || !got.Equal(tt.want) {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if _, err := parseTime("yesterday", now); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("yesterday: %v", err)
	}
}
