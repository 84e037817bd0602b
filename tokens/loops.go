package tokens

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/replica"
	"github.com/tokencache/tokencache/token"
)

// Purge deletes every token past retention now (the reaper's job, at once),
// or with includeExpired every expired or revoked token, and returns them.
func (s *Service) Purge(ctx context.Context, includeExpired bool) ([]*token.Token, error) {
	res, err := s.write(ctx, &WriteRequest{Purge: &PurgeSpec{IncludeExpired: includeExpired}})
	if err != nil {
		return nil, err
	}
	return res.Tokens, nil
}

// leaderPurge finds and deletes, in batches of ReapBatch, what Purge asks for.
func (s *Service) leaderPurge(ctx context.Context, includeExpired bool) ([]*token.Token, error) {
	var out []*token.Token
	for {
		batch, err := s.purgeCandidates(ctx, includeExpired)
		if err != nil {
			return out, err
		}
		if len(batch) == 0 {
			return out, nil
		}
		cmd := &replica.Command{Op: replica.OpDelete}
		for _, t := range batch {
			cmd.Deletes = append(cmd.Deletes, persist.Delete{Key: t.Key, MaxIndex: t.Index})
		}
		if _, err := s.propose(ctx, cmd); err != nil {
			return out, err
		}
		out = append(out, batch...)
		if len(batch) < s.cfg.ReapBatch {
			return out, nil
		}
	}
}

// purgeCandidates returns up to ReapBatch tokens to delete now, from the view.
func (s *Service) purgeCandidates(ctx context.Context, includeExpired bool) ([]*token.Token, error) {
	now := token.At(s.now())
	before := now - token.Time(s.rules.Grace()) // end of use before this ⇒ past retention
	if includeExpired {
		before = now
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.ReadTimeout)
	defer cancel()
	rows, err := s.store.Ended(rctx, before+1, s.cfg.ReapBatch) // Ended is exclusive
	if err != nil {
		return nil, s.storeErr(err)
	}
	ended := func(t *token.Token) bool {
		end := token.EndOfUse(t)
		return end != 0 && end <= before
	}
	all := s.overlay(rows, ended)
	if len(all) > s.cfg.ReapBatch {
		all = all[:s.cfg.ReapBatch]
	}
	return all, nil
}

// reapLoop deletes tokens past retention, on the leader, every ReapInterval.
func (s *Service) reapLoop() {
	t := time.NewTicker(s.cfg.ReapInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if !s.repl.IsLeader() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ReapInterval)
		n, err := s.leaderPurge(ctx, false)
		cancel()
		switch {
		case err != nil:
			s.log.Warn("cannot delete tokens past retention", "deleted", len(n), "err", err)
		case len(n) > 0:
			s.log.Info("deleted tokens past retention", "count", len(n))
		}
	}
}

// touchInterval is how often recorded uses are replicated.
func (s *Service) touchInterval() time.Duration {
	if s.cfg.TouchInterval > 0 {
		return s.cfg.TouchInterval
	}
	if s.rules.IdleTimeout <= 0 {
		return 30 * time.Second
	}
	return min(max(s.rules.IdleTimeout/10, time.Second), 30*time.Second)
}

// maxTouchBatch bounds the keys of one replica.OpTouch entry.
const maxTouchBatch = 10_000

// touchLoop replicates this node's recorded uses in coalesced batches: one
// log entry per interval per node, never one per validation.
func (s *Service) touchLoop() {
	t := time.NewTicker(s.touchInterval())
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.flushUses()
	}
}

// flushUses replicates recorded uses now.
func (s *Service) flushUses() {
	for {
		uses := s.cache.DrainUsed(maxTouchBatch)
		if len(uses) == 0 {
			return
		}
		touches := make([]persist.Touch, len(uses))
		for i, u := range uses {
			touches[i] = persist.Touch{Key: u.Key, At: u.At}
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WriteTimeout)
		_, err := s.write(ctx, &WriteRequest{Touch: touches})
		cancel()
		if err != nil {
			s.log.Debug("cannot replicate last-used times; they stay local", "count", len(uses), "err", err)
			return
		}
		if len(uses) < maxTouchBatch {
			return
		}
	}
}

// warmStart fills the cache newest-first from the store, in batches of
// LoadBatchSize, until it is full, and builds the key filter.
func (s *Service) warmStart() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	start := s.now()
	var cursor persist.Cursor
	loaded, read := 0, 0
	lastLog := start
	for !s.cache.Full() {
		mark := s.cache.Mark()
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		batch, next, err := s.store.Newest(rctx, cursor, s.cfg.LoadBatchSize)
		rcancel()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("warm start stopped; misses will read through", "loaded", loaded, "err", err)
			}
			break
		}
		read += len(batch)
		loaded += s.cache.Fill(batch, mark)
		if now := s.now(); now.Sub(lastLog) >= 5*time.Second {
			s.log.Info("warm start in progress", "loaded", loaded, "read", read)
			lastLog = now
		}
		if next.IsZero() || len(batch) == 0 {
			break
		}
		cursor = next
	}
	s.warm.Store(true)
	if loaded > 0 {
		s.log.Info("warm start done", "loaded", loaded, "seconds", s.now().Sub(start).Seconds())
	}
	s.keyFilterLoop(ctx, read)
}

// keyFilterCheck is how often the key filter's load is checked.
const keyFilterCheck = 5 * time.Second

// keyFilterLoop builds the key filter, then rebuilds it (sized for twice the
// keys it holds) whenever new tokens have filled it past 1.25× what it was
// sized for, so that false positives, and with them the store reads a flood
// of unknown tokens costs, stay near 1%.
func (s *Service) keyFilterLoop(ctx context.Context, expected int) {
	scan := func(ctx context.Context, fn func(token.Key) error) error {
		return persist.ScanKeys(ctx, s.store, fn)
	}
	build := func(n int) {
		if err := s.cache.BuildKeyFilter(ctx, n, scan); err != nil && ctx.Err() == nil {
			s.log.Warn("cannot build the key filter; unknown keys will query the store", "err", err)
		}
	}
	build(expected)
	// Warm start decoded up to a cache's worth of rows and the filter's scan
	// read every stored key: hand that garbage back to the OS now, once,
	// rather than carry it in the resident set until the heap next grows
	// (the hot path allocates nothing, so that can take a long time).
	if ctx.Err() == nil {
		debug.FreeOSMemory()
	}
	t := time.NewTicker(keyFilterCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		keys, capacity := s.cache.KeyFilterLoad()
		if capacity == 0 || keys > capacity+capacity/4 {
			s.log.Debug("rebuilding the key filter", "keys", keys, "sized_for", capacity)
			build(2 * keys)
		}
	}
}
