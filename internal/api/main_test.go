package api

import (
	"log/slog"
	"os"
	"testing"
)

// TestMain silences the request log (one Info line per request) so test
// output shows failures; the benchmark then measures building the log
// record, not a terminal.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}
