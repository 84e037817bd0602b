package bench

import (
	"context"
	"fmt"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// collector builds the time series: at the end of every interval of the
// measured window it takes each worker's interval histogram and counts,
// turns them into a Point, and updates the progress line. Requests are
// counted in the interval in which they were answered.
type collector struct {
	recs     []*recorder
	start    time.Time // of the measured window
	end      time.Time
	interval time.Duration
	prog     *progress

	points []Point
	last   *hdr.Histogram // histogram of the last point (flush adds to it)
	reqs   int64          // totals so far, for the progress line
	errs   int64
}

func newCollector(recs []*recorder, start time.Time, interval time.Duration, prog *progress, d time.Duration) *collector {
	return &collector{recs: recs, start: start, end: start.Add(d), interval: interval, prog: prog}
}

// run collects at every interval boundary until the end of the measured
// window or ctx is done. During the warm-up it shows a countdown.
func (c *collector) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for k := 1; ; k++ {
		tick := c.start.Add(time.Duration(k) * c.interval)
		if tick.After(c.end) {
			tick = c.end
		}
		for {
			now := time.Now()
			if !now.Before(tick) {
				break
			}
			wait := tick.Sub(now)
			if now.Before(c.start) {
				left := c.start.Sub(now)
				c.prog.line(fmt.Sprintf("warming up, %s left", left.Round(time.Second)))
				wait = min(wait, left%time.Second+time.Millisecond)
			}
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		c.collect(tick, true)
		c.progressLine()
		if !tick.Before(c.end) {
			return
		}
	}
}

// flush collects what was answered after the last boundary (requests in
// flight at the end, or a cancelled run's partial interval).
func (c *collector) flush(now time.Time) {
	c.collect(now, len(c.points) == 0 || now.Before(c.end) && now.Sub(c.lastEnd()) >= c.interval/2)
}

func (c *collector) lastEnd() time.Time {
	if len(c.points) == 0 {
		return c.start
	}
	return c.start.Add(time.Duration(c.points[len(c.points)-1].T * float64(time.Second)))
}

// collect takes every worker's interval; newPoint starts a point ending at
// t, otherwise the counts are added to the last point.
func (c *collector) collect(t time.Time, newPoint bool) {
	h := newSeriesHistogram()
	var reqs, errs int64
	for _, r := range c.recs {
		n, e := r.takeInterval(h)
		reqs += n
		errs += e
	}
	c.reqs += reqs
	c.errs += errs
	if !newPoint && len(c.points) > 0 {
		p := &c.points[len(c.points)-1]
		c.last.Merge(h)
		p.Requests += reqs
		p.Errors += errs
		setPercentiles(p, c.last)
		return
	}
	if t.Before(c.start) {
		t = c.start
	}
	width := t.Sub(c.lastEnd()).Seconds()
	p := Point{T: round2(t.Sub(c.start).Seconds()), Requests: reqs, Errors: errs}
	if width > 0 {
		p.Throughput = round2(float64(reqs-errs) / width)
	}
	setPercentiles(&p, h)
	c.points = append(c.points, p)
	c.last = h
}

func setPercentiles(p *Point, h *hdr.Histogram) {
	if h.TotalCount() == 0 {
		p.P50, p.P99, p.P999, p.Max = 0, 0, 0, 0
		return
	}
	v := h.ValueAtPercentilesSlice([]float64{50, 99, 99.9})
	p.P50, p.P99, p.P999, p.Max = v[0], v[1], v[2], h.Max()
}

// progressLine shows the last point and the totals.
func (c *collector) progressLine() {
	if !c.prog.enabled() || len(c.points) == 0 {
		return
	}
	p := c.points[len(c.points)-1]
	c.prog.line(fmt.Sprintf("[%5.0fs/%.0fs] %10s req/s  p50 %8s  p99 %8s  p99.9 %8s  errors %d  total %d",
		p.T, c.end.Sub(c.start).Seconds(), FormatCount(p.Throughput), FormatMicros(p.P50),
		FormatMicros(p.P99), FormatMicros(p.P999), c.errs, c.reqs))
}
