package bench

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestHistogramMerge checks that per-worker histograms merged at the end
// give the same figures as one histogram that saw every value.
func TestHistogramMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	all := newHistogram()
	parts := []*recorder{newRecorder(MustParseMix("validate"), false), newRecorder(MustParseMix("validate"), false), newRecorder(MustParseMix("validate"), false)}
	for i := range 30000 {
		// A long-tailed distribution from 50 µs to ~2 s.
		d := time.Duration(50+rng.ExpFloat64()*400) * time.Microsecond
		if i%1000 == 0 {
			d = time.Duration(100+rng.IntN(2000)) * time.Millisecond
		}
		if err := all.RecordValue(micros(d)); err != nil {
			t.Fatal(err)
		}
		parts[i%len(parts)].record(Validate.index(), d, 0, nil)
	}
	merged := newHistogram()
	for _, p := range parts {
		if err := mergeInto(merged, p.lat[Validate.index()]); err != nil {
			t.Fatalf("mergeInto error = %v", err)
		}
	}
	if !merged.Equals(all) {
		t.Errorf("merged histogram differs from the histogram of every value")
	}
	got, want := summarize(merged), summarize(all)
	if got != want {
		t.Errorf("summarize(merged) = %+v, want %+v", got, want)
	}
	if want.Count != 30000 || !(want.Min <= want.P50 && want.P50 <= want.P90 && want.P90 <= want.P99 && want.P99 <= want.P999 && want.P999 <= want.Max) {
		t.Errorf("summarize = %+v: want 30000 values and ordered percentiles", want)
	}
	// A coarser series histogram merges into a fine one without loss.
	series := newSeriesHistogram()
	_ = series.RecordValue(1234)
	if err := mergeInto(merged, series); err != nil {
		t.Errorf("mergeInto(series) error = %v", err)
	}
	// The exported encoding decodes to the same histogram.
	enc, err := encodeHistogram(all)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := DecodeHistogram(enc)
	if err != nil {
		t.Fatalf("DecodeHistogram error = %v", err)
	}
	if summarize(dec) != want {
		t.Errorf("summarize(decoded) = %+v, want %+v", summarize(dec), want)
	}
}

func TestMicrosClamps(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int64
	}{
		{0, 1}, {500 * time.Nanosecond, 1}, {1500 * time.Microsecond, 1500}, {2 * time.Hour, histHighest},
	}
	for _, tt := range tests {
		if got := micros(tt.d); got != tt.want {
			t.Errorf("micros(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

// TestBuildResultCountsErrors checks that errors are counted by kind and
// kept out of the latency histograms and the throughput.
func TestBuildResultCountsErrors(t *testing.T) {
	c := DefaultConfig()
	c.Mix = MustParseMix("validate=1,issue=1")
	r1, r2 := newRecorder(c.Mix, false), newRecorder(c.Mix, false)
	for range 90 {
		r1.record(Validate.index(), time.Millisecond, 0, nil)
	}
	r2.record(Validate.index(), time.Second, 0, statusError(503))
	r2.record(Issue.index(), time.Second, 0, statusError(409))
	for range 9 {
		r2.record(Issue.index(), 2*time.Millisecond, 0, nil)
	}
	res, err := buildResult(&c, TargetInfo{Kind: "fake"}, []*recorder{r1, r2}, nil, 10, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 101 || res.Errors != 2 || res.Throughput != 9.9 {
		t.Errorf("buildResult: requests %d errors %d throughput %v, want 101, 2, 9.9", res.Requests, res.Errors, res.Throughput)
	}
	if res.ErrorsByKind[KindStatus5xx] != 1 || res.ErrorsByKind[KindStatus4xx] != 1 {
		t.Errorf("ErrorsByKind = %v, want http_5xx=1 http_4xx=1", res.ErrorsByKind)
	}
	if res.Latency.Max >= 1_000_000 {
		t.Errorf("Latency.Max = %dµs: a failed request's latency was recorded", res.Latency.Max)
	}
	if v := res.Workloads[Validate]; v.Requests != 91 || v.Errors != 1 || v.Latency.Count != 90 {
		t.Errorf("Workloads[validate] = %+v, want 91 requests, 1 error, 90 latencies", v)
	}
}
