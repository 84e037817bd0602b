package bench

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"
)

// progress writes the live progress line: on a terminal one line rewritten
// in place (carriage return), elsewhere (--progress into a log) one line
// per update. A progress with a nil writer, or on a non-terminal without
// force, prints nothing. It is safe for concurrent use.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	on      bool
	printed int // width of the current line on a terminal
}

func newProgress(w io.Writer, force bool) *progress {
	tty := isTTY(w)
	return &progress{w: w, tty: tty, on: w != nil && (tty || force)}
}

// isTTY reports whether w is a terminal.
func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

func (p *progress) enabled() bool { return p != nil && p.on }

// line shows s.
func (p *progress) line(s string) {
	if !p.enabled() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty {
		fmt.Fprintln(p.w, s)
		return
	}
	pad := ""
	if n := p.printed - len(s); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	fmt.Fprint(p.w, "\r"+s+pad)
	p.printed = len(s)
}

// finish ends the current line on a terminal.
func (p *progress) finish() {
	if !p.enabled() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.printed > 0 {
		fmt.Fprintln(p.w)
		p.printed = 0
	}
}

// counter is a progress bar for n items (the seeding), throttled to a few
// updates a second on a terminal and one every 2 s elsewhere.
type counter struct {
	p      *progress
	label  string
	total  int
	start  time.Time
	n      atomic.Int64
	last   atomic.Int64 // unix nanos of the last update
	every  time.Duration
	closed atomic.Bool
}

func (p *progress) counter(label string, total int) *counter {
	every := 200 * time.Millisecond
	if p != nil && !p.tty {
		every = 2 * time.Second
	}
	return &counter{p: p, label: label, total: total, start: time.Now(), every: every}
}

// add counts one item; it is called concurrently.
func (c *counter) add() {
	n := c.n.Add(1)
	if !c.p.enabled() {
		return
	}
	now := time.Now().UnixNano()
	last := c.last.Load()
	if time.Duration(now-last) < c.every || !c.last.CompareAndSwap(last, now) {
		return
	}
	c.show(n)
}

// done shows the final count and ends the line.
func (c *counter) done() {
	if c.total == 0 || !c.closed.CompareAndSwap(false, true) {
		return
	}
	c.show(c.n.Load())
	c.p.finish()
}

func (c *counter) show(n int64) {
	if !c.p.enabled() || c.total == 0 {
		return
	}
	el := time.Since(c.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(n) / el
	}
	const width = 30
	fill := int(int64(width) * n / int64(c.total))
	c.p.line(fmt.Sprintf("%s [%s%s] %s/%s  %s/s", c.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
		FormatCount(float64(n)), FormatCount(float64(c.total)), FormatCount(rate)))
}

// FormatCount renders a count or rate with thousands separators, rounded.
func FormatCount(f float64) string {
	s := strconv.FormatInt(int64(f+0.5), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// FormatMicros renders a latency in microseconds with a unit and three
// significant digits: 87µs, 1.23ms, 12.3ms, 1.50s.
func FormatMicros(us int64) string {
	switch {
	case us < 1000:
		return strconv.FormatInt(us, 10) + "µs"
	case us < 1_000_000:
		return trimFloat(float64(us)/1000) + "ms"
	}
	return trimFloat(float64(us)/1e6) + "s"
}

func trimFloat(f float64) string {
	switch {
	case f < 10:
		return strconv.FormatFloat(f, 'f', 2, 64)
	case f < 100:
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strconv.FormatFloat(f, 'f', 0, 64)
}
