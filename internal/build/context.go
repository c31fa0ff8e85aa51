package build

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
)

// maxDockerfile caps the Dockerfile and .dockerignore read into memory.
const maxDockerfile = 16 << 20

// readRegular reads name from the context: it must resolve inside root
// (os.Root follows symlinks only within it) and be a regular file, so a
// hostile context cannot make the daemon read a host file or a device
// node it planted.
func readRegular(root *os.Root, name string, limit int64) ([]byte, error) {
	// Stat before open: opening a FIFO would wait for a writer forever.
	// Nobody else writes in the context directory, so the check holds.
	fi, err := root.Stat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file: %w", name, errdefs.ErrInvalidArgument)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes: %w", name, limit, errdefs.ErrInvalidArgument)
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// unpackContext extracts the build context tar (plain or compressed) into
// dir. archive.Apply keeps every entry, symlinks and hard links included,
// inside dir whatever the tar says.
func unpackContext(ctx context.Context, dir string, r io.Reader) error {
	if r == nil {
		return nil
	}
	if uid, gid := os.Geteuid(), os.Getegid(); uid != 0 {
		// Apply keeps the tar's owners, which only root may set. Who
		// owns the context does not matter (COPY sets its own), so a
		// build as another user takes the files as its own.
		dr, err := archive.Decompress(r)
		if err != nil {
			return fmt.Errorf("read build context: %w", err)
		}
		defer dr.Close()
		pr, pw := io.Pipe()
		defer pr.Close()
		go func() { pw.CloseWithError(reown(dr, pw, uid, gid)) }()
		r = pr
	}
	if _, err := archive.Apply(ctx, dir, r, archive.ApplyOptions{Whiteouts: archive.WhiteoutsDelete}); err != nil {
		return fmt.Errorf("read build context: %w", err)
	}
	return nil
}

// reown copies the tar in r to w with every entry owned by uid:gid.
func reown(r io.Reader, w io.Writer, uid, gid int) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		h.Uid, h.Gid = uid, gid
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// applyDockerignore removes from the context what .dockerignore excludes,
// so no COPY can see it. The Dockerfile and .dockerignore stay readable:
// they were read before this.
func applyDockerignore(root *os.Root) error {
	dir := root.Name()
	b, err := readRegular(root, ".dockerignore", maxDockerfile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read .dockerignore: %w", err)
	}
	pats, err := ignorefile.ReadAll(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("read .dockerignore: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(pats) == 0 {
		return nil
	}
	pm, err := patternmatcher.New(pats)
	if err != nil {
		return fmt.Errorf("read .dockerignore: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	var drop []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		skip, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			return err
		}
		if skip {
			drop = append(drop, p)
			// A directory with an exception inside ("!dir/keep") must
			// be walked; without one it can go whole.
			if d.IsDir() && !pm.Exclusions() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply .dockerignore: %w", err)
	}
	// Deepest first, so a kept file inside an excluded directory keeps
	// its directory.
	slices.Reverse(drop)
	for _, p := range drop {
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
			_ = os.Remove(p) // fails, rightly, when an exception is inside
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("apply .dockerignore: %w", err)
		}
	}
	return nil
}

// source is one file to copy: where it is in its root and where it goes,
// relative to the directory the copy extracts into.
type source struct {
	rel  string // in the source root, slash-separated
	dest string // in the extraction directory
	info fs.FileInfo
	link string
	top  bool // named by the instruction itself (not found in a directory)
}

// owner is the uid and gid copied files get (docker: root unless --chown).
type owner struct{ uid, gid int }

// copyPlan is what a COPY or ADD writes: its sources and how.
type copyPlan struct {
	root    *os.Root
	sources []source
	// destIsDir: the destination is a directory the sources go into.
	destIsDir bool
	// single is the one file's name when the destination names a file.
	dest  string
	chmod *fs.FileMode
	// archives are ADD's local tar files, extracted rather than copied.
	archives []string
}

// hasMeta reports whether p is a glob pattern.
func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// cleanSource makes a COPY source relative to its root, refusing one that
// climbs out of it (docker: "Forbidden path outside the build context").
func cleanSource(src string) (string, error) {
	rel := path.Clean(src)
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("forbidden path outside the build context: %s: %w", src, errdefs.ErrInvalidArgument)
	}
	rel = strings.TrimPrefix(path.Clean("/"+rel), "/")
	if rel == "" {
		rel = "."
	}
	return rel, nil
}

// collectSources expands srcs (globs included) in root into the files to
// copy. Each source directory contributes its contents, not itself.
// Symlinks named as sources are followed, within root only; symlinks
// found inside directories are copied as links.
func collectSources(root *os.Root, srcs []string, allowWildcard bool) (out []source, tops int, anyDir bool, err error) {
	for _, s := range srcs {
		rel, err := cleanSource(s)
		if err != nil {
			return nil, 0, false, err
		}
		var matches []string
		if allowWildcard && hasMeta(rel) {
			err := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if ok, _ := path.Match(rel, p); ok && p != "." {
					matches = append(matches, p)
				}
				return nil
			})
			if err != nil {
				return nil, 0, false, err
			}
			if len(matches) == 0 {
				return nil, 0, false, fmt.Errorf("no source files were specified: %s: %w", s, errdefs.ErrInvalidArgument)
			}
		} else {
			matches = []string{rel}
		}
		tops += len(matches)
		for _, m := range matches {
			fi, err := root.Stat(m)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil, 0, false, fmt.Errorf("file not found in build context or excluded by .dockerignore: stat %s: file does not exist: %w", s, errdefs.ErrNotFound)
				}
				return nil, 0, false, fmt.Errorf("source %s: %w: %w", s, err, errdefs.ErrInvalidArgument)
			}
			if !fi.IsDir() {
				out = append(out, source{rel: m, dest: path.Base(m), info: fi, top: true})
				continue
			}
			anyDir = true
			err = fs.WalkDir(root.FS(), m, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if p == m {
					return nil
				}
				info, err := root.Lstat(p)
				if err != nil {
					return err
				}
				sc := source{rel: p, dest: strings.TrimPrefix(p, strings.TrimSuffix(m, "/")+"/"), info: info}
				if m == "." {
					sc.dest = p
				}
				if info.Mode()&fs.ModeSymlink != 0 {
					if sc.link, err = root.Readlink(p); err != nil {
						return err
					}
				}
				out = append(out, sc)
				return nil
			})
			if err != nil {
				return nil, 0, false, fmt.Errorf("source %s: %w", s, err)
			}
		}
	}
	return out, tops, anyDir, nil
}

// hash is the content hash of the copy for the cache key: each file's
// destination, type, mode, owner, link target and content. Times are left
// out, as docker does: a touched but unchanged file still hits the cache.
func (p *copyPlan) hash(own owner) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "dir=%v dest=%s own=%d:%d chmod=%v\n", p.destIsDir, p.dest, own.uid, own.gid, p.chmod)
	for _, s := range p.sources {
		fmt.Fprintf(h, "%q %v %q\n", s.dest, s.info.Mode(), s.link)
		if s.info.Mode().IsRegular() {
			if err := copyFile(h, p.root, s.rel); err != nil {
				return "", err
			}
		}
	}
	for _, a := range p.archives {
		fmt.Fprintf(h, "archive %q\n", a)
		if err := copyFile(h, p.root, a); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// copyFile writes the content of name in root to w.
func copyFile(w io.Writer, root *os.Root, name string) error {
	f, err := root.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// writeTar writes the sources as a tar whose names are their
// destinations, owned by own, with chmod applied.
func (p *copyPlan) writeTar(w io.Writer, own owner) error {
	tw := tar.NewWriter(w)
	for _, s := range p.sources {
		name := s.dest
		if !p.destIsDir {
			name = path.Base(p.dest)
		}
		hdr, err := tar.FileInfoHeader(s.info, s.link)
		if err != nil {
			return err
		}
		hdr.Name = name
		if s.info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid = own.uid, own.gid
		hdr.Uname, hdr.Gname = "", ""
		hdr.Format = tar.FormatPAX
		if p.chmod != nil && s.info.Mode()&fs.ModeSymlink == 0 {
			hdr.Mode = int64(*p.chmod)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if s.info.Mode().IsRegular() {
			if err := copyFile(tw, p.root, s.rel); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}
