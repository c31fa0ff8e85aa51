package testutil

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testimage"
)

// RepoRoot returns the directory holding berth's go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// ImagesDir is where `make images` and the tests keep the test images.
func ImagesDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "_output", "images", "busybox"), nil
}

var imagesOnce struct {
	sync.Once
	paths testimage.Paths
	err   error
}

// Images returns the busybox test image, building it first if it is missing
// or stale. A file lock keeps concurrent test binaries from racing.
// Tests must treat the outputs as read-only.
func Images(t testing.TB) testimage.Paths {
	t.Helper()
	imagesOnce.Do(func() { imagesOnce.paths, imagesOnce.err = EnsureImages() })
	if imagesOnce.err != nil {
		t.Fatalf("test images: %v (needs Debian's busybox-static; try: make images)", imagesOnce.err)
	}
	return imagesOnce.paths
}

// EnsureImages builds the test images under ImagesDir unless current.
func EnsureImages() (testimage.Paths, error) {
	dir, err := ImagesDir()
	if err != nil {
		return testimage.Paths{}, err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return testimage.Paths{}, err
	}
	lock, err := os.OpenFile(filepath.Join(filepath.Dir(dir), ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return testimage.Paths{}, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return testimage.Paths{}, err
	}
	if testimage.Current(dir) {
		return testimage.PathsIn(dir), nil
	}
	return testimage.Build(dir)
}
