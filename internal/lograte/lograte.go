// Package lograte keeps a message that an outsider can cause at will (a
// refused connection, a failing accept) from flooding the log: at most one
// line per interval, and that line says how many it stands for.
package lograte

import (
	"sync"
	"time"
)

// Limiter allows one line per interval. Its methods are safe for
// concurrent use.
type Limiter struct {
	every time.Duration
	now   func() time.Time

	mu         sync.Mutex
	last       time.Time
	logged     bool
	suppressed int
}

// New returns a Limiter that allows a line every interval, reading the time
// from now (nil: time.Now).
func New(every time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{every: every, now: now}
}

// Allow reports whether a line may be logged now and, if so, how many were
// left out since the last one allowed (log it with the line, e.g. as
// "suppressed"). A call that is not allowed counts as left out.
func (l *Limiter) Allow() (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.logged && now.Sub(l.last) < l.every {
		l.suppressed++
		return false, 0
	}
	suppressed, l.suppressed = l.suppressed, 0
	l.last, l.logged = now, true
	return true, suppressed
}
