package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

var update = flag.Bool("update", false, "rewrite testdata/hostile/*.tar from the table in hostileCases")

// hostileCase is a layer that tries to write, link or delete outside its
// destination. Whatever happens, nothing outside may change; inside lists
// where the write must have landed instead (when the layer succeeds).
type hostileCase struct {
	name    string
	entries []ent
	mode    Whiteouts
	wantErr bool
	inside  []string
}

var hostileCases = []hostileCase{
	{name: "dotdot-file", entries: []ent{{name: "../../../../../../../../tmp/berth-escape-dotdot", body: "x"}},
		inside: []string{"tmp/berth-escape-dotdot"}},
	{name: "absolute-file", entries: []ent{{name: "/tmp/berth-escape-abs", body: "x"}},
		inside: []string{"tmp/berth-escape-abs"}},
	{name: "absolute-symlink-then-file", entries: []ent{
		{name: "tmp/"}, {name: "evil", typ: tar.TypeSymlink, link: "/tmp"}, {name: "evil/berth-escape-symfile", body: "x"}},
		inside: []string{"tmp/berth-escape-symfile"}},
	{name: "relative-symlink-escape", entries: []ent{
		{name: "tmp/"}, {name: "up", typ: tar.TypeSymlink, link: "../../../../../../../tmp"}, {name: "up/berth-escape-rel", body: "x"}},
		inside: []string{"tmp/berth-escape-rel"}},
	{name: "symlink-to-parent-then-file", entries: []ent{
		{name: "p", typ: tar.TypeSymlink, link: ".."}, {name: "p/outside-file", body: "pwned"}},
		inside: []string{"outside-file"}},
	{name: "link-through-links", entries: []ent{
		{name: "tmp/"}, {name: "l1", typ: tar.TypeSymlink, link: "l2"}, {name: "l2", typ: tar.TypeSymlink, link: "../../../../tmp"},
		{name: "l1/berth-escape-chain", body: "x"}},
		inside: []string{"tmp/berth-escape-chain"}},
	{name: "dangling-symlink-dir", entries: []ent{
		{name: "d", typ: tar.TypeSymlink, link: "/nonexistent-berth"}, {name: "d/f", body: "x"}},
		wantErr: true},
	{name: "hardlink-dotdot", entries: []ent{{name: "hl", typ: tar.TypeLink, link: "../../../../../../etc/passwd"}},
		wantErr: true},
	{name: "hardlink-through-symlink", entries: []ent{
		{name: "etcl", typ: tar.TypeSymlink, link: "/etc"}, {name: "hl", typ: tar.TypeLink, link: "etcl/passwd"}},
		wantErr: true},
	{name: "hardlink-to-outside-sibling", entries: []ent{
		{name: "p", typ: tar.TypeSymlink, link: ".."}, {name: "hl", typ: tar.TypeLink, link: "p/outside-file"}},
		wantErr: true},
	{name: "whiteout-dotdot", mode: WhiteoutsDelete, entries: []ent{{name: "../.wh.outside-file"}}},
	{name: "whiteout-through-symlink", mode: WhiteoutsDelete, entries: []ent{
		{name: "s", typ: tar.TypeSymlink, link: "../.."}, {name: "s/.wh.outside-file"}}},
	{name: "opaque-through-symlink", mode: WhiteoutsDelete, entries: []ent{
		{name: "s", typ: tar.TypeSymlink, link: "/.."}, {name: "s/.wh..wh..opq"}}},
	{name: "whiteout-names-parent", entries: []ent{{name: "a/.wh..."}}, wantErr: true},
	{name: "replace-symlink-with-file", entries: []ent{
		{name: "p", typ: tar.TypeSymlink, link: "../outside-file"}, {name: "p", body: "mine"}},
		inside: []string{"p"}},
	{name: "forged-overlay-xattr", entries: []ent{
		{name: "f", body: "x", xattrs: map[string]string{"trusted.overlay.redirect": "/etc", "user.ok": "1"}}},
		inside: []string{"f"}},
}

func hostileTar(t *testing.T, c hostileCase) []byte {
	path := filepath.Join("testdata", "hostile", c.name+".tar")
	gen := tarOf(t, c.entries)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, gen, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with go test -run TestHostile -update)", err)
	}
	if !bytes.Equal(b, gen) {
		t.Fatalf("%s differs from its case in hostileCases (regenerate with -update)", path)
	}
	return b
}

func TestHostileLayersStayInside(t *testing.T) {
	for _, c := range hostileCases {
		for _, mode := range []Whiteouts{WhiteoutsOverlay, WhiteoutsDelete} {
			if c.mode != 0 && c.mode != mode {
				continue
			}
			t.Run(c.name+"/"+mode.String(), func(t *testing.T) {
				testutil.RequireRoot(t)
				layer := hostileTar(t, c)
				base := t.TempDir()
				root := filepath.Join(base, "root")
				if err := os.Mkdir(root, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(base, "outside-file"), []byte("precious"), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(base, "victim"), []byte("precious"), 0o644); err != nil {
					t.Fatal(err)
				}
				before := listing(t, base, true)
				hostBefore := hostState()

				_, err := Apply(context.Background(), root, bytes.NewReader(layer), ApplyOptions{Whiteouts: mode})
				if c.wantErr && err == nil {
					t.Errorf("want an error, got none")
				}
				if !c.wantErr && err != nil {
					t.Errorf("unexpected error: %v", err)
				}
				var after []string
				for _, l := range listing(t, base, true) {
					if l != "root "+lineSuffix(l) && !hasPrefix(l, "root/") {
						after = append(after, l)
					}
				}
				var outsideBefore []string
				for _, l := range before {
					if !hasPrefix(l, "root") {
						outsideBefore = append(outsideBefore, l)
					}
				}
				if d := diffListings(outsideBefore, after); d != "" {
					t.Errorf("the layer changed things outside its root:\n%s", d)
				}
				if h := hostState(); !slices.Equal(h, hostBefore) {
					t.Errorf("host paths changed: before %q after %q", hostBefore, h)
				}
				if err == nil {
					for _, p := range c.inside {
						if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
							t.Errorf("want %s inside the root: %v", p, err)
						}
					}
				}
			})
		}
	}
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func lineSuffix(l string) string {
	if i := bytes.IndexByte([]byte(l), ' '); i >= 0 {
		return l[i+1:]
	}
	return ""
}

// hostState lists the host paths a broken extractor would touch.
func hostState() []string {
	var out []string
	for _, p := range []string{"/tmp/berth-escape-dotdot", "/tmp/berth-escape-abs", "/tmp/berth-escape-symfile",
		"/tmp/berth-escape-rel", "/tmp/berth-escape-chain", "/outside-file", "/nonexistent-berth"} {
		if _, err := os.Lstat(p); err == nil {
			out = append(out, p)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat("/etc/passwd", &st); err == nil {
		out = append(out, "passwd nlink "+string(rune('0'+st.Nlink)))
	}
	return out
}

func (w Whiteouts) String() string {
	switch w {
	case WhiteoutsOverlay:
		return "overlay"
	case WhiteoutsDelete:
		return "delete"
	}
	return "unset"
}

func TestCompressionsGiveSameDiffID(t *testing.T) {
	testutil.RequireRoot(t)
	plain := tarOf(t, []ent{{name: "a/"}, {name: "a/b", body: "hello"}})
	var want ApplyResult
	for _, c := range []struct {
		name string
		b    []byte
	}{{"plain", plain}, {"gzip", gzipOf(t, plain)}, {"zstd", zstdOf(t, plain)}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			res, err := Apply(context.Background(), dir, bytes.NewReader(c.b), ApplyOptions{Whiteouts: WhiteoutsDelete})
			if err != nil {
				t.Fatal(err)
			}
			if want.DiffID == "" {
				want = res
			}
			if res != want || res.Size != int64(len(plain)) {
				t.Fatalf("got %+v, want %+v size %d", res, want, len(plain))
			}
			if b, err := os.ReadFile(filepath.Join(dir, "a", "b")); err != nil || string(b) != "hello" {
				t.Fatalf("content %q %v", b, err)
			}
		})
	}
}

func TestBadInputIsClearError(t *testing.T) {
	testutil.RequireRoot(t)
	good := tarOf(t, []ent{{name: "a", body: "hello world, a little longer than a block? no"}})
	tests := []struct {
		name string
		b    []byte
		opts ApplyOptions
	}{
		{"diffID mismatch", good, ApplyOptions{Whiteouts: WhiteoutsOverlay, DiffID: "sha256:0000000000000000000000000000000000000000000000000000000000000000"}},
		{"truncated header", good[:300], ApplyOptions{Whiteouts: WhiteoutsOverlay}},
		{"truncated body", good[:520], ApplyOptions{Whiteouts: WhiteoutsOverlay}},
		{"truncated gzip", gzipOf(t, good)[:30], ApplyOptions{Whiteouts: WhiteoutsOverlay}},
		{"no whiteout mode", good, ApplyOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(tt.b), tt.opts)
			if err == nil {
				t.Fatal("want an error")
			}
			if tt.name != "truncated gzip" && !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("want ErrInvalidArgument, got %v", err)
			}
			t.Log(err)
		})
	}
}

func TestMetadataPreserved(t *testing.T) {
	testutil.RequireRoot(t)
	mtime := time.Date(2020, 2, 3, 4, 5, 6, 7000, time.UTC)
	layer := tarOf(t, []ent{
		{name: "d/", mode: 0o1777, mtime: mtime, uid: 12, gid: 34},
		{name: "d/suid", body: "x", mode: 0o4755, uid: 1000, gid: 1000, mtime: mtime},
		{name: "d/x", body: "xattr", xattrs: map[string]string{"user.berth": "yes", "security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}},
		{name: "d/hard", typ: tar.TypeLink, link: "d/suid"},
		{name: "d/sym", typ: tar.TypeSymlink, link: "suid", uid: 5, gid: 6},
		{name: "d/fifo", typ: tar.TypeFifo, mode: 0o600},
		{name: "d/null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3},
	})
	dir := t.TempDir()
	if _, err := Apply(context.Background(), dir, bytes.NewReader(layer), ApplyOptions{Whiteouts: WhiteoutsOverlay}); err != nil {
		t.Fatal(err)
	}
	st := func(p string) unix.Stat_t {
		var s unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, p), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	d := st("d")
	if d.Mode&0o7777 != 0o1777 || d.Uid != 12 || d.Gid != 34 {
		t.Errorf("dir: mode %o uid %d gid %d", d.Mode&0o7777, d.Uid, d.Gid)
	}
	if d.Mtim.Sec != mtime.Unix() || d.Mtim.Nsec != 7000 {
		t.Errorf("dir mtime %v, want %v (set after its contents)", d.Mtim, mtime)
	}
	s := st("d/suid")
	if s.Mode&0o7777 != 0o4755 || s.Uid != 1000 || s.Nlink != 2 {
		t.Errorf("suid file: mode %o uid %d nlink %d", s.Mode&0o7777, s.Uid, s.Nlink)
	}
	if h := st("d/hard"); h.Ino != s.Ino {
		t.Errorf("hard link is a different inode")
	}
	if l := st("d/sym"); l.Mode&unix.S_IFMT != unix.S_IFLNK || l.Uid != 5 {
		t.Errorf("symlink: mode %o uid %d", l.Mode, l.Uid)
	}
	if f := st("d/fifo"); f.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifo: mode %o", f.Mode)
	}
	if c := st("d/null"); c.Mode&unix.S_IFMT != unix.S_IFCHR || c.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("char device: mode %o rdev %d", c.Mode, c.Rdev)
	}
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(filepath.Join(dir, "d/x"), "user.berth", buf)
	if err != nil || string(buf[:n]) != "yes" {
		t.Errorf("user xattr: %q %v", buf[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(dir, "d/x"), "security.capability", buf); err != nil {
		t.Errorf("file capability lost: %v", err)
	}
}

func TestWhiteouts(t *testing.T) {
	testutil.RequireRoot(t)
	lower := tarOf(t, []ent{
		{name: "etc/"}, {name: "etc/old", body: "old"}, {name: "etc/keep", body: "keep"},
		{name: "opt/"}, {name: "opt/d/"}, {name: "opt/d/old", body: "old"}, {name: "opt/d/sub/"}, {name: "opt/d/sub/deep", body: "deep"},
		{name: "opt/e/"}, {name: "opt/e/x/"}, {name: "opt/e/x/old", body: "old"},
	})
	upper := tarOf(t, []ent{
		{name: "etc/"}, {name: "etc/.wh.old"},
		{name: "opt/d/"}, {name: "opt/d/.wh..wh..opq"}, {name: "opt/d/new", body: "new"},
		// The opaque marker after the layer's own entries, and a kept
		// directory whose old content must still go.
		{name: "opt/e/"}, {name: "opt/e/x/"}, {name: "opt/e/x/new", body: "new"}, {name: "opt/e/.wh..wh..opq"},
	})
	t.Run("delete", func(t *testing.T) {
		dir := t.TempDir()
		for _, l := range [][]byte{lower, upper} {
			if _, err := Apply(context.Background(), dir, bytes.NewReader(l), ApplyOptions{Whiteouts: WhiteoutsDelete}); err != nil {
				t.Fatal(err)
			}
		}
		want := []string{". -rwxr-xr-x dir", "etc -rwxr-xr-x dir", "etc/keep -rw-r--r-- file keep", "opt -rwxr-xr-x dir",
			"opt/d -rwxr-xr-x dir", "opt/d/new -rw-r--r-- file new", "opt/e -rwxr-xr-x dir", "opt/e/x -rwxr-xr-x dir", "opt/e/x/new -rw-r--r-- file new"}
		got := listing(t, dir, false)
		got[0] = ". -rwxr-xr-x dir" // t.TempDir's own mode
		if d := diffListings(want, got); d != "" {
			t.Fatalf("tree differs:\n%s", d)
		}
	})
	t.Run("overlay", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := Apply(context.Background(), dir, bytes.NewReader(upper), ApplyOptions{Whiteouts: WhiteoutsOverlay}); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, "etc/old"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("etc/old: want a 0/0 char device, got mode %o rdev %d err %v", st.Mode, st.Rdev, err)
		}
		buf := make([]byte, 8)
		for _, d := range []string{"opt/d", "opt/e"} {
			n, err := unix.Lgetxattr(filepath.Join(dir, d), "trusted.overlay.opaque", buf)
			if err != nil || string(buf[:n]) != "y" {
				t.Errorf("%s: opaque xattr %q %v", d, buf[:n], err)
			}
		}
	})
}
