package bench

import (
	"bufio"
	"bytes"
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// counterTarget is a Target that can report server-side counters; the
// runner records how much they grew during the measured window
// (Result.TargetCounters), e.g. to show that validate-miss missed the cache.
type counterTarget interface {
	Counters(ctx context.Context) (map[string]float64, error)
}

// scrapedCounters are the tokencache metrics (summed over the nodes) that a
// result reports, by their short name in Result.TargetCounters.
var scrapedCounters = map[string]string{
	"tokencache_cache_hits_total":           "cache_hits",
	"tokencache_cache_misses_total":         "cache_misses",
	"tokencache_cache_negative_hits_total":  "cache_negative_hits",
	"tokencache_cache_filter_rejects_total": "cache_filter_rejects",
	"tokencache_cache_evictions_total":      "cache_evictions",
}

// Counters scrapes /metrics of every node and sums scrapedCounters.
func (t *httpTarget) Counters(ctx context.Context) (map[string]float64, error) {
	out := map[string]float64{}
	hc := &fasthttp.Client{ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	for _, base := range t.bases {
		code, body, err := hc.GetTimeout(nil, base+"/metrics", 5*time.Second)
		if err != nil {
			return nil, err
		}
		if code != fasthttp.StatusOK {
			return nil, statusError(code)
		}
		for name, v := range parseCounters(body) {
			out[name] += v
		}
	}
	return out, ctx.Err()
}

// parseCounters reads the scrapedCounters from Prometheus text, summing
// the label sets of one name.
func parseCounters(text []byte) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if i := strings.IndexByte(name, '{'); i >= 0 {
			if j := strings.LastIndexByte(line, '}'); j > i {
				name, rest = line[:i], strings.TrimSpace(line[j+1:])
			}
		}
		short, wanted := scrapedCounters[name]
		if !wanted {
			continue
		}
		val, _, _ := strings.Cut(strings.TrimSpace(rest), " ") // drop a timestamp
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			out[short] += v
		}
	}
	return out
}

// counterDelta returns after − before for every counter of after.
func counterDelta(before, after map[string]float64) map[string]float64 {
	if len(after) == 0 {
		return nil
	}
	out := make(map[string]float64, len(after))
	for k, v := range after {
		out[k] = v - before[k]
	}
	return out
}
