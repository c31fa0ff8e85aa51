package meta

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/snapshot"
)

func create(t *testing.T, s *Store, name, parent string, kind snapshot.Kind) Record {
	t.Helper()
	r, err := s.Reserve(name, parent, kind)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(s.Dir(r.ID), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLifecyclePersists(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	a := create(t, s, "a-work", "", snapshot.KindActive)
	if _, err := s.Commit("a", "a-work", false, ""); err != nil {
		t.Fatal(err)
	}
	create(t, s, "b-work", "a", snapshot.KindActive)
	create(t, s, "view", "a", snapshot.KindView)
	if _, err := s.Remove("a"); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("remove with children: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.Get("a")
	if err != nil || r.ID != a.ID || KindOf(r.Kind) != snapshot.KindCommitted {
		t.Fatalf("a after reopen: %+v %v", r, err)
	}
	chain, err := s.Chain("b-work")
	if err != nil || len(chain) != 2 || chain[1].Name != "a" {
		t.Fatalf("chain: %+v %v", chain, err)
	}
	if n := create(t, s, "c", "", snapshot.KindActive); n.ID <= a.ID+2 {
		t.Fatalf("id %d reused after reopen", n.ID)
	}
}

func TestReservedNameIsTaken(t *testing.T) {
	s, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.Reserve("k", "", snapshot.KindActive)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve("k", "", snapshot.KindActive); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second reserve: %v", err)
	}
	s.Abort(r)
	if _, err := s.Reserve("k", "", snapshot.KindActive); err != nil {
		t.Fatalf("reserve after abort: %v", err)
	}
}

func TestDamagedRecordKeepsItsFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	r := create(t, s, "a", "", snapshot.KindActive)
	s.Close()
	rec := filepath.Join(dir, "meta", "1.json")
	if err := os.WriteFile(rec, []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, dir)
	if err != nil {
		t.Fatalf("open with a damaged record: %v", err)
	}
	defer s.Close()
	if _, err := os.Stat(s.Dir(r.ID)); err != nil {
		t.Fatalf("files of a damaged record removed: %v", err)
	}
	if _, err := s.Get("a"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("damaged record loaded: %v", err)
	}
}

// TestSnapshotDirsSpread: on ext4, Open marks the directory of snapshot
// directories FS_TOPDIR_FL (see spreadSnapshots).
func TestSnapshotDirsSpread(t *testing.T) {
	dir := t.TempDir()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil || fs.Type != unix.EXT4_SUPER_MAGIC {
		t.Skip("the temp dir is not on ext4")
	}
	s, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fd, err := unix.Open(filepath.Join(dir, "s"), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil || flags&fsTopdirFL == 0 {
		t.Errorf("flags %#x, %v: no FS_TOPDIR_FL", flags, err)
	}
}
