package bench

import (
	"fmt"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to one minute, with
// three significant digits (0.1% precision) for totals and two (1%) for the
// per-second histograms of the time series, which only feed the chart.
// A slower request is recorded as one minute.
const (
	histLowest       = 1
	histHighest      = int64(time.Minute / time.Microsecond)
	histDigits       = 3
	histSeriesDigits = 2
)

// newHistogram returns an empty latency histogram for totals.
func newHistogram() *hdr.Histogram { return hdr.New(histLowest, histHighest, histDigits) }

// newSeriesHistogram returns an empty, coarser histogram for one second of
// the time series.
func newSeriesHistogram() *hdr.Histogram { return hdr.New(histLowest, histHighest, histSeriesDigits) }

// micros converts a duration to the histogram's unit, clamped to its range.
func micros(d time.Duration) int64 {
	us := int64(d / time.Microsecond)
	if us < histLowest {
		return histLowest
	}
	if us > histHighest {
		return histHighest
	}
	return us
}

// mergeInto merges src into dst and fails if any value was dropped (which
// only happens when the two histograms cannot represent the same range).
func mergeInto(dst, src *hdr.Histogram) error {
	if dropped := dst.Merge(src); dropped > 0 {
		return fmt.Errorf("cannot merge histograms: %d values out of range", dropped)
	}
	return nil
}

// Latency is the summary of a latency histogram, in microseconds.
type Latency struct {
	Count  int64   `json:"count"`
	Min    int64   `json:"min_us"`
	Mean   float64 `json:"mean_us"`
	StdDev float64 `json:"stddev_us"`
	P50    int64   `json:"p50_us"`
	P90    int64   `json:"p90_us"`
	P99    int64   `json:"p99_us"`
	P999   int64   `json:"p999_us"`
	Max    int64   `json:"max_us"`
}

// summarize returns the summary of h. An empty histogram gives a zero
// Latency.
func summarize(h *hdr.Histogram) Latency {
	if h == nil || h.TotalCount() == 0 {
		return Latency{}
	}
	v := h.ValueAtPercentilesSlice([]float64{50, 90, 99, 99.9})
	return Latency{
		Count:  h.TotalCount(),
		Min:    h.Min(),
		Mean:   round2(h.Mean()),
		StdDev: round2(h.StdDev()),
		P50:    v[0],
		P90:    v[1],
		P99:    v[2],
		P999:   v[3],
		Max:    h.Max(),
	}
}

// encodeHistogram returns the compact, base64 V2 compressed encoding of h
// (the HdrHistogram interchange format, readable by every HdrHistogram
// implementation), so that results can be merged exactly later.
func encodeHistogram(h *hdr.Histogram) (string, error) {
	b, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		return "", fmt.Errorf("cannot encode histogram: %w", err)
	}
	return string(b), nil
}

// DecodeHistogram decodes the "histogram" field of a Result.
func DecodeHistogram(s string) (*hdr.Histogram, error) {
	h, err := hdr.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("cannot decode histogram: %w", err)
	}
	return h, nil
}

func round2(f float64) float64 {
	return float64(int64(f*100+0.5)) / 100
}
