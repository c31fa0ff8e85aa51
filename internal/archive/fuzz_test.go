package archive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzApplyStaysInside feeds arbitrary layers (seeded with the hostile
// ones in testdata/hostile) to Apply and checks that nothing next to the
// destination changed, whatever Apply returned.
func FuzzApplyStaysInside(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "hostile", "*.tar"))
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Fuzz(func(t *testing.T, layer []byte, deleteMode bool) {
		base := t.TempDir()
		root := filepath.Join(base, "root")
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, "outside-file"), []byte("precious"), 0o644); err != nil {
			t.Fatal(err)
		}
		mode := WhiteoutsOverlay
		if deleteMode {
			mode = WhiteoutsDelete
		}
		hostBefore := hostState()
		_, _ = Apply(context.Background(), root, bytes.NewReader(layer), ApplyOptions{Whiteouts: mode})
		entries, err := os.ReadDir(base)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if !slices.Equal(names, []string{"outside-file", "root"}) {
			t.Fatalf("entries next to the root: %q", names)
		}
		if b, err := os.ReadFile(filepath.Join(base, "outside-file")); err != nil || string(b) != "precious" {
			t.Fatalf("file outside the root changed: %q %v", b, err)
		}
		if h := hostState(); !slices.Equal(h, hostBefore) {
			t.Fatalf("host paths changed: %q → %q", hostBefore, h)
		}
	})
}
