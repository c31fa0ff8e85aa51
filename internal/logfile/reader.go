package logfile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Entry is one log record.
type Entry struct {
	Stream string // "stdout" or "stderr"
	Line   []byte // as written: ends with "\n" for a whole line
	Time   time.Time
}

// ReadOptions select and follow entries.
type ReadOptions struct {
	// Tail keeps only the last Tail entries of the files (before Since
	// and Until apply, as docker does); below 0 keeps all.
	Tail int
	// Since and Until bound the entries' times (zero: unbounded); an
	// entry after Until ends the read, even a following one.
	Since, Until time.Time
	// Follow keeps reading as the log grows and rotates, until ctx ends or
	// Done is closed.
	Follow bool
	// Done is closed when the writer has finished (the container
	// stopped): a follower reads what is left, then returns.
	Done <-chan struct{}
}

// errStop ends a read early without an error (an entry past Until).
var errStop = errors.New("stop")

// Read calls fn for each entry of the log at path (its rotated files
// first, oldest first). An error from fn ends the read and is returned.
// A missing log is an empty one.
func Read(ctx context.Context, path string, opts ReadOptions, fn func(Entry) error) error {
	files, err := openAll(path)
	if err != nil {
		return err
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	start := 0
	if opts.Tail >= 0 {
		var off int64
		start, off, err = tailStart(files, opts.Tail)
		if err != nil {
			return fmt.Errorf("read log %s: %w", path, err)
		}
		if start < len(files) {
			if _, err := files[start].Seek(off, io.SeekStart); err != nil {
				return fmt.Errorf("read log %s: %w", path, err)
			}
		}
	}
	d := &decoder{opts: &opts, fn: fn}
	for i := start; i < len(files); i++ {
		if err := d.readAll(files[i]); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return fmt.Errorf("read log %s: %w", path, err)
		}
	}
	if !opts.Follow {
		return nil
	}
	var live *os.File
	if n := len(files); n > 0 && files[n-1].Name() == path {
		live = files[n-1]
		files = files[:n-1]
	}
	err = d.follow(ctx, path, live)
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// openAll opens <path>.N … <path>.1, <path>, oldest first, skipping the
// ones that do not exist. It lists the directory rather than probing .1,
// .2, … until one is missing: in the middle of a rotation there are gaps.
func openAll(path string) ([]*os.File, error) {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read log %s: %w", path, err)
	}
	base := filepath.Base(path) + "."
	var idx []int
	for _, e := range entries {
		if s, ok := strings.CutPrefix(e.Name(), base); ok {
			if n, err := strconv.Atoi(s); err == nil && n > 0 && strconv.Itoa(n) == s {
				idx = append(idx, n)
			}
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(idx)))
	var files []*os.File
	for _, n := range append(idx, 0) {
		name := path
		if n > 0 {
			name = path + "." + strconv.Itoa(n)
		}
		f, err := os.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // rotated away since the listing
		}
		if err != nil {
			closeFiles(files)
			return nil, fmt.Errorf("read log %s: %w", path, err)
		}
		files = append(files, f)
	}
	return files, nil
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// tailStart finds where the last n lines begin, scanning the files
// backwards from the end so a tail of a large log reads little of it.
func tailStart(files []*os.File, n int) (int, int64, error) {
	if n == 0 {
		return len(files), 0, nil
	}
	buf := make([]byte, 32<<10)
	need := n
	for i := len(files) - 1; i >= 0; i-- {
		st, err := files[i].Stat()
		if err != nil {
			return 0, 0, err
		}
		end := st.Size()
		// A final line without "\n" (a write in progress) is not counted.
		first := true
		for end > 0 {
			sz := int64(len(buf))
			if sz > end {
				sz = end
			}
			if _, err := files[i].ReadAt(buf[:sz], end-sz); err != nil && !errors.Is(err, io.EOF) {
				return 0, 0, err
			}
			chunk := buf[:sz]
			for j := len(chunk) - 1; j >= 0; j-- {
				if chunk[j] != '\n' {
					continue
				}
				if first && end-sz+int64(j) == st.Size()-1 {
					first = false
					continue // the newline ending the last line
				}
				first = false
				need--
				if need == 0 {
					return i, end - sz + int64(j) + 1, nil
				}
			}
			end -= sz
		}
		if st.Size() > 0 {
			need-- // the file's first line has no newline before it
			if need == 0 {
				return i, 0, nil
			}
		}
	}
	return 0, 0, nil
}

type decoder struct {
	opts    *ReadOptions
	fn      func(Entry) error
	pending []byte // a line read without its "\n" yet
}

type jsonEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// readAll decodes every whole line of r.
func (d *decoder) readAll(r io.Reader) error {
	br := bufio.NewReaderSize(r, 32<<10)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			d.pending = append(d.pending, line...)
			continue
		}
		if len(line) > 0 && line[len(line)-1] == '\n' {
			full := line
			if len(d.pending) > 0 {
				full = append(d.pending, line...)
			}
			if err := d.emit(full); err != nil {
				return err
			}
			d.pending = d.pending[:0]
		} else if len(line) > 0 {
			d.pending = append(d.pending, line...)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func (d *decoder) emit(line []byte) error {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return nil
	}
	var je jsonEntry
	if err := json.Unmarshal(line, &je); err != nil {
		// A torn line (a crash mid-write) is skipped, as docker does.
		return nil
	}
	if !d.opts.Since.IsZero() && je.Time.Before(d.opts.Since) {
		return nil
	}
	if !d.opts.Until.IsZero() && je.Time.After(d.opts.Until) {
		return errStop
	}
	return d.fn(Entry{Stream: je.Stream, Line: []byte(je.Log), Time: je.Time})
}

// Poll intervals of a follower: short after new data, longer when idle.
const (
	pollMin = 5 * time.Millisecond
	pollMax = 100 * time.Millisecond
)

// follow reads the live file as it grows. When the writer rotates, the
// open file (now <path>.1) is read to its end before the new <path> is
// opened; when it truncates (one file), reading starts again at 0.
func (d *decoder) follow(ctx context.Context, path string, f *os.File) error {
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	wait := pollMin
	finished := false
	for {
		if f == nil {
			nf, err := os.Open(path)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("follow log %s: %w", path, err)
			}
			f = nf
		}
		grew := false
		if f != nil {
			before, _ := f.Seek(0, io.SeekCurrent)
			if err := d.readAll(f); err != nil {
				return err
			}
			after, _ := f.Seek(0, io.SeekCurrent)
			grew = after > before
			if !grew {
				switch rotatedOrCut(path, f, after) {
				case rotated:
					if err := d.readAll(f); err != nil {
						return err
					}
					next, err := successor(path, f)
					if err != nil {
						return err
					}
					f.Close()
					f = next
					d.pending = d.pending[:0]
					continue
				case truncated:
					_, _ = f.Seek(0, io.SeekStart)
					d.pending = d.pending[:0]
					continue
				}
			}
		}
		if grew {
			wait = pollMin
			continue
		}
		if finished {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-d.opts.Done:
			t.Stop()
			// One more pass reads what the writer wrote last.
			finished = true
			d.opts.Done = nil
		case <-t.C:
		}
		if wait *= 2; wait > pollMax {
			wait = pollMax
		}
	}
}

// successor opens the file written after f: f has been renamed to
// <path>.k, so it is <path>.k-1 (or <path>). Several rotations may have
// happened since f was last read; if f is gone altogether, the oldest file
// left is next (what was in between is lost, as it is for docker).
func successor(path string, f *os.File) (*os.File, error) {
	cur, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("follow log %s: %w", path, err)
	}
	var files []*os.File
	next := -1
	// A rotation renames files one at a time: a listing taken in the
	// middle of one may miss f, or show f last with its successor renamed
	// away between the listing and its open (opening <path> later would
	// then skip that file). Look again briefly before giving up.
	for try := 0; (next < 0 || next == len(files)) && try < 20; try++ {
		if try > 0 {
			closeFiles(files)
			time.Sleep(time.Millisecond)
		}
		var err error
		if files, err = openAll(path); err != nil {
			return nil, err
		}
		next = -1
		for i, g := range files {
			if st, err := g.Stat(); err == nil && os.SameFile(st, cur) {
				next = i + 1
			}
		}
	}
	next = max(next, 0)
	var out *os.File
	for i, g := range files {
		if i == next {
			out = g
			continue
		}
		g.Close()
	}
	return out, nil
}

type change int

const (
	same change = iota
	rotated
	truncated
)

func rotatedOrCut(path string, f *os.File, off int64) change {
	cur, err := f.Stat()
	if err != nil {
		return same
	}
	if cur.Size() < off {
		return truncated
	}
	st, err := os.Stat(path)
	if err != nil {
		return same // between the renames of a rotation
	}
	a, ok1 := cur.Sys().(*syscall.Stat_t)
	b, ok2 := st.Sys().(*syscall.Stat_t)
	if ok1 && ok2 && (a.Ino != b.Ino || a.Dev != b.Dev) {
		return rotated
	}
	return same
}
