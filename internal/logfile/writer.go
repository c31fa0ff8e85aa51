package logfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Defaults berth uses when the user sets no --log-opt: logs rotate unless
// asked not to (docker keeps one file that grows without bound), 10 MB per
// file and 3 files, so a container's log never takes more than 30 MB.
const (
	DefaultMaxSize  = 10 << 20
	DefaultMaxFiles = 3
)

// Options configure a Writer.
type Options struct {
	// MaxSize is the size in bytes at which the file rotates; 0 means
	// never.
	MaxSize int64
	// MaxFiles is how many files to keep, the live one included; below 1
	// counts as 1 (the live file is cut back to empty when full).
	MaxFiles int
}

// Writer appends entries to a json-file log. It is safe for concurrent use.
type Writer struct {
	path string
	opts Options

	mu   sync.Mutex // guards f, size, buf
	f    *os.File
	size int64
	buf  []byte
}

// Open opens path for appending (creating it 0640), keeping rotated files
// already there.
func Open(path string, opts Options) (*Writer, error) {
	if opts.MaxFiles < 1 {
		opts.MaxFiles = 1
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	return &Writer{path: path, opts: opts, f: f, size: st.Size()}, nil
}

// Write appends one entry. line is stored as given: it ends with "\n"
// when it is a whole line.
func (w *Writer) Write(stream string, line []byte, t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return fmt.Errorf("write log %s: %w", w.path, fs.ErrClosed)
	}
	w.buf = AppendEntry(w.buf[:0], stream, line, t)
	if w.opts.MaxSize > 0 && w.size > 0 && w.size+int64(len(w.buf)) > w.opts.MaxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("write log %s: %w", w.path, err)
	}
	// Keep a burst of huge lines from pinning a huge buffer.
	if cap(w.buf) > 64<<10 {
		w.buf = nil
	}
	return nil
}

// rotate shifts <log>.i to <log>.i+1, dropping the oldest, and starts a new
// live file. Readers following the old file keep its descriptor and see
// the rename (see Read).
func (w *Writer) rotate() error {
	if w.opts.MaxFiles == 1 {
		if err := w.f.Truncate(0); err != nil {
			return fmt.Errorf("rotate log %s: %w", w.path, err)
		}
		w.size = 0
		return nil
	}
	for i := w.opts.MaxFiles - 1; i >= 1; i-- {
		from := w.path
		if i > 1 {
			from = w.path + "." + strconv.Itoa(i-1)
		}
		if err := os.Rename(from, w.path+"."+strconv.Itoa(i)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotate log %s: %w", w.path, err)
		}
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("rotate log %s: %w", w.path, err)
	}
	w.f.Close()
	w.f, w.size = f, 0
	return nil
}

// Close closes the live file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// AppendEntry appends one json-file line for (stream, line, t) to b. The
// escaping is encoding/json's, HTML characters included, as docker's
// writer produces; it is done by hand so the monitor, which writes every
// line a container prints, does not allocate per entry.
func AppendEntry(b []byte, stream string, line []byte, t time.Time) []byte {
	b = append(b, `{"log":`...)
	b = appendString(b, line)
	b = append(b, `,"stream":`...)
	b = appendString(b, []byte(stream))
	b = append(b, `,"time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, "\"}\n"...)
}

const hex = "0123456789abcdef"

func appendString(b, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 break JavaScript string literals; encoding/json
		// escapes them and so do we.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
