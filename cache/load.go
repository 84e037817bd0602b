package cache

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/tokencache/tokencache/token"
)

// Loader reads one record from the store. It returns (nil, nil) when the
// store has no such key, and an error when it cannot answer.
//
// Lookup keeps load until the load ends: pass a Loader stored once (a field
// or a method value made at start-up), not a closure made per call, or the
// closure escapes to the heap on every Lookup, hits included.
type Loader func(ctx context.Context, k token.Key) (*token.Token, error)

// call is one load in progress for one key, shared by every Lookup of that
// key that misses while it runs (singleflight).
//
// Every field but done and cancel is guarded by the shard mutex; the result
// fields are written before done is closed and read after it.
type call struct {
	done   chan struct{}
	cancel context.CancelFunc // cancels the load's context

	waiters   int  // Lookups waiting for the result
	abandoned bool // every waiter left; the call is no longer in flights

	// Changes of the key applied while the load ran (observed by Put and
	// Delete through the shard's flights map). A row read from the store
	// while the log moved on may be older than the applied state; these say
	// what the applied state is.
	changed     bool
	latest      *entry // newest change seen; nil for a deletion
	latestIndex uint64
	reset       bool // Reset ran while the load was in progress

	tok  *token.Token
	used token.Time
	err  error
}

// observe records a change of the call's key at index (e nil: a deletion).
func (f *call) observe(e *entry, index uint64) {
	if f.changed && index < f.latestIndex {
		return
	}
	f.changed, f.latest, f.latestIndex = true, e, index
}

// Lookup is Get with read-through: on a miss it answers unknown keys from the
// negative cache or the key filter, and otherwise calls load once for all
// concurrent lookups of k (singleflight) and caches the result, unless the
// key was changed by the log while the load ran (then the newer state wins,
// whether or not the cache still holds it; see below). It returns
// (nil, 0, nil) for an unknown key, and load's error when the store cannot
// answer (the error is not cached).
//
// How "the newer state wins" is decided: every Put and Delete of k made
// while the load runs is recorded on the load itself. When the load ends,
// memory is checked again; if memory no longer holds k (the change was
// unpinned, then evicted or dropped), the answer is the newer, by log
// index, of the loaded row and the last change recorded, and nothing is
// cached. A retry is needed only when Reset ran during the load (the store
// may have been replaced under it); then the load is retried once, and a
// second reset answers the loaded row without caching it.
//
// The load runs in its own goroutine with a context of its own, shared by
// every waiting caller: a caller whose ctx ends gets ctx.Err() at once, the
// others keep waiting, and the load's context is cancelled only when every
// waiting caller has left. It carries no value of any caller's ctx (the
// first caller's may be a request context that is recycled once its handler
// returns, such as a *fasthttp.RequestCtx), and no deadline: the Loader
// applies its own timeout.
func (c *Cache) Lookup(ctx context.Context, k token.Key, load Loader) (*token.Token, token.Time, error) {
	s := c.shard(k)
	s.mu.Lock()
	if e, found := s.findLocked(k, true); found {
		s.hits++
		s.mu.Unlock()
		if e == nil {
			return nil, 0, nil
		}
		return e.tok, e.lastUsed(), nil
	}
	s.misses++
	// The filter first: it reads no clock and touches one cache line.
	if !c.keys.mayContain(k) {
		s.filterRejects++
		s.mu.Unlock()
		return nil, 0, nil
	}
	if s.negativeLocked(k, c) {
		s.negHits++
		s.mu.Unlock()
		return nil, 0, nil
	}
	if err := ctx.Err(); err != nil {
		s.mu.Unlock()
		return nil, 0, err
	}
	f := s.flights[k]
	var lctx context.Context
	if f == nil {
		f = &call{done: make(chan struct{})}
		lctx, f.cancel = context.WithCancel(context.Background())
		s.flights[k] = f
		s.loads++
	}
	f.waiters++
	s.mu.Unlock()

	if lctx != nil {
		go c.load(lctx, s, k, f, load)
	}
	select {
	case <-f.done:
		return f.tok, f.used, f.err
	case <-ctx.Done():
		return c.leave(ctx, s, k, f)
	}
}

// leave gives up waiting for f because ctx ended. The last waiter to leave
// cancels the load and unregisters it, so that a later Lookup starts afresh
// instead of joining a load that is being cancelled.
func (c *Cache) leave(ctx context.Context, s *shard, k token.Key, f *call) (*token.Token, token.Time, error) {
	s.mu.Lock()
	select {
	case <-f.done: // done is closed under s.mu: the result is ready, use it
		s.mu.Unlock()
		return f.tok, f.used, f.err
	default:
	}
	f.waiters--
	last := f.waiters == 0
	if last {
		f.abandoned = true
		if s.flights[k] == f {
			delete(s.flights, k)
		}
	}
	s.mu.Unlock()
	if last {
		f.cancel()
	}
	return nil, 0, ctx.Err()
}

// load runs load for f and settles the result.
func (c *Cache) load(ctx context.Context, s *shard, k token.Key, f *call, load Loader) {
	defer f.cancel()
	for attempt := 0; ; attempt++ {
		t, err := callLoader(ctx, load, k)
		s.mu.Lock()
		if f.reset && !f.abandoned && attempt == 0 {
			// Reset ran while the store was read: read it again.
			f.reset, f.changed, f.latest, f.latestIndex = false, false, nil, 0
			s.loads++
			s.mu.Unlock()
			continue
		}
		f.tok, f.used, f.err = c.settleLocked(s, k, f, t, err)
		if s.flights[k] == f {
			delete(s.flights, k)
		}
		close(f.done)
		s.mu.Unlock()
		return
	}
}

// settleLocked decides the answer of a load that returned (t, err) and
// caches it when that is safe. The rule: a row loaded from the store never
// replaces, and is never answered instead of, a newer state applied by the
// log.
func (c *Cache) settleLocked(s *shard, k token.Key, f *call, t *token.Token, err error) (*token.Token, token.Time, error) {
	// Memory holds k again (the log changed it while the load ran, or it was
	// unpinned into the cached part): memory is the newest state.
	if e, found := s.findLocked(k, false); found {
		if e == nil {
			return nil, 0, nil
		}
		return e.tok, e.lastUsed(), nil
	}
	// The log changed k while the load ran, and that change has left memory
	// since (unpinned, then evicted or dropped): it, or a row at least as
	// new, is the answer. Nothing is cached on this rare path.
	if f.changed {
		if err == nil && t != nil && t.Index > f.latestIndex {
			return t, t.LastUsed, nil
		}
		if f.latest == nil {
			return nil, 0, nil
		}
		return f.latest.tok, f.latest.lastUsed(), nil
	}
	if err != nil {
		return nil, 0, err
	}
	if f.abandoned || f.reset {
		// Not observed to the end (abandoned calls leave flights), or reset
		// twice: answer, but do not cache.
		if t == nil {
			return nil, 0, nil
		}
		return t, t.LastUsed, nil
	}
	if t == nil {
		s.addNegativeLocked(k, c)
		return nil, 0, nil
	}
	s.cacheLocked(k, &entry{tok: t})
	return t, t.LastUsed, nil
}

// callLoader calls load, turning a panic or a record of another key into an
// error: the load runs on its own goroutine, where a panic would take the
// whole daemon down with no caller to blame.
func callLoader(ctx context.Context, load Loader, k token.Key) (t *token.Token, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("%w: panic: %v\n%s", ErrLoader, r, debug.Stack())
		}
	}()
	t, err = load(ctx, k)
	if err != nil {
		return nil, err
	}
	if t != nil && t.Key != k {
		return nil, fmt.Errorf("%w: asked for key %s, got %s", ErrLoader, k, t.Key)
	}
	return t, nil
}
