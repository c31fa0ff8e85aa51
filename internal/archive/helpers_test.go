package archive

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// ent is one tar entry; a trailing slash in name makes a directory.
type ent struct {
	name   string
	typ    byte // 0: directory for "x/", regular file otherwise
	body   string
	link   string
	mode   int64
	uid    int
	gid    int
	xattrs map[string]string
	major  int64
	minor  int64
	mtime  time.Time
}

func tarOf(t testing.TB, es []ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			Devmajor: e.major, Devminor: e.minor, ModTime: e.mtime, Format: tar.FormatPAX}
		if h.ModTime.IsZero() {
			h.ModTime = epoch
		}
		if h.Typeflag == 0 {
			if strings.HasSuffix(e.name, "/") {
				h.Typeflag = tar.TypeDir
			} else {
				h.Typeflag = tar.TypeReg
			}
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipOf(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdOf(t testing.TB, b []byte) []byte {
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}

// listing is a tree's content in a comparable form: one line per path with
// type, permissions, owner and (for files) content or (for links) target.
func listing(t testing.TB, root string, withOwner bool) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		line := rel + " " + fs.FileMode(st.Mode&0o7777).String()
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			line += " dir"
		case unix.S_IFLNK:
			l, _ := os.Readlink(p)
			line += " -> " + l
		case unix.S_IFREG:
			b, _ := os.ReadFile(p)
			if len(b) > 64 {
				b = b[:64]
			}
			line += " file " + string(b)
		case unix.S_IFCHR:
			line += " chr"
		default:
			line += " other"
		}
		if withOwner {
			line += " " + string(rune('0'+st.Uid%10))
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func diffListings(want, got []string) string {
	w := map[string]bool{}
	g := map[string]bool{}
	for _, l := range want {
		w[l] = true
	}
	for _, l := range got {
		g[l] = true
	}
	var b strings.Builder
	for _, l := range want {
		if !g[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range got {
		if !w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}
