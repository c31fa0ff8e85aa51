package logfile

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAppendEntryMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"hello\n", "", "tab\tquote\"back\\slash", "<html>&amp;", "\x00\x01\x1f\x7f",
		"héllo wörld ✓", "bad utf8 \xff\xfe end", "line\u2028sep\u2029", "\r\n",
	} {
		t.Run(fmt.Sprintf("%q", s), func(t *testing.T) {
			ts := time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC)
			got := AppendEntry(nil, "stdout", []byte(s), ts)
			want, _ := json.Marshal(struct {
				Log    string    `json:"log"`
				Stream string    `json:"stream"`
				Time   time.Time `json:"time"`
			}{s, "stdout", ts})
			if string(got) != string(want)+"\n" {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func writeLines(t *testing.T, w *Writer, start time.Time, lines ...string) {
	t.Helper()
	for i, l := range lines {
		stream := "stdout"
		if i%2 == 1 {
			stream = "stderr"
		}
		if err := w.Write(stream, []byte(l), start.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
}

func readAll(t *testing.T, path string, opts ReadOptions) []string {
	t.Helper()
	var got []string
	err := Read(context.Background(), path, opts, func(e Entry) error {
		got = append(got, e.Stream+":"+string(e.Line))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestReadSelects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	writeLines(t, w, t0, "a\n", "b\n", "c\n", "d\n", "partial")
	w.Close()
	all := []string{"stdout:a\n", "stderr:b\n", "stdout:c\n", "stderr:d\n", "stdout:partial"}
	for _, tc := range []struct {
		name string
		opts ReadOptions
		want []string
	}{
		{"all", ReadOptions{Tail: -1}, all},
		{"tail 2", ReadOptions{Tail: 2}, all[3:]},
		{"tail 0", ReadOptions{Tail: 0}, nil},
		{"tail more than there is", ReadOptions{Tail: 50}, all},
		{"since", ReadOptions{Tail: -1, Since: t0.Add(2 * time.Second)}, all[2:]},
		{"until", ReadOptions{Tail: -1, Until: t0.Add(time.Second)}, all[:2]},
		{"since and until", ReadOptions{Tail: -1, Since: t0.Add(time.Second), Until: t0.Add(2 * time.Second)}, all[1:3]},
		{"tail then since", ReadOptions{Tail: 3, Since: t0.Add(3 * time.Second)}, all[3:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := readAll(t, path, tc.opts)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadMissingLogIsEmpty(t *testing.T) {
	if got := readAll(t, filepath.Join(t.TempDir(), "none.log"), ReadOptions{Tail: -1}); len(got) != 0 {
		t.Fatalf("got %q", got)
	}
}

func TestRotationKeepsMaxFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.log")
	w, err := Open(path, Options{MaxSize: 1000, MaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	var lines []string
	for i := range 200 {
		lines = append(lines, fmt.Sprintf("line %03d\n", i))
	}
	for i, l := range lines {
		if err := w.Write("stdout", []byte(l), t0.Add(time.Duration(i))); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	names, _ := filepath.Glob(path + "*")
	if len(names) != 3 {
		t.Fatalf("files %v, want 3", names)
	}
	for _, n := range names {
		st, _ := os.Stat(n)
		if st.Size() > 1000 {
			t.Errorf("%s is %d bytes, over max-size 1000", n, st.Size())
		}
	}
	got := readAll(t, path, ReadOptions{Tail: -1})
	if len(got) == 0 || got[len(got)-1] != "stdout:line 199\n" {
		t.Fatalf("last entries %q", got[max(0, len(got)-3):])
	}
	// What is kept is a contiguous suffix of what was written.
	first := strings.TrimPrefix(got[0], "stdout:")
	var idx int
	fmt.Sscanf(first, "line %d", &idx)
	for i, g := range got {
		if g != "stdout:"+lines[idx+i] {
			t.Fatalf("entry %d is %q, want %q", i, g, lines[idx+i])
		}
	}
	tail := readAll(t, path, ReadOptions{Tail: 30})
	if len(tail) != 30 || tail[29] != "stdout:line 199\n" || tail[0] != "stdout:line 170\n" {
		t.Fatalf("tail 30 across files: %q … %q (%d)", tail[0], tail[len(tail)-1], len(tail))
	}
}

func TestOneFileTruncates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, err := Open(path, Options{MaxSize: 300, MaxFiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := w.Write("stdout", fmt.Appendf(nil, "l%d\n", i), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if names, _ := filepath.Glob(path + "*"); len(names) != 1 {
		t.Fatalf("files %v", names)
	}
	got := readAll(t, path, ReadOptions{Tail: -1})
	if got[len(got)-1] != "stdout:l49\n" {
		t.Fatalf("got %q", got)
	}
}

// A follower sees lines written after it started, across rotations, with
// nothing lost or repeated, and ends once Done is closed.
func TestFollowAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, err := Open(path, Options{MaxSize: 2000, MaxFiles: 5})
	if err != nil {
		t.Fatal(err)
	}
	writeLines(t, w, time.Now(), "before\n")
	done := make(chan struct{})
	got := make(chan []string, 1)
	go func() {
		var lines []string
		err := Read(context.Background(), path, ReadOptions{Tail: -1, Follow: true, Done: done}, func(e Entry) error {
			lines = append(lines, string(e.Line))
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		got <- lines
	}()
	const n = 300
	for i := range n {
		if err := w.Write("stdout", fmt.Appendf(nil, "%04d\n", i), time.Now()); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			time.Sleep(20 * time.Millisecond) // let the reader catch up now and then
		}
	}
	w.Close()
	close(done)
	var lines []string
	select {
	case lines = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("follower did not end after Done")
	}
	if len(lines) != n+1 || lines[0] != "before\n" {
		t.Fatalf("got %d lines (first %q), want %d: %q", len(lines), lines[:min(3, len(lines))], n+1, lines)
	}
	for i := range n {
		if want := fmt.Sprintf("%04d\n", i); lines[i+1] != want {
			t.Fatalf("line %d: %q, want %q", i+1, lines[i+1], want)
		}
	}
}

func TestFollowStopsWithContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Read(ctx, path, ReadOptions{Tail: -1, Follow: true}, func(Entry) error { return nil }) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not stop")
	}
}
