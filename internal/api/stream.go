package api

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	apitypes "github.com/moby/moby/api/types"
	"github.com/moby/moby/api/types/jsonstream"
)

// Stream numbers of docker's multiplexed framing.
const (
	StreamStdin  byte = 0
	StreamStdout byte = 1
	StreamStderr byte = 2
	// StreamSystemErr carries an error from the daemon itself, in band.
	StreamSystemErr byte = 3
)

// muxWriter frames each Write as one multiplexed record: an 8-byte header
// (stream, three zero bytes, big-endian uint32 length) and the payload.
// The stdout and stderr writers of one stream share a mutex so records
// never interleave.
type muxWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream byte
}

// maxFrame is the largest payload one header can describe.
const maxFrame = 1<<32 - 1

func (m *muxWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	written := 0
	for len(p) > 0 || written == 0 {
		chunk := p
		if len(chunk) > maxFrame {
			chunk = chunk[:maxFrame]
		}
		var hdr [8]byte
		hdr[0] = m.stream
		binary.BigEndian.PutUint32(hdr[4:], uint32(len(chunk)))
		if _, err := m.w.Write(hdr[:]); err != nil {
			return written, err
		}
		n, err := m.w.Write(chunk)
		written += n
		if err != nil {
			return written, err
		}
		p = p[len(chunk):]
		if len(chunk) == 0 {
			break
		}
	}
	if f, ok := m.w.(http.Flusher); ok {
		f.Flush()
	}
	return written, nil
}

// NewMuxWriters returns the stdout and stderr writers of one multiplexed
// stream onto w. Each Write becomes one frame (an empty Write sends an
// empty frame, which readers skip). Safe for concurrent use.
func NewMuxWriters(w io.Writer) (stdout, stderr io.Writer) {
	mu := &sync.Mutex{}
	return &muxWriter{mu: mu, w: w, stream: StreamStdout}, &muxWriter{mu: mu, w: w, stream: StreamStderr}
}

// streamMessage is one line of docker's JSON progress stream. The error
// text is also sent as the legacy top-level "error" field, which older
// clients (docker-py) still read.
type streamMessage struct {
	jsonstream.Message
	ErrorMessage string `json:"error,omitempty"`
}

// progressStream writes docker's JSON progress messages, one per line,
// flushing each. Safe for concurrent use (pull reports layers from
// several goroutines).
type progressStream struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	enc     *json.Encoder
	started bool
}

func newProgressStream(w http.ResponseWriter) *progressStream {
	return &progressStream{w: w, enc: json.NewEncoder(w)}
}

// start sends the 200 and headers; the first send does it too.
func (p *progressStream) start() {
	if !p.started {
		p.started = true
		p.w.Header().Set("Content-Type", "application/json")
		p.w.WriteHeader(http.StatusOK)
	}
}

func (p *progressStream) send(m jsonstream.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start()
	_ = p.enc.Encode(streamMessage{Message: m})
	flush(p.w)
}

// fail ends the stream with err in band: once the 200 went out, this is
// the only way the client learns the operation failed.
func (p *progressStream) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start()
	msg := message(err)
	_ = p.enc.Encode(streamMessage{
		Message:      jsonstream.Message{Error: &jsonstream.Error{Code: statusFor(err), Message: msg}},
		ErrorMessage: msg,
	})
	flush(p.w)
}

// hijack takes the connection over for a raw stream (attach, exec
// start). It answers 101 UPGRADED when the client asked to upgrade to
// tcp (the docker CLI does) and 200 otherwise, with docker's raw or
// multiplexed stream content type. The returned reader holds what the
// client sent after the request (stdin) including anything the server
// had already buffered. The caller owns conn and must close it.
func hijack(ctx context.Context, w http.ResponseWriter, r *http.Request, multiplexed bool) (net.Conn, io.Reader, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijack connection: %w", err)
	}
	// The server's deadlines no longer apply to a hijacked connection;
	// clear any it set so a long attach is not cut off.
	_ = conn.SetDeadline(time.Time{})
	contentType := apitypes.MediaTypeRawStream
	if multiplexed && versionAtLeast(ctx, "1.42") {
		contentType = apitypes.MediaTypeMultiplexedStream
	}
	upgrade := r.Header.Get("Upgrade") != "" && headerHasToken(r.Header, "Connection", "upgrade")
	var head string
	if upgrade {
		head = "HTTP/1.1 101 UPGRADED\r\nContent-Type: " + contentType + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
	} else {
		head = "HTTP/1.1 200 OK\r\nContent-Type: " + contentType + "\r\n"
	}
	head += "Api-Version: " + MaxAPIVersion + "\r\n\r\n"
	if _, err := brw.WriteString(head); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("hijack connection: %w", err)
	}
	if err := brw.Flush(); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("hijack connection: %w", err)
	}
	var in io.Reader = conn
	if brw.Reader.Buffered() > 0 {
		in = io.MultiReader(io.LimitReader(brw.Reader, int64(brw.Reader.Buffered())), conn)
	}
	return conn, in, nil
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// closeWrite half-closes conn's sending side so the client reads EOF on
// its output while it may still be sending stdin.
func closeWrite(conn net.Conn) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = conn.Close()
}
