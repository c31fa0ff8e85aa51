package daemon

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/testutil"
)

func newEngine(t *testing.T) *Engine {
	t.Helper()
	e, err := New(context.Background(), Config{Root: t.TempDir(), StorageDriver: "vfs"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func loadTestImage(t *testing.T, e *Engine) digest.Digest {
	t.Helper()
	f, err := os.Open(testutil.Images(t).DockerArchive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := e.ImageLoad(context.Background(), ImageLoadOptions{Input: f})
	if err != nil {
		t.Fatal(err)
	}
	return res.Images[0].ID
}

func items(res ImageRemoveResult) string {
	var s []string
	for _, it := range res.Items {
		if it.Untagged != "" {
			s = append(s, "untagged "+it.Untagged)
		}
		if it.Deleted != "" {
			s = append(s, "deleted "+it.Deleted[:19])
		}
	}
	return strings.Join(s, ", ")
}

func (e *Engine) counts(t *testing.T) (blobs, snaps int) {
	t.Helper()
	ctx := context.Background()
	e.content.Walk(ctx, func(content.Info) error { blobs++; return nil })
	e.snaps.Walk(ctx, func(snapshot.Info) error { snaps++; return nil })
	return blobs, snaps
}

func TestImageRemoveAsDocker(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	e := newEngine(t)
	id := loadTestImage(t, e)
	short := id.Encoded()[:12]
	for _, tag := range []string{"busybox:other", "example.com/bb:1"} {
		if err := e.ImageTag(ctx, ImageTagOptions{Source: "busybox", Target: tag}); err != nil {
			t.Fatal(err)
		}
	}
	var users []ContainerRef
	e.imageUsers = func(_ context.Context, got digest.Digest) ([]ContainerRef, error) {
		if got != id {
			t.Errorf("asked about %s", got)
		}
		return users, nil
	}

	steps := []struct {
		name  string
		ref   string
		force bool
		users []ContainerRef
		want  string
		err   string
	}{
		{"a tag among others untags", "busybox:other", false, nil, "untagged busybox:other", ""},
		{"an ID in two repositories needs force", short, false, nil, "", "referenced in multiple repositories"},
		{"a running container blocks even forced", short, true, []ContainerRef{{ID: "c0ffee000000aaaa", Running: true}}, "", "being used by running container c0ffee000000"},
		{"another tag untags too", "busybox", false, nil, "untagged busybox:latest", ""},
		{"the last tag of an image a stopped container uses", "example.com/bb:1", false, []ContainerRef{{ID: "c0ffee000000aaaa"}}, "", "must force"},
		{"forced: untagged but kept for the container", "example.com/bb:1", true, []ContainerRef{{ID: "c0ffee000000aaaa"}}, "untagged example.com/bb:1", ""},
		{"now by ID, unused", short, false, nil, "deleted sha256:" + id.Encoded()[:12], ""},
		{"gone", short, false, nil, "", "No such image"},
	}
	for _, s := range steps {
		users = s.users
		res, err := e.ImageRemove(ctx, s.ref, ImageRemoveOptions{Force: s.force})
		if s.err != "" {
			if err == nil || !strings.Contains(err.Error(), s.err) {
				t.Fatalf("%s: got %v, want %q", s.name, err, s.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := items(res); got != s.want {
			t.Fatalf("%s: %q, want %q", s.name, got, s.want)
		}
	}
	if b, sn := e.counts(t); b != 0 || sn != 0 {
		t.Errorf("%d blobs, %d snapshots left", b, sn)
	}
}

func TestImagePruneKeepsTaggedAndUsed(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	e := newEngine(t)
	id := loadTestImage(t, e)
	res, err := e.ImagePrune(ctx, ImagePruneOptions{})
	if err != nil || len(res.ImagesDeleted) != 0 {
		t.Fatalf("dangling prune removed a tagged image: %+v %v", res, err)
	}
	e.imageUsers = func(context.Context, digest.Digest) ([]ContainerRef, error) {
		return []ContainerRef{{ID: "abc"}}, nil
	}
	if res, err = e.ImagePrune(ctx, ImagePruneOptions{All: true}); err != nil || len(res.ImagesDeleted) != 0 {
		t.Fatalf("prune -a removed a used image: %+v %v", res, err)
	}
	e.imageUsers = func(context.Context, digest.Digest) ([]ContainerRef, error) { return nil, nil }
	if _, err := e.ImagePrune(ctx, ImagePruneOptions{Filters: Filters{"bogus": {"1"}}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("bad filter: %v", err)
	}
	res, err = e.ImagePrune(ctx, ImagePruneOptions{All: true, Filters: Filters{"label": {"org.berth.test=busybox"}}})
	if err != nil || len(res.ImagesDeleted) != 2 || res.ImagesDeleted[1].Deleted != id.String() || res.SpaceReclaimed == 0 {
		t.Fatalf("prune -a: %+v %v", res, err)
	}
	if b, sn := e.counts(t); b != 0 || sn != 0 {
		t.Errorf("%d blobs, %d snapshots left", b, sn)
	}
}

func TestImageListFilters(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	e := newEngine(t)
	loadTestImage(t, e)
	rootfs, err := os.Open(testutil.Images(t).DockerArchive) // any tar will do as a rootfs
	if err != nil {
		t.Fatal(err)
	}
	defer rootfs.Close()
	imp, err := e.ImageImport(ctx, ImageImportOptions{Source: rootfs, Changes: []string{"LABEL kind=imported"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		filters Filters
		want    int
	}{
		{nil, 2},
		{Filters{"dangling": {"true"}}, 1},
		{Filters{"dangling": {"false"}}, 1},
		{Filters{"label": {"kind"}}, 1},
		{Filters{"label": {"kind=other"}}, 0},
		{Filters{"reference": {"busy*"}}, 1},
		{Filters{"reference": {"busybox:latest"}}, 1},
		{Filters{"before": {imp.ID.String()}}, 1},
		{Filters{"since": {"busybox"}}, 1},
	}
	for _, tt := range tests {
		res, err := e.ImageList(ctx, ImageListOptions{Filters: tt.filters})
		if err != nil {
			t.Fatalf("%v: %v", tt.filters, err)
		}
		if len(res.Images) != tt.want {
			t.Errorf("%v: %d images, want %d", tt.filters, len(res.Images), tt.want)
		}
	}
}

func TestConcurrentLoadsOfOneImage(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	for _, driver := range []string{"overlay", "vfs"} {
		t.Run(driver, func(t *testing.T) {
			e, err := New(ctx, Config{Root: t.TempDir(), StorageDriver: driver})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			archive, err := os.ReadFile(testutil.Images(t).DockerArchive)
			if err != nil {
				t.Fatal(err)
			}
			errs := make(chan error, 4)
			for range 4 {
				go func() {
					_, err := e.ImageLoad(ctx, ImageLoadOptions{Input: bytes.NewReader(archive)})
					errs <- err
				}()
			}
			for range 4 {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
			list, err := e.ImageList(ctx, ImageListOptions{})
			if err != nil || len(list.Images) != 1 {
				t.Fatalf("%d images, %v", len(list.Images), err)
			}
			if b, sn := e.counts(t); b != 4 || sn != 2 {
				t.Errorf("%d blobs, %d snapshots; want 4 and 2", b, sn)
			}
		})
	}
}

func TestNewCollectsWhatACrashLeft(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	root := t.TempDir()
	e, err := New(ctx, Config{Root: root, StorageDriver: "vfs"})
	if err != nil {
		t.Fatal(err)
	}
	loadTestImage(t, e)
	// A load that died after storing its blobs and unpacking a layer,
	// before recording the image.
	orphan := []byte("a layer nobody recorded")
	if _, err := content.Write(ctx, e.content, ocispec.Descriptor{Digest: digest.FromBytes(orphan), Size: int64(len(orphan))}, bytes.NewReader(orphan)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.snaps.Prepare(ctx, "unpack-crashed", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.snaps.Commit(ctx, digest.FromString("orphan chain").String(), "unpack-crashed"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.snaps.Prepare(ctx, "unpack-midway", ""); err != nil {
		t.Fatal(err)
	}
	e.Close()

	e, err = New(ctx, Config{Root: root, StorageDriver: "vfs"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if b, sn := e.counts(t); b != 4 || sn != 2 {
		t.Errorf("%d blobs, %d snapshots after restart; want the image's 4 and 2", b, sn)
	}
}

// addRepoDigest gives the image id a repo digest name@<its manifest>, as
// a pull or push would.
func addRepoDigest(t *testing.T, e *Engine, id digest.Digest, name string) {
	t.Helper()
	ctx := context.Background()
	r, err := e.images.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	rd := name + "@" + r.Target.Digest.String()
	r.RepoTags, r.RepoDigests = nil, []string{rd}
	if _, err := e.images.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
}

func TestImageRemoveRepoDigests(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	cases := []struct {
		name    string
		tags    []string // besides busybox:latest
		digests []string // repositories given a repo digest
		rm      string   // "@" means busybox@<manifest digest>
		want    string
		left    []string // names the image keeps; nil means deleted
	}{
		{"last tag takes the repository's digests and deletes", nil, []string{"docker.io/library/busybox"}, "busybox",
			"untagged busybox:latest, untagged busybox@, deleted", nil},
		{"the digest goes alone while the tag stays", nil, []string{"docker.io/library/busybox"}, "@",
			"untagged busybox@", []string{"busybox:latest"}},
		{"another repository's tag keeps the image", []string{"example.com/bb:1"}, []string{"docker.io/library/busybox"}, "busybox",
			"untagged busybox:latest, untagged busybox@", []string{"example.com/bb:1"}},
		{"another repository's digest stays", nil, []string{"docker.io/library/busybox", "example.com/bb"}, "busybox",
			"untagged busybox:latest, untagged busybox@", []string{"example.com/bb@"}},
		{"another tag of the repository keeps its digests", []string{"busybox:2"}, []string{"docker.io/library/busybox"}, "busybox",
			"untagged busybox:latest", []string{"busybox:2", "busybox@"}},
		{"another repository's name for the manifest is not a name of the image", nil, []string{"docker.io/library/busybox"}, "example.com/other@",
			"error", []string{"busybox:latest", "busybox@"}},
		{"a digest that is the last name deletes", nil, []string{"example.com/bb"}, "busybox;example.com/bb@",
			"untagged example.com/bb@, deleted", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(t)
			id := loadTestImage(t, e)
			for _, tag := range c.tags {
				if err := e.ImageTag(ctx, ImageTagOptions{Source: id.String(), Target: tag}); err != nil {
					t.Fatal(err)
				}
			}
			for _, repo := range c.digests {
				addRepoDigest(t, e, id, repo)
			}
			r, _ := e.images.Get(ctx, id)
			md := r.Target.Digest.String()
			short := func(s string) string { return strings.ReplaceAll(s, md, "") }
			// rm is ";"-separated: every ref but the last is removed first;
			// a trailing "@" stands for the manifest digest.
			refs := strings.Split(c.rm, ";")
			for i := range refs {
				if refs[i] == "@" {
					refs[i] = "busybox@"
				}
				if strings.HasSuffix(refs[i], "@") {
					refs[i] += md
				}
			}
			for _, pre := range refs[:len(refs)-1] {
				if _, err := e.ImageRemove(ctx, pre, ImageRemoveOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			ref := refs[len(refs)-1]
			res, err := e.ImageRemove(ctx, ref, ImageRemoveOptions{})
			if c.want == "error" {
				if !errors.Is(err, errdefs.ErrNotFound) || len(res.Items) != 0 {
					t.Fatalf("got %v, %v; want No such image", res.Items, err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			got := short(items(res))
			if c.want == "error" {
				got = "error"
			}
			got = strings.ReplaceAll(got, "deleted "+id.String()[:19], "deleted")
			if got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
			after, err := e.images.Get(ctx, id)
			if c.left == nil {
				if !errors.Is(err, errdefs.ErrNotFound) {
					t.Errorf("image still there: %v %v", after, err)
				}
				if b, sn := e.counts(t); b != 0 || sn != 0 {
					t.Errorf("%d blobs, %d snapshots left", b, sn)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, n := range append(after.RepoTags, after.RepoDigests...) {
				names = append(names, short(image.Familiar(n)))
			}
			if strings.Join(names, " ") != strings.Join(c.left, " ") {
				t.Errorf("left %q, want %q", names, c.left)
			}
		})
	}
}

// TestImageEvents: the image methods publish docker's events, with the
// image ID as actor and as "name" (the reference for tag), the image's
// labels, and a prune event with what was reclaimed.
func TestImageEvents(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	e := newEngine(t)
	_, sub := e.Events().Subscribe(time.Time{}, nil)
	defer sub.Close()
	id := loadTestImage(t, e).String()
	if err := e.ImageTag(ctx, ImageTagOptions{Source: "busybox", Target: "example.com/bb:1"}); err != nil {
		t.Fatal(err)
	}
	if err := e.ImageTag(ctx, ImageTagOptions{Source: "nosuch", Target: "x:1"}); err == nil {
		t.Fatal("tag of a missing image worked")
	}
	if err := e.ImageSave(ctx, ImageSaveOptions{Refs: []string{"busybox"}, Output: io.Discard}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ImageRemove(ctx, "example.com/bb:1", ImageRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ImageRemove(ctx, "busybox", ImageRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	tw.WriteHeader(&tar.Header{Name: "f", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	imp, err := e.ImageImport(ctx, ImageImportOptions{Source: &tarball, Changes: []string{"LABEL colour=blue"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ImagePrune(ctx, ImagePruneOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(sub.C) > 0 {
		m := <-sub.C
		if m.Type != "image" {
			t.Errorf("event of type %q", m.Type)
		}
		got = append(got, strings.Join([]string{string(m.Action), m.Actor.ID, m.Actor.Attributes["name"]}, " "))
		// docker copies the image's labels into its events, while the
		// image is there to read them from.
		if m.Action == "import" && m.Actor.Attributes["colour"] != "blue" {
			t.Errorf("import event without the image's label: %v", m.Actor.Attributes)
		}
	}
	i := imp.ID.String()
	want := []string{
		"load " + id + " " + id,
		"tag " + id + " example.com/bb:1",
		"save " + id + " " + id,
		"untag " + id + " " + id,
		"untag " + id + " " + id,
		"delete " + id + " " + id,
		"import " + i + " " + i,
		"delete " + i + " " + i,
		"prune  ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestImageInspectDocker: inspect shows what docker's does: the layer
// directories (overlay2's keys) for overlay, RootFS, repo digests and the
// last tag time; and its view of the layers leaves nothing behind.
func TestImageInspectDocker(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	for _, driver := range []string{"overlay", "vfs"} {
		t.Run(driver, func(t *testing.T) {
			e, err := New(ctx, Config{Root: t.TempDir(), StorageDriver: driver})
			if err != nil {
				t.Skipf("%s driver: %v", driver, err)
			}
			t.Cleanup(func() { e.Close() })
			id := loadTestImage(t, e)
			addRepoDigest(t, e, id, "docker.io/library/busybox")
			before := time.Now().UTC()
			if err := e.ImageTag(ctx, ImageTagOptions{Source: "busybox", Target: "bb:2"}); err != nil {
				t.Fatal(err)
			}
			_, snapsBefore := e.counts(t)
			res, err := e.ImageInspect(ctx, "bb:2")
			if err != nil {
				t.Fatal(err)
			}
			if _, sn := e.counts(t); sn != snapsBefore {
				t.Errorf("%d snapshots after inspect, %d before", sn, snapsBefore)
			}
			if res.GraphDriver.Name != e.StorageDriver() {
				t.Errorf("GraphDriver.Name %q, want %q", res.GraphDriver.Name, e.StorageDriver())
			}
			d := res.GraphDriver.Data
			if e.StorageDriver() == "overlay" {
				lowers := strings.Split(d["LowerDir"], ":")
				if len(lowers) != 1 || !dirExists(lowers[0]) || !dirExists(d["UpperDir"]) || d["UpperDir"] == lowers[0] {
					t.Errorf("GraphDriver.Data %v: want an existing UpperDir and one LowerDir", d)
				}
				// The second layer whites out /etc/old.conf: the upper dir
				// is that layer.
				if fi, err := os.Lstat(filepath.Join(d["UpperDir"], "etc", "old.conf")); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
					t.Errorf("UpperDir %s is not the top layer: %v %v", d["UpperDir"], fi, err)
				}
			} else if len(d) != 0 {
				t.Errorf("GraphDriver.Data %v for %s", d, e.StorageDriver())
			}
			if len(res.RootFS.Layers) != 2 || res.RootFS.Type != "layers" {
				t.Errorf("RootFS %+v", res.RootFS)
			}
			if len(res.RepoDigests) != 1 || !strings.HasPrefix(res.RepoDigests[0], "busybox@sha256:") {
				t.Errorf("RepoDigests %v", res.RepoDigests)
			}
			if res.Metadata.LastTagTime.Before(before.Add(-time.Second)) {
				t.Errorf("LastTagTime %v, tagged at %v", res.Metadata.LastTagTime, before)
			}
		})
	}
}

// TestImagePlatform: inspect and save with --platform accept the image's
// own platform (either spelling the API uses) and refuse another in
// docker's words, writing nothing.
func TestImagePlatform(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	e := newEngine(t)
	loadTestImage(t, e)
	for _, tc := range []struct {
		platform string
		ok       bool
	}{
		{"", true},
		{"linux/amd64", true},
		{`{"os":"linux","architecture":"amd64"}`, true},
		{"linux/arm64", false},
		{`{"os":"linux","architecture":"s390x"}`, false},
	} {
		t.Run(tc.platform, func(t *testing.T) {
			_, err := e.ImageInspectWith(ctx, "busybox", ImageInspectOptions{Platform: tc.platform})
			var out bytes.Buffer
			serr := e.ImageSave(ctx, ImageSaveOptions{Refs: []string{"busybox"}, Output: &out, Platform: tc.platform})
			if tc.ok {
				if err != nil || serr != nil {
					t.Fatalf("inspect: %v, save: %v", err, serr)
				}
				return
			}
			for what, err := range map[string]error{"inspect": err, "save": serr} {
				if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "was found but does not match the specified platform") {
					t.Errorf("%s: %v, want docker's not-found", what, err)
				}
			}
			if out.Len() != 0 {
				t.Errorf("save wrote %d bytes", out.Len())
			}
		})
	}
}
