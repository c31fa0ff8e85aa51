package netns_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/network/netns"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func TestCreateHasLoopbackUp(t *testing.T) {
	testutil.RequireRoot(t)
	for _, pooled := range []bool{false, true} {
		t.Run(map[bool]string{false: "direct", true: "pool"}[pooled], func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ns")
			if pooled {
				p := netns.NewPool(t.Context(), 2, nil)
				t.Cleanup(func() { p.Close() })
				if _, err := p.Take(path); err != nil {
					t.Fatal(err)
				}
			} else if err := netns.Create(path); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := netns.Remove(path); err != nil {
					t.Error(err)
				}
			})
			if !netns.IsNetns(path) {
				t.Fatalf("%s is not a netns", path)
			}
			out, err := exec.Command("nsenter", "--net="+path, "ip", "-o", "link", "show", "lo").CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if !strings.Contains(string(out), "UP") {
				t.Fatalf("lo not up: %s", out)
			}
			out, _ = exec.Command("nsenter", "--net="+path, "ip", "-o", "link").CombinedOutput()
			if strings.Count(string(out), "\n") != 1 {
				t.Fatalf("new netns has more than lo: %s", out)
			}
		})
	}
}

func TestCreateExistingPathFails(t *testing.T) {
	testutil.RequireRoot(t)
	path := filepath.Join(t.TempDir(), "ns")
	if err := netns.Create(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netns.Remove(path) })
	if err := netns.Create(path); err == nil {
		t.Fatal("second Create on the same path succeeded")
	}
}

func TestRemoveTwice(t *testing.T) {
	testutil.RequireRoot(t)
	path := filepath.Join(t.TempDir(), "ns")
	if err := netns.Create(path); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := netns.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

func benchmarkTake(b *testing.B, size int) {
	dir := b.TempDir()
	p := netns.NewPool(b.Context(), size, nil)
	defer p.Close()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		path := filepath.Join(dir, "ns")
		if _, err := p.Take(path); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := netns.Remove(path); err != nil {
			b.Fatal(err)
		}
		// let the pool refill, as it would between container starts
		for size > 0 && p.Ready() < size {
		}
		b.StartTimer()
	}
}

func BenchmarkNetnsCreate(b *testing.B) { benchmarkTake(b, 0) }
func BenchmarkNetnsPool(b *testing.B)   { benchmarkTake(b, 4) }
