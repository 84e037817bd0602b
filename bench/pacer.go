package bench

import (
	"sync/atomic"
	"time"
)

// pacer is the open-loop schedule: request k (counting from 0, across all
// workers) is intended to start at start + k/rate. Workers claim the next
// slot, wait for its time if it is still ahead, send, and measure the
// latency from the intended time. When the target stalls, every worker is
// busy and the slots whose time has passed are claimed late: their
// latencies include the time they waited, exactly as a user who sent at
// the intended time would have seen (coordinated omission corrected). A
// closed loop, or timing from the actual send, would silently drop that
// wait and report the stall as one slow request.
//
// A pacer is safe for concurrent use.
type pacer struct {
	start time.Time
	step  float64 // nanoseconds between two intended starts
	n     atomic.Int64
}

func newPacer(start time.Time, rate float64) *pacer {
	return &pacer{start: start, step: float64(time.Second) / rate}
}

// intended returns the intended start of request k.
func (p *pacer) intended(k int64) time.Time {
	return p.start.Add(time.Duration(float64(k) * p.step))
}

// next claims the next slot and returns its intended start.
func (p *pacer) next() time.Time {
	return p.intended(p.n.Add(1) - 1)
}

// openLoopLatency is the latency recorded for a request intended at
// intended, sent at sent and answered at done: the corrected latency from
// the intended time, and the service time from the actual send.
func openLoopLatency(intended, sent, done time.Time) (corrected, service time.Duration) {
	if sent.Before(intended) {
		sent = intended // never sent early; guards clock skew in tests
	}
	return done.Sub(intended), done.Sub(sent)
}
