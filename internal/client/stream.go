package client

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/moby/moby/api/types/jsonstream"

	"github.com/berth-dev/berth/internal/errdefs"
)

// StdCopy splits a multiplexed stream into stdout and stderr until EOF. A
// frame on the daemon's error stream (3) ends the copy with its text as
// the error.
func StdCopy(stdout, stderr io.Writer, src io.Reader) (int64, error) {
	var hdr [8]byte
	var written int64
	buf := make([]byte, 32*1024)
	for {
		if _, err := io.ReadFull(src, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return written, nil
			}
			return written, fmt.Errorf("read stream header: %w", err)
		}
		size := int64(binary.BigEndian.Uint32(hdr[4:]))
		var dst io.Writer
		switch hdr[0] {
		case 0, 1:
			dst = stdout
		case 2:
			dst = stderr
		case 3:
			msg, _ := io.ReadAll(io.LimitReader(src, size))
			return written, fmt.Errorf("daemon: %s", msg)
		default:
			return written, fmt.Errorf("stream: unknown stream id %d: %w", hdr[0], errdefs.ErrInvalidArgument)
		}
		if dst == nil {
			dst = io.Discard
		}
		n, err := io.CopyBuffer(dst, io.LimitReader(src, size), buf)
		if hdr[0] != 0 {
			written += n
		}
		if err != nil {
			return written, err
		}
		if n < size {
			return written, fmt.Errorf("stream: frame cut short: %w", io.ErrUnexpectedEOF)
		}
	}
}

// StreamError is an error the daemon sent inside a JSON progress stream
// (after its 200), with the status class it would have had.
type StreamError struct {
	Code    int
	Message string
}

func (e *StreamError) Error() string { return e.Message }

// Unwrap gives the errdefs class of the status the daemon put in the
// message.
func (e *StreamError) Unwrap() error { return classOf(e.Code) }

// DecodeStream reads a JSON progress stream (pull, push, load, import),
// calling fn for each message, and returns the error the daemon put in
// the stream, if any, as a *StreamError.
func DecodeStream(r io.Reader, fn func(jsonstream.Message) error) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			jsonstream.Message
			ErrorText string `json:"error"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("decode stream: %w", err)
		}
		if m.Error != nil || m.ErrorText != "" {
			se := &StreamError{Message: m.ErrorText}
			if m.Error != nil {
				se.Code, se.Message = m.Error.Code, m.Error.Message
			}
			return se
		}
		if fn != nil {
			if err := fn(m.Message); err != nil {
				return err
			}
		}
	}
}
