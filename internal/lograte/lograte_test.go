package lograte

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(time.Second, func() time.Time { return now })
	steps := []struct {
		after      time.Duration
		ok         bool
		suppressed int
	}{
		{0, true, 0}, // the first line is always logged
		{100 * time.Millisecond, false, 0},
		{100 * time.Millisecond, false, 0},
		{800 * time.Millisecond, true, 2}, // a second after the last line
		{999 * time.Millisecond, false, 0},
		{time.Millisecond, true, 1},
		{time.Hour, true, 0},
	}
	for i, s := range steps {
		now = now.Add(s.after)
		ok, n := l.Allow()
		if ok != s.ok || n != s.suppressed {
			t.Fatalf("step %d (+%v): Allow = %v, %d; want %v, %d", i, s.after, ok, n, s.ok, s.suppressed)
		}
	}
}
