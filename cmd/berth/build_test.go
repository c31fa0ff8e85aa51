package main

import (
	"archive/tar"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tarNames lists a tar's entries and the content of regular files.
func tarNames(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want root", h.Name, h.Uid, h.Gid)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = string(b)
	}
}

func TestBuildContext(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"Dockerfile": "FROM busybox\n", ".dockerignore": "secret\n*.log\n!keep.log\n",
		"app.txt": "app", "secret/key": "k", "x.log": "x", "keep.log": "kept", "sub/Dockerfile.dev": "FROM scratch\n",
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	outside := filepath.Join(t.TempDir(), "Other.Dockerfile")
	os.WriteFile(outside, []byte("FROM busybox\nRUN true\n"), 0o644)

	tests := []struct {
		name, path, file, stdin string
		wantFile                string // the dockerfile name sent; "random" for .dockerfile.*
		has, lacks              []string
	}{
		{name: "directory", path: dir, wantFile: "", has: []string{"Dockerfile", "app.txt", "keep.log", ".dockerignore"}, lacks: []string{"secret/key", "x.log", "secret/"}},
		{name: "dockerfile inside", path: dir, file: filepath.Join(dir, "sub/Dockerfile.dev"), wantFile: "sub/Dockerfile.dev", has: []string{"sub/Dockerfile.dev"}},
		{name: "dockerfile outside", path: dir, file: outside, wantFile: "random", has: []string{"app.txt"}},
		{name: "dockerfile on stdin", path: dir, file: "-", stdin: "FROM busybox\n", wantFile: "random"},
		{name: "stdin dockerfile", path: "-", stdin: "FROM busybox\nCMD [\"true\"]\n", wantFile: "Dockerfile", has: []string{"Dockerfile"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, name, err := buildContext(strings.NewReader(tc.stdin), tc.path, tc.file)
			if err != nil {
				t.Fatal(err)
			}
			files := tarNames(t, r)
			switch {
			case tc.wantFile == "random":
				if !strings.HasPrefix(name, ".dockerfile.") || files[name] == "" {
					t.Errorf("dockerfile sent as %q; files %v", name, slices.Collect(maps.Keys(files)))
				}
			case name != tc.wantFile:
				t.Errorf("dockerfile %q, want %q", name, tc.wantFile)
			}
			for _, h := range tc.has {
				if _, ok := files[h]; !ok {
					t.Errorf("context lacks %s", h)
				}
			}
			for _, l := range tc.lacks {
				if _, ok := files[l]; ok {
					t.Errorf("context has %s, which .dockerignore excludes", l)
				}
			}
		})
	}
	if _, _, err := buildContext(strings.NewReader(""), "-", "-"); err == nil {
		t.Error("stdin for both context and Dockerfile: no error")
	}
	if _, _, err := buildContext(nil, filepath.Join(dir, "nope"), ""); err == nil {
		t.Error("missing context directory: no error")
	}
}
