package jwt

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"
)

// TrustedStatus is what a trusted issuer's key refresh looks like now: for
// /v1/cluster, metrics and logs. It never holds key material.
type TrustedStatus struct {
	Issuer string `json:"issuer"`
	// Source is the JWKS file, or the JWKS URL without password or query.
	Source string `json:"source"`
	// Kids are the kids of the last good set, sorted; empty until a set
	// has loaded.
	Kids []string `json:"kids"`
	// Skipped names the keys of the last good set that were left out
	// (use other than sig, an unsupported algorithm), with the reason.
	Skipped []string `json:"skipped,omitempty"`
	// LastRefresh is when the last good set was loaded or confirmed
	// unchanged; zero until then.
	LastRefresh time.Time `json:"last_refresh,omitzero"`
	// LastAttempt is when the last load started.
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	// LastError is why the last load failed; "" when it succeeded. The
	// keys of the last good set stay in use meanwhile.
	LastError string `json:"last_error,omitempty"`
	// NextRefresh is when the background refresh loads again (zero when
	// it is not running).
	NextRefresh time.Time `json:"next_refresh,omitzero"`
	// Loads counts load attempts, Failures the failed ones, and
	// RateLimited the unknown-kid refreshes refused because one ran less
	// than MinTrustedRefresh earlier.
	Loads       uint64 `json:"loads"`
	Failures    uint64 `json:"failures"`
	RateLimited uint64 `json:"rate_limited"`
}

// refreshFlight is one refresh under way; callers that arrive meanwhile
// wait for it rather than starting another.
type refreshFlight struct {
	done chan struct{}
	err  error // set before done is closed
}

// Status returns a copy of the refresh status. It does not block on a
// refresh under way.
func (t *Trusted) Status() TrustedStatus {
	t.mu.Lock()
	s := t.stat
	t.mu.Unlock()
	ks := t.set.Load()
	s.Kids = slices.Clone(ks.kids)
	s.Skipped = slices.Clone(ks.skipped)
	return s
}

// Refresh loads the JWKS now (a file only when it changed), unless a load
// is under way, in which case it waits for that one. On failure the last
// good set stays in use and the error is returned (and logged).
func (t *Trusted) Refresh(ctx context.Context) error {
	return t.refresh(ctx, refreshNow)
}

// refreshKind is why a load runs.
type refreshKind uint8

const (
	refreshNow     refreshKind = iota // scheduled, or Refresh
	refreshEarly                      // a kid not in the set (requestEarly)
	refreshInitial                    // NewTrusted's read of a file: its caller reports errors
)

// requestEarly asks the background loop for an early fetch, for a kid
// not in the set. It never blocks. It does nothing when the loop is not
// running, when an early fetch is already asked for, or when the last
// fetch started less than MinTrustedRefresh ago (counted in RateLimited);
// otherwise it reserves the fetch (LastAttempt) so that the misses that
// follow are refused at once.
func (t *Trusted) requestEarly() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.started || t.closed || t.earlyAsked {
		return
	}
	now := t.now()
	if !t.stat.LastAttempt.IsZero() && now.Sub(t.stat.LastAttempt) < MinTrustedRefresh {
		t.stat.RateLimited++
		return
	}
	t.stat.LastAttempt = now
	t.earlyAsked = true
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// errTrustedClosed is Start's answer once Close was called.
var errTrustedClosed = errors.New("trusted issuer closed")

// refresh loads the source once, or waits for the load under way.
func (t *Trusted) refresh(ctx context.Context, kind refreshKind) error {
	t.mu.Lock()
	if kind == refreshEarly {
		t.earlyAsked = false // LastAttempt was set by requestEarly
	}
	if f := t.flight; f != nil {
		t.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if kind != refreshEarly {
		t.stat.LastAttempt = t.now()
	}
	f := &refreshFlight{done: make(chan struct{})}
	t.flight = f
	t.stat.Loads++
	t.mu.Unlock()

	f.err = t.load(ctx, kind)

	t.mu.Lock()
	t.flight = nil
	t.mu.Unlock()
	close(f.done)
	return f.err
}

// load loads the source and, when it changed, swaps the key set. Only one
// load runs at a time (refresh's flight). A failure is logged here, except
// NewTrusted's, whose caller reports it.
func (t *Trusted) load(ctx context.Context, kind refreshKind) error {
	r, err := t.src.load(ctx)
	now := t.now()
	if err != nil && ctx.Err() != nil {
		return err // stopped (Close) or given up on: not the source's failure
	}
	if err != nil {
		t.mu.Lock()
		t.stat.LastError = err.Error()
		t.stat.Failures++
		t.failures++
		n := t.failures
		t.mu.Unlock()
		if kind == refreshInitial {
			return err
		}
		// The error names the source and kids, never key material.
		t.log.Warn("cannot refresh the trusted issuer's keys; keeping the last good set",
			"err", err, "consecutive_failures", n, "kids", t.set.Load().kids, "early", kind == refreshEarly)
		return err
	}
	var old, cur *trustedKeys
	if !r.unchanged {
		cur = &trustedKeys{byKid: make(map[string]*Key, len(r.keys)), skipped: r.skipped}
		for _, k := range r.keys {
			cur.byKid[k.ID()] = k
		}
		cur.kids = slices.Sorted(maps.Keys(cur.byKid))
		old = t.set.Swap(cur)
	}
	t.mu.Lock()
	t.stat.LastRefresh = now
	t.stat.LastError = ""
	t.failures = 0
	t.maxAge = r.maxAge
	t.mu.Unlock()
	if cur != nil && !slices.Equal(old.kids, cur.kids) {
		t.log.Info("trusted issuer keys loaded", "kids", cur.kids, "previous_kids", old.kids,
			"skipped", cur.skipped, "early", kind == refreshEarly)
	}
	if cur != nil && t.changed != nil && dropsKey(old, cur) {
		t.changed()
	}
	return nil
}

// dropsKey reports whether cur lacks a kid of old, or holds other material
// under it.
func dropsKey(old, cur *trustedKeys) bool {
	for kid, k := range old.byKid {
		if !k.sameMaterial(cur.byKid[kid]) {
			return true
		}
	}
	return false
}

// nextDelay is how long the background loop waits before the next load: a
// file is polled every trustedFilePoll (capped by Refresh); a URL after
// Refresh, or the issuer's shorter Cache-Control max-age but never less
// than max(Refresh/4, MinTrustedRefresh); after a failure, MinTrustedRefresh
// doubled per consecutive failure, up to Refresh.
func (t *Trusted) nextDelay() time.Duration {
	t.mu.Lock()
	failures, maxAge := t.failures, t.maxAge
	t.mu.Unlock()
	refresh := t.cfg.Refresh
	if _, ok := t.src.(*fileSource); ok {
		return min(trustedFilePoll, refresh)
	}
	if failures > 0 {
		d := MinTrustedRefresh
		for i := 1; i < failures && d < refresh; i++ {
			d *= 2
		}
		return min(d, refresh)
	}
	if maxAge < 0 {
		return refresh
	}
	floor := max(refresh/4, MinTrustedRefresh)
	return min(max(maxAge, floor), refresh)
}

// Start starts the background refresh: a JWKS URL is fetched at once and
// then on nextDelay's schedule; a JWKS file is checked for a change every
// few seconds; both early when Key meets an unknown kid (rate limited). It
// returns at once; the loop runs until ctx ends or Close. Starting twice,
// or after Close, is an error.
func (t *Trusted) Start(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errTrustedClosed
	}
	if t.started {
		return errors.New("trusted issuer refresh already started")
	}
	t.started = true
	ctx, t.cancel = context.WithCancel(ctx)
	t.done = make(chan struct{})
	go t.run(ctx, t.done)
	return nil
}

func (t *Trusted) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	kind := refreshNow
	if _, isFile := t.src.(*fileSource); isFile {
		// NewTrusted read the file: the first look at it is a poll.
		kind = refreshInitial
	}
	for {
		if kind != refreshInitial {
			_ = t.refresh(ctx, kind) // logged by load
		}
		d := t.nextDelay()
		t.mu.Lock()
		t.stat.NextRefresh = t.now().Add(d)
		t.mu.Unlock()
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			t.mu.Lock()
			t.stat.NextRefresh = time.Time{}
			t.mu.Unlock()
			return
		case <-t.kick:
			timer.Stop()
			kind = refreshEarly
		case <-timer.C:
			kind = refreshNow
		}
	}
}

// Close stops the background refresh and waits for it. Key keeps
// answering from the last good set. Idempotent.
func (t *Trusted) Close() error {
	t.mu.Lock()
	t.closed = true
	cancel, done := t.cancel, t.done
	t.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}
