package network

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSyncSysctl: forwarding turned on only when off, remembered as
// berth's, and turned off again only when it was berth's.
func TestSyncSysctl(t *testing.T) {
	for _, tc := range []struct {
		name       string
		start      string
		ours       bool
		want       bool
		end        string
		endOurs    bool
		endChanged bool
	}{
		{"off, wanted: on and ours", "0\n", false, true, "1", true, true},
		{"on already, wanted: the host's", "1\n", false, true, "1\n", false, false},
		{"ours, not wanted: off", "1", true, false, "0", false, true},
		{"the host's, not wanted: left on", "1\n", false, false, "1\n", false, false},
		{"ours, still wanted: unchanged", "1", true, true, "1", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "forwarding")
			if err := os.WriteFile(path, []byte(tc.start), 0o644); err != nil {
				t.Fatal(err)
			}
			ours := tc.ours
			changed, err := syncSysctl(path, tc.want, &ours)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			if string(b) != tc.end || ours != tc.endOurs || changed != tc.endChanged {
				t.Errorf("got %q ours=%v changed=%v, want %q ours=%v changed=%v", b, ours, changed, tc.end, tc.endOurs, tc.endChanged)
			}
		})
	}
	// A sysctl that cannot be read (no IPv6 in the kernel) is an error
	// only when wanted.
	ours := false
	if _, err := syncSysctl(filepath.Join(t.TempDir(), "missing"), true, &ours); err == nil {
		t.Error("wanted forwarding on a missing sysctl: no error")
	}
	ours = true
	if _, err := syncSysctl(filepath.Join(t.TempDir(), "missing"), false, &ours); err != nil || ours {
		t.Errorf("turning off a missing sysctl: %v, ours=%v", err, ours)
	}
}
