package replica

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokencache/tokencache/cache"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
)

// Writer persists the cache's pinned changes to the store, in log order, and
// releases them once committed. With a local store it runs on every node and
// unpins directly; with a shared store it runs on the leader only and
// announces the persisted index through the log (OpPersisted), on whose
// application every node unpins.
type Writer struct {
	cfg   WriterConfig
	now   func() time.Time
	cache *cache.Cache
	store persist.Store
	log   *slog.Logger

	active    atomic.Bool
	persisted atomic.Uint64
	// Committed transactions, the changes they held and their time, for
	// the metrics.
	batches, changes, writeNanos atomic.Uint64
	healthy                      atomic.Bool
	// announce proposes OpPersisted (shared store only); set by the cluster.
	announce atomic.Pointer[func(context.Context, uint64) error]

	wakeCh   chan struct{}
	urgentCh chan struct{}

	touchMu sync.Mutex
	touches map[token.Key]token.Time

	progMu sync.Mutex
	progCh chan struct{} // closed and replaced on every success or failure

	startOnce sync.Once
	stopOnce  sync.Once
	stop      chan struct{}
	done      chan struct{}
	runCtx    context.Context
	runCancel context.CancelFunc
}

func newWriter(cfg WriterConfig, c *cache.Cache, store persist.Store, log *slog.Logger) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{
		cfg:       cfg,
		cache:     c,
		store:     store,
		log:       log,
		wakeCh:    make(chan struct{}, 1),
		urgentCh:  make(chan struct{}, 1),
		touches:   make(map[token.Key]token.Time),
		progCh:    make(chan struct{}),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		runCtx:    ctx,
		runCancel: cancel,
	}
	if w.now = cfg.Now; w.now == nil {
		w.now = time.Now
	}
	w.healthy.Store(true)
	// A local store is always written by this node; a shared one only once
	// the cluster says this node leads.
	w.active.Store(!store.Shared())
	return w, nil
}

// Start loads the persisted index and starts the flush loop.
func (w *Writer) Start(ctx context.Context) error {
	idx, err := w.store.PersistedIndex(ctx)
	if err != nil {
		return fmt.Errorf("cannot read persisted index: %w", err)
	}
	w.persisted.Store(idx)
	w.startOnce.Do(func() { go w.run() })
	return nil
}

// setActive makes this node the store's writer (shared store: on gaining
// leadership) or not. On activation it re-reads the persisted index from the
// store, which the previous writer may have moved past the last announcement,
// and announces it so that every node releases what is already stored.
func (w *Writer) setActive(ctx context.Context, on bool) error {
	if !w.store.Shared() {
		return nil
	}
	if !on {
		w.active.Store(false)
		return nil
	}
	idx, err := w.store.PersistedIndex(ctx)
	if err != nil {
		return fmt.Errorf("cannot read persisted index: %w", err)
	}
	if idx > w.persisted.Load() {
		w.persisted.Store(idx)
	}
	w.active.Store(true)
	if f := w.announce.Load(); f != nil && idx > 0 {
		if err := (*f)(ctx, idx); err != nil {
			w.log.Warn("cannot announce persisted index", "index", idx, "err", err)
		}
	}
	w.wake(true)
	return nil
}

// observePersisted records an announced persisted index (shared store, on
// nodes that do not write).
func (w *Writer) observePersisted(idx uint64) {
	for {
		cur := w.persisted.Load()
		if idx <= cur || w.persisted.CompareAndSwap(cur, idx) {
			return
		}
	}
}

// wake tells the loop that changes were applied; urgent flushes without
// waiting for a batch to fill (revocations, write-through).
func (w *Writer) wake(urgent bool) {
	ch := w.wakeCh
	if urgent || w.cfg.Mode == WriteThrough {
		ch = w.urgentCh
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (w *Writer) addTouches(ts []persist.Touch) {
	if !w.active.Load() {
		return // a non-writing node has nothing to store; the writer got the same entry
	}
	w.touchMu.Lock()
	for _, t := range ts {
		if t.At > w.touches[t.Key] {
			w.touches[t.Key] = t.At
		}
	}
	w.touchMu.Unlock()
}

func (w *Writer) takeTouches(max int) []persist.Touch {
	w.touchMu.Lock()
	defer w.touchMu.Unlock()
	if len(w.touches) == 0 {
		return nil
	}
	out := make([]persist.Touch, 0, min(max, len(w.touches)))
	for k, at := range w.touches {
		if len(out) == max {
			break
		}
		out = append(out, persist.Touch{Key: k, At: at})
		delete(w.touches, k)
	}
	return out
}

func (w *Writer) restoreTouches(ts []persist.Touch) {
	w.touchMu.Lock()
	for _, t := range ts {
		if t.At > w.touches[t.Key] {
			w.touches[t.Key] = t.At
		}
	}
	w.touchMu.Unlock()
}

func (w *Writer) run() {
	defer close(w.done)
	ticker := time.NewTicker(w.cfg.FlushInterval)
	defer ticker.Stop()
	var backoff time.Duration
	for {
		select {
		case <-w.stop:
			return
		case <-w.urgentCh:
		case <-ticker.C:
		case <-w.wakeCh:
			if w.cache.Pinned() < w.cfg.BatchSize {
				continue // write-behind: let the batch fill until the tick
			}
		}
		if !w.active.Load() {
			continue
		}
		if err := w.drain(w.runCtx); err != nil {
			backoff = min(max(2*backoff, 50*time.Millisecond), w.cfg.RetryMax)
			select {
			case <-w.stop:
				return
			case <-time.After(backoff):
			}
			w.wake(true)
			continue
		}
		backoff = 0
	}
}

// drain writes batches until no pinned change is left.
func (w *Writer) drain(ctx context.Context) error {
	for {
		n, err := w.flushOnce(ctx)
		if err != nil {
			return err
		}
		if n < w.cfg.BatchSize {
			return nil
		}
	}
}

// flushOnce writes one batch and returns how many changes it held.
func (w *Writer) flushOnce(ctx context.Context) (int, error) {
	after := w.persisted.Load()
	changes, upTo := w.cache.Changes(after, w.cfg.BatchSize)
	touches := w.takeTouches(w.cfg.BatchSize)
	if len(changes) == 0 && len(touches) == 0 {
		// Entries that changed no record (touches of absent keys, deletions
		// skipped by their guard, markers): the store is already complete up
		// to upTo, and write-through waiters on those entries may go.
		if upTo > after {
			w.observePersisted(upTo)
			w.progress()
		}
		return 0, nil
	}
	b := &persist.Batch{Touches: touches}
	for _, c := range changes {
		if c.Token != nil {
			b.Puts = append(b.Puts, c.Token)
		} else {
			b.Deletes = append(b.Deletes, persist.Delete{Key: c.Key, MaxIndex: c.MaxIndex})
		}
	}
	if len(changes) > 0 {
		b.Index = upTo
	}
	wctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	began := w.now()
	err := w.store.Write(wctx, b)
	took := w.now().Sub(began)
	cancel()
	if err != nil {
		w.restoreTouches(touches)
		if w.healthy.Swap(false) {
			w.log.Error("cannot write to the store; retrying", "changes", len(changes), "err", err)
		}
		w.progress()
		return 0, fmt.Errorf("cannot persist batch up to index %d: %w", upTo, err)
	}
	if !w.healthy.Swap(true) {
		w.log.Info("store writes recovered")
	}
	w.batches.Add(1)
	w.changes.Add(uint64(len(changes)))
	w.writeNanos.Add(uint64(took))
	w.observePersisted(upTo)
	if len(changes) > 0 {
		if w.store.Shared() {
			if f := w.announce.Load(); f != nil {
				if err := (*f)(ctx, upTo); err != nil {
					w.log.Debug("cannot announce persisted index", "index", upTo, "err", err)
				}
			}
		} else {
			w.cache.Unpin(upTo)
		}
	}
	w.progress()
	return len(changes), nil
}

func (w *Writer) progress() {
	w.progMu.Lock()
	close(w.progCh)
	w.progCh = make(chan struct{})
	w.progMu.Unlock()
}

// WaitPersisted blocks until the store holds every change up to index. It
// fails with ErrStoreUnavailable once a write has failed, and with ctx's
// error when ctx ends first.
func (w *Writer) WaitPersisted(ctx context.Context, index uint64) error {
	for {
		w.progMu.Lock()
		ch := w.progCh
		w.progMu.Unlock()
		if w.persisted.Load() >= index {
			return nil
		}
		if !w.healthy.Load() {
			return ErrStoreUnavailable
		}
		w.wake(true)
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Admit reports whether a new write may be proposed now.
func (w *Writer) Admit() error {
	if w.cache.Pinned() >= w.cfg.MaxPending {
		if !w.healthy.Load() {
			return fmt.Errorf("%w: %d changes wait for the store", ErrStoreUnavailable, w.cache.Pinned())
		}
		return ErrOverloaded
	}
	if w.cfg.Mode == WriteThrough && !w.healthy.Load() && w.active.Load() {
		return ErrStoreUnavailable
	}
	return nil
}

// Close flushes what is pending (until ctx ends) and stops the loop.
func (w *Writer) Close(ctx context.Context) error {
	var err error
	w.stopOnce.Do(func() {
		close(w.stop)
		w.runCancel() // abort a write in flight: the drain below redoes it
		w.startOnce.Do(func() { close(w.done) })
		<-w.done
		if !w.active.Load() {
			return
		}
		for {
			if err = w.drain(ctx); err == nil {
				return
			}
			select {
			case <-ctx.Done():
				err = fmt.Errorf("cannot flush %d pending changes: %w", w.cache.Pinned(), err)
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	return err
}

// WritesThrough reports whether a write must wait for the store: the mode is
// write-through and this node writes the store.
func (w *Writer) WritesThrough() bool { return w.cfg.Mode == WriteThrough && w.active.Load() }

// Active reports whether this node writes the store.
func (w *Writer) Active() bool { return w.active.Load() }

// Healthy reports whether the last store transaction succeeded.
func (w *Writer) Healthy() bool { return w.healthy.Load() }

// WriterStats counts the store transactions this node's writer committed.
type WriterStats struct {
	Batches uint64        // transactions
	Changes uint64        // token changes (puts and deletions) they held
	Time    time.Duration // time spent in them, from begin to commit
}

// Stats returns the writer's counters. Safe for concurrent use.
func (w *Writer) Stats() WriterStats {
	return WriterStats{Batches: w.batches.Load(), Changes: w.changes.Load(), Time: time.Duration(w.writeNanos.Load())}
}
