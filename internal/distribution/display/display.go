// Package display shows pull and push progress the way docker does: on a
// terminal, one line per layer rewritten in place (status, a bar, bytes
// and rate); elsewhere (a log, a pipe), one plain line per change of a
// layer's status, so the output stays readable when captured.
//
// It knows only distribution.Progress; it owns nothing on disk.
package display

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/distribution"
)

// Display renders progress updates to w. It is safe for concurrent use.
type Display struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	order    []string
	layers   map[string]*layer
}

type layer struct {
	p       distribution.Progress
	started time.Time // first byte moved
	line    string
}

// New returns a Display writing to w; terminal selects in-place updates.
func New(w io.Writer, terminal bool) *Display {
	return &Display{w: w, terminal: terminal, layers: map[string]*layer{}}
}

// Update shows p. Updates about the image config are not shown, as docker
// does not show them.
func (d *Display) Update(p distribution.Progress) {
	if p.Config {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	l, ok := d.layers[p.ID]
	if !ok {
		l = &layer{}
		d.layers[p.ID] = l
		d.order = append(d.order, p.ID)
		if d.terminal {
			fmt.Fprintln(d.w)
		}
	}
	changed := l.p.Status != p.Status
	// Each moving phase (download or push, then extraction) has its own
	// rate, measured from the phase's first update.
	if changed && moving(p.Status) {
		l.started = p.Time
	}
	l.p = p
	line := format(l, !d.terminal)
	if d.terminal {
		if line == l.line {
			return
		}
		l.line = line
		up := len(d.order) - d.index(p.ID)
		// Move up to the layer's line, rewrite it, come back down.
		fmt.Fprintf(d.w, "\x1b[%dA\r\x1b[2K%s\x1b[%dB\r", up, line, up)
		return
	}
	if changed && p.Status != distribution.StatusDownloading && p.Status != distribution.StatusPushing {
		fmt.Fprintln(d.w, line)
	}
}

func (d *Display) index(id string) int {
	for i, x := range d.order {
		if x == id {
			return i
		}
	}
	return 0
}

func moving(s distribution.Status) bool {
	return s == distribution.StatusDownloading || s == distribution.StatusPushing || s == distribution.StatusExtracting
}

// format is "ID: Status [bar] cur/total rate", as much as applies; plain
// lines (printed once per status) carry no bar.
func format(l *layer, plain bool) string {
	p := l.p
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", p.ID, p.Status)
	if p.Detail != "" && p.Status == distribution.StatusMounted {
		fmt.Fprintf(&b, " %s", p.Detail)
	}
	moving := moving(p.Status) && !plain
	if moving && p.Total > 0 {
		const width = 50
		n := int(int64(width) * p.Current / p.Total)
		n = min(max(n, 0), width)
		bar := strings.Repeat("=", n)
		if n < width {
			bar += ">" + strings.Repeat(" ", width-n-1)
		}
		fmt.Fprintf(&b, " [%s] %s/%s", bar, Size(p.Current), Size(p.Total))
	} else if moving {
		fmt.Fprintf(&b, " %s", Size(p.Current))
	}
	if !l.started.IsZero() && p.Current > 0 && (moving || p.Status == distribution.StatusDownloaded || p.Status == distribution.StatusPushed) {
		if el := p.Time.Sub(l.started); el > 0 {
			fmt.Fprintf(&b, " %s/s", Size(int64(float64(p.Current)/el.Seconds())))
		}
	}
	return b.String()
}

// Size is docker's human size: decimal units, three significant digits.
func Size(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", n)
	}
	return fmt.Sprintf("%.3g%s", f, units[i])
}
