package bench

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

func TestPacerIntendedTimes(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := newPacer(start, 1000) // one request per millisecond
	for k := range int64(5) {
		if got, want := p.next(), start.Add(time.Duration(k)*time.Millisecond); !got.Equal(want) {
			t.Errorf("next() #%d = %v, want %v", k, got, want)
		}
	}
	if got, want := p.intended(1500), start.Add(1500*time.Millisecond); !got.Equal(want) {
		t.Errorf("intended(1500) = %v, want %v", got, want)
	}
	// Slot 2 was intended at +2ms; a stall delayed its send to +202ms and
	// it was answered at +203ms: it waited 200ms for nobody to notice.
	lat, svc := openLoopLatency(start.Add(2*time.Millisecond), start.Add(202*time.Millisecond), start.Add(203*time.Millisecond))
	if lat != 201*time.Millisecond || svc != time.Millisecond {
		t.Errorf("openLoopLatency(late send) = %v, %v, want 201ms (from the intended time), 1ms (service)", lat, svc)
	}
	lat, svc = openLoopLatency(start, start.Add(-time.Millisecond), start.Add(time.Millisecond))
	if lat != time.Millisecond || svc != time.Millisecond {
		t.Errorf("openLoopLatency(early send) = %v, %v, want 1ms, 1ms", lat, svc)
	}
}

// stallTarget answers at once, except call number stallAt, which takes
// stall.
type stallTarget struct {
	calls   atomic.Int64
	stallAt int64
	stall   time.Duration
}

func (s *stallTarget) Info() TargetInfo         { return TargetInfo{Kind: "stall"} }
func (s *stallTarget) Supports(w Workload) bool { return w == Issue }
func (s *stallTarget) Close() error             { return nil }
func (s *stallTarget) Seed(context.Context, int, int, func()) ([]Seeded, error) {
	return nil, nil
}
func (s *stallTarget) NewClient(int, *Population) Client { return s }
func (s *stallTarget) Do(context.Context, Workload, *rand.Rand) error {
	if s.calls.Add(1) == s.stallAt {
		time.Sleep(s.stall) // the target stalls: this is what is measured, not a wait for the test
	}
	return nil
}

var _ Target = (*stallTarget)(nil)

// TestOpenLoopCorrectsCoordinatedOmission: at 200 requests/s on one
// connection, a single 200ms stall delays the ~40 requests scheduled
// during it. Measured from their intended send times, about half of them
// took 100ms or more; measured from the actual send (what a closed loop
// reports), only the stalled request did.
func TestOpenLoopCorrectsCoordinatedOmission(t *testing.T) {
	const stall = 200 * time.Millisecond
	c := DefaultConfig()
	c.Targets = []string{KindBaselineHTTP} // only for Validate; the target is the fake
	c.Mix = MustParseMix("issue")
	c.Connections, c.Rate = 1, 200
	c.Warmup, c.Duration = 0, time.Second
	tgt := &stallTarget{stallAt: 40, stall: stall}
	res, err := Run(context.Background(), c, tgt, nil)
	if err != nil {
		t.Fatalf("Run error = %v", err)
	}
	if res.Config.Mode != "open" || res.ServiceTime == nil {
		t.Fatalf("Run: mode %q, service time %v, want an open-loop result", res.Config.Mode, res.ServiceTime)
	}
	h, err := DecodeHistogram(res.Histogram)
	if err != nil {
		t.Fatal(err)
	}
	slow := int64(0)
	for _, bar := range h.Distribution() {
		if bar.From >= 100_000 { // µs
			slow += bar.Count
		}
	}
	// 40 requests fall in the stall; those intended in its first half
	// waited ≥ 100ms. Allow for a slow machine.
	if slow < 15 {
		t.Errorf("requests with a corrected latency ≥ 100ms = %d, want ≥ 15 (the stall must inflate every request scheduled during it)", slow)
	}
	if res.Latency.Max < stall.Microseconds() {
		t.Errorf("Latency.Max = %dµs, want ≥ %dµs", res.Latency.Max, stall.Microseconds())
	}
	if res.Latency.P90 < 50_000 {
		t.Errorf("Latency.P90 = %dµs, want ≥ 50ms: ~10%% of the requests were scheduled during the stall", res.Latency.P90)
	}
	// The uncorrected view hides it: one slow request in ~200.
	if res.ServiceTime.Max < stall.Microseconds() || res.ServiceTime.P99 >= 100_000 {
		t.Errorf("ServiceTime = %+v, want max ≥ 200ms and p99 < 100ms (one slow request)", *res.ServiceTime)
	}
	if res.Requests < 150 || res.Requests > 201 {
		t.Errorf("Requests = %d, want about 200 (200/s for 1s)", res.Requests)
	}
}

// TestClosedLoopRecordsFromSend: the same stall in a closed loop is one
// slow request (the loop just sends fewer), which is what the open loop
// corrects.
func TestClosedLoopRecordsFromSend(t *testing.T) {
	c := DefaultConfig()
	c.Targets = []string{KindBaselineHTTP}
	c.Mix = MustParseMix("issue")
	c.Connections = 1
	c.Warmup, c.Duration = 0, 400*time.Millisecond
	tgt := &stallTarget{stallAt: 10, stall: 200 * time.Millisecond}
	res, err := Run(context.Background(), c, tgt, nil)
	if err != nil {
		t.Fatalf("Run error = %v", err)
	}
	h, err := DecodeHistogram(res.Histogram)
	if err != nil {
		t.Fatal(err)
	}
	slow := int64(0)
	for _, bar := range h.Distribution() {
		if bar.From >= 100_000 {
			slow += bar.Count
		}
	}
	if slow != 1 || res.ServiceTime != nil || res.Config.Mode != "closed" {
		t.Errorf("closed loop: %d slow requests, service time %v, mode %q; want 1, nil, closed", slow, res.ServiceTime, res.Config.Mode)
	}
}
