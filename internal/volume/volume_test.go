package volume

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestCreateGetRemove(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v, created, err := s.Create(ctx, CreateOptions{Name: "data", Labels: map[string]string{"a": "b"}})
	if err != nil || !created {
		t.Fatal(err, created)
	}
	if _, err := os.Stat(v.Mountpoint); err != nil {
		t.Fatal(err)
	}
	if _, created, _ := s.Create(ctx, CreateOptions{Name: "data"}); created {
		t.Fatal("created twice")
	}
	anon, _, err := s.Create(ctx, CreateOptions{})
	if err != nil || len(anon.Name) != 64 || !anon.Anonymous {
		t.Fatalf("%+v %v", anon, err)
	}
	list, _ := s.List()
	if len(list) != 2 {
		t.Fatalf("%d volumes", len(list))
	}
	for _, bad := range []string{"../x", "a/b", "-x"} {
		if _, _, err := s.Create(ctx, CreateOptions{Name: bad}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if err := s.Remove("data"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("data"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatal(err)
	}
}
