package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// numWorkloads sizes the per-workload arrays of a recorder.
var numWorkloads = len(Workloads)

// index returns the position of w in Workloads.
func (w Workload) index() int {
	for i, x := range Workloads {
		if x == w {
			return i
		}
	}
	return -1
}

// recorder holds one worker's measurements. Only its worker records; the
// series collector takes the interval part once per interval, hence the
// mutex (never contended for long).
type recorder struct {
	mu       sync.Mutex
	lat      []*hdr.Histogram // per workload: latency of successes
	svc      []*hdr.Histogram // per workload: service time (open loop)
	reqs     []int64          // per workload: requests, answered or failed
	errs     []map[ErrorKind]int64
	interval *hdr.Histogram // every success since the last collection
	intReqs  int64
	intErrs  int64
}

func newRecorder(mix Mix, open bool) *recorder {
	r := &recorder{
		lat:      make([]*hdr.Histogram, numWorkloads),
		svc:      make([]*hdr.Histogram, numWorkloads),
		reqs:     make([]int64, numWorkloads),
		errs:     make([]map[ErrorKind]int64, numWorkloads),
		interval: newSeriesHistogram(),
	}
	for _, w := range mix.Workloads() {
		i := w.index()
		r.lat[i] = newHistogram()
		if open {
			r.svc[i] = newHistogram()
		}
		r.errs[i] = map[ErrorKind]int64{}
	}
	return r
}

// record adds one request of workload index i.
func (r *recorder) record(i int, lat, svc time.Duration, err error) {
	r.mu.Lock()
	r.reqs[i]++
	r.intReqs++
	if err != nil {
		r.errs[i][Classify(err)]++
		r.intErrs++
	} else {
		us := micros(lat)
		_ = r.lat[i].RecordValue(us) // in range: micros clamps
		_ = r.interval.RecordValue(us)
		if r.svc[i] != nil {
			_ = r.svc[i].RecordValue(micros(svc))
		}
	}
	r.mu.Unlock()
}

// takeInterval merges the interval histogram into dst, resets it and
// returns the interval's request and error counts.
func (r *recorder) takeInterval(dst *hdr.Histogram) (reqs, errs int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	dst.Merge(r.interval)
	r.interval.Reset()
	reqs, errs = r.intReqs, r.intErrs
	r.intReqs, r.intErrs = 0, 0
	return reqs, errs
}

// Run seeds the population, runs the warm-up and the measured window
// against t, and returns the result. progress (may be nil) receives the
// live progress line and the seeding progress. Run stops early, with the
// result so far, when ctx is cancelled during the measured window.
func Run(ctx context.Context, c Config, t Target, progress io.Writer) (*Result, error) {
	s, err := Prepare(ctx, c, t, progress)
	if err != nil {
		return nil, err
	}
	return s.Measure(ctx, c, progress)
}

// Session is a target with its seeded population, ready for one or more
// measured runs (the compare suite interleaves runs of several sessions).
// A Session is used by one goroutine at a time.
type Session struct {
	t    Target
	pop  *Population
	seed *SeedInfo
	pool int
}

// Prepare validates c, checks that t supports its mix and seeds the
// population.
func Prepare(ctx context.Context, c Config, t Target, progress io.Writer) (*Session, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := checkSupported(t, c.Mix); err != nil {
		return nil, err
	}
	hot, pool := c.hot(), c.revokePool()
	tokens := 0
	if c.Mix.Has(Validate) || c.Mix.Has(ValidateMiss) || c.Mix.Has(Introspect) || c.Mix.Has(Authz) || c.Mix.Has(ValidateJWT) {
		tokens = c.Tokens
	}
	if !c.Mix.Has(Revoke) {
		pool = 0
	}
	prog := newProgress(progress, c.Progress)
	seedStart := time.Now()
	bar := prog.counter("seeding", tokens+pool)
	items, err := t.Seed(ctx, tokens+pool, c.SeedConcurrency, bar.add)
	bar.done()
	if err != nil {
		return nil, fmt.Errorf("cannot seed the population: %w", err)
	}
	s := &Session{t: t, pop: NewPopulation(items, hot, pool), pool: pool}
	if c.Mix.Has(ValidateJWT) {
		js, ok := t.(JWTSeeder)
		if !ok {
			return nil, fmt.Errorf("%s cannot seed JWTs for validate-jwt", t.Info().Kind)
		}
		bar := prog.counter("seeding JWTs", hot)
		jwts, err := js.SeedJWT(ctx, hot, c.SeedConcurrency, bar.add)
		bar.done()
		if err != nil {
			return nil, fmt.Errorf("cannot seed the JWTs: %w", err)
		}
		s.pop.SetJWTs(jwts)
		items = append(items, jwts...)
	}
	if len(items) > 0 {
		secs := time.Since(seedStart).Seconds()
		s.seed = &SeedInfo{Items: len(items), Seconds: round2(secs), PerSec: round2(float64(len(items)) / secs)}
	}
	return s, nil
}

// Population is the session's seeded population.
func (s *Session) Population() *Population { return s.pop }

// Measure runs the warm-up and the measured window of c (its mix,
// connections, rate and durations; the population stays the session's).
func (s *Session) Measure(ctx context.Context, c Config, progress io.Writer) (*Result, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := checkSupported(s.t, c.Mix); err != nil {
		return nil, err
	}
	prog := newProgress(progress, c.Progress)
	open := c.Rate > 0
	nw := c.Workers()
	recs := make([]*recorder, nw)
	clients := make([]Client, nw)
	for i := range nw {
		recs[i] = newRecorder(c.Mix, open)
		clients[i] = s.t.NewClient(i, s.pop)
	}

	runStart := time.Now()
	measureStart := runStart.Add(c.Warmup)
	measureEnd := measureStart.Add(c.Duration)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var pace *pacer
	if open {
		pace = newPacer(runStart, c.Rate)
	}

	// Server-side counters at the start of the measured window (best
	// effort: a target without them, or a failed scrape, records none).
	ct, hasCounters := s.t.(counterTarget)
	var before map[string]float64
	countersAt := make(chan map[string]float64, 1)
	if hasCounters {
		go func() {
			t := time.NewTimer(time.Until(measureStart))
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			m, _ := ct.Counters(ctx)
			countersAt <- m
		}()
	}

	coll := newCollector(recs, measureStart, c.Interval, prog, c.Duration)
	var wg sync.WaitGroup
	for i := range nw {
		rng := rand.New(rand.NewPCG(uint64(runStart.UnixNano()), uint64(i)))
		wg.Go(func() {
			if open {
				runOpen(runCtx, clients[i], recs[i], rng, c.Mix, pace, measureStart, measureEnd)
			} else {
				runClosed(runCtx, clients[i], recs[i], rng, c.Mix, measureStart, measureEnd)
			}
		})
	}
	collDone := make(chan struct{})
	go func() {
		defer close(collDone)
		coll.run(runCtx)
	}()
	wg.Wait()
	stop()
	<-collDone
	end := time.Now()
	coll.flush(end)
	prog.finish()

	secs := c.Duration.Seconds()
	if end.Before(measureEnd) { // cancelled
		secs = max(end.Sub(measureStart).Seconds(), 0)
	}
	res, err := buildResult(&c, s.t.Info(), recs, coll.points, secs, open)
	if err != nil {
		return nil, err
	}
	if hasCounters {
		before = <-countersAt
		if after, err := ct.Counters(ctx); err == nil && before != nil {
			res.TargetCounters = counterDelta(before, after)
		}
	}
	res.Started = measureStart.UTC().Truncate(time.Second)
	res.Seeding = s.seed
	res.Config.Hot, res.Config.Cold, res.Config.RevokePool = s.pop.HotLen(), s.pop.ColdLen(), s.pool
	return res, nil
}

// runClosed sends requests back to back until measureEnd; it records those
// started in [measureStart, measureEnd).
func runClosed(ctx context.Context, cl Client, rec *recorder, rng *rand.Rand, mix Mix, measureStart, measureEnd time.Time) {
	for ctx.Err() == nil {
		w := mix.Pick(rng.Uint64())
		start := time.Now()
		if !start.Before(measureEnd) {
			return
		}
		err := cl.Do(ctx, w, rng)
		if !start.Before(measureStart) {
			rec.record(w.index(), time.Since(start), 0, err)
		}
	}
}

// runOpen sends the requests of the pacer's schedule until measureEnd; it
// records those intended in [measureStart, measureEnd), with their latency
// measured from the intended time.
func runOpen(ctx context.Context, cl Client, rec *recorder, rng *rand.Rand, mix Mix, p *pacer, measureStart, measureEnd time.Time) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		intended := p.next()
		if !intended.Before(measureEnd) {
			return
		}
		if wait := time.Until(intended); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		w := mix.Pick(rng.Uint64())
		sent := time.Now()
		err := cl.Do(ctx, w, rng)
		done := time.Now()
		if !intended.Before(measureStart) {
			lat, svc := openLoopLatency(intended, sent, done)
			rec.record(w.index(), lat, svc, err)
		}
	}
}

// buildResult merges the recorders into a Result.
func buildResult(c *Config, info TargetInfo, recs []*recorder, series []Point, secs float64, open bool) (*Result, error) {
	res := &Result{
		Schema:  SchemaVersion,
		Name:    c.Name,
		Target:  info,
		Machine: currentMachine(),
		Seconds: round2(secs),
		Config: RunConfig{
			Mix: c.Mix.String(), Mode: "closed", Connections: c.Connections, Pipeline: c.Pipeline,
			Workers: c.Workers(), Rate: c.Rate, Warmup: c.Warmup.String(), Duration: c.Duration.String(),
			Timeout: c.Timeout.String(), Tokens: c.Tokens, CacheCap: c.CacheCapacity,
		},
		Workloads: map[Workload]*WorkloadResult{},
		Series:    series,
	}
	if res.Name == "" {
		res.Name = c.defaultName()
	}
	if open {
		res.Config.Mode = "open"
	}
	if k, ok := registeredKind(info.Kind); ok && k.ValueSize {
		res.Config.ValueSize = c.ValueSize
	}
	total, totalSvc := newHistogram(), newHistogram()
	for _, w := range c.Mix.Workloads() {
		i := w.index()
		lat, svc := newHistogram(), newHistogram()
		wr := &WorkloadResult{ErrorsByKind: map[ErrorKind]int64{}}
		for _, r := range recs {
			if err := mergeInto(lat, r.lat[i]); err != nil {
				return nil, err
			}
			if open {
				if err := mergeInto(svc, r.svc[i]); err != nil {
					return nil, err
				}
			}
			wr.Requests += r.reqs[i]
			for k, n := range r.errs[i] {
				wr.ErrorsByKind[k] += n
				wr.Errors += n
			}
		}
		wr.Latency = summarize(lat)
		if secs > 0 {
			wr.Throughput = round2(float64(wr.Requests-wr.Errors) / secs)
		}
		if open {
			s := summarize(svc)
			wr.ServiceTime = &s
		}
		if len(wr.ErrorsByKind) == 0 {
			wr.ErrorsByKind = nil
		}
		res.Workloads[w] = wr
		res.Requests += wr.Requests
		res.Errors += wr.Errors
		for k, n := range wr.ErrorsByKind {
			if res.ErrorsByKind == nil {
				res.ErrorsByKind = map[ErrorKind]int64{}
			}
			res.ErrorsByKind[k] += n
		}
		if err := mergeInto(total, lat); err != nil {
			return nil, err
		}
		if err := mergeInto(totalSvc, svc); err != nil {
			return nil, err
		}
	}
	res.Latency = summarize(total)
	if open {
		s := summarize(totalSvc)
		res.ServiceTime = &s
	}
	if secs > 0 {
		res.Throughput = round2(float64(res.Requests-res.Errors) / secs)
	}
	h, err := encodeHistogram(total)
	if err != nil {
		return nil, err
	}
	res.Histogram = h
	return res, nil
}
