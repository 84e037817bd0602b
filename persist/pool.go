package persist

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// gate bounds the connections in use, so that waiting for one can time
// out (database/sql would wait for ever, or until the context ends). The
// nil gate never waits.
type gate struct {
	slots chan struct{}
	what  string // the connections it counts, for the error message
	inUse atomic.Int64
	peak  atomic.Int64 // most slots in use since the trimmer last looked
}

func newGate(n int, what string) *gate {
	if n <= 0 {
		return nil
	}
	return &gate{slots: make(chan struct{}, n), what: what}
}

func (g *gate) acquire(ctx context.Context, timeout time.Duration) error {
	if g == nil {
		return nil
	}
	select {
	case g.slots <- struct{}{}:
		g.taken()
		return nil
	default:
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		g.taken()
		return nil
	case <-t.C:
		return fmt.Errorf("%w: no database connection became free within persist.pool_timeout (%s): all %d of %s are in use",
			ErrUnavailable, timeout, cap(g.slots), g.what)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// taken counts a slot taken and keeps the peak.
func (g *gate) taken() {
	n := g.inUse.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
}

func (g *gate) release() {
	if g != nil {
		g.inUse.Add(-1)
		<-g.slots
	}
}

// takePeak returns the most slots in use at once since the last call, and
// starts a new period at the current use.
func (g *gate) takePeak() int {
	return int(g.peak.Swap(g.inUse.Load()))
}

// Overflow connections. database/sql closes a returned connection at once
// when MaxIdleConns connections are already idle. With MaxIdleConns =
// pool_size below MaxOpenConns, a load of more than pool_size concurrent
// queries therefore closes and reopens connections all the time: a moment
// with no waiter is enough for a returned connection to be closed, and the
// next query pays a TCP connect, the authentication, the session settings
// and preparing its statement again (BenchmarkMySQLServiceMiss: a new
// connection for 9% of the misses, half the throughput of the same SELECT on
// a pool that keeps its connections).
//
// So a pool keeps every connection it opened while it is busy
// (MaxIdleConns = MaxOpenConns), and a trimmer closes the idle connections
// beyond pool_size once no more than pool_size were in use at once for a
// whole overflowIdle period: pool_size is still what stays open when the
// load is gone, and max_overflow still bounds what may be open at once.

// overflowIdle is how long the pool must have needed at most pool_size
// connections before the idle ones beyond pool_size are closed.
const overflowIdle = 10 * time.Second

// busyIdleConns is MaxIdleConns under load when max_overflow is -1 (no
// limit on open connections): idle connections are ones the load opened,
// so this only caps what a very large burst leaves behind until the trim.
const busyIdleConns = 1024

// trimmer closes a pool's idle overflow connections (see above). Its
// goroutine is owned by the store: stop ends it and waits.
type trimmer struct {
	db      *sql.DB
	g       *gate // counts the connections in use; nil: sample db.Stats
	keep    int   // pool_size
	busy    int   // MaxIdleConns while the pool is busy
	period  time.Duration
	stopCh  chan struct{}
	done    chan struct{}
	stopped sync.Once
}

// startTrimmer sets db's idle limit for load and starts the trimmer. keep
// is pool_size, maxOpen the most open connections (0: no limit), g the
// pool's gate (nil without a limit).
func startTrimmer(db *sql.DB, g *gate, keep, maxOpen int, period time.Duration) *trimmer {
	busy := maxOpen
	if busy <= 0 {
		busy = max(keep, busyIdleConns)
	}
	db.SetMaxIdleConns(busy)
	t := &trimmer{db: db, g: g, keep: keep, busy: busy, period: period,
		stopCh: make(chan struct{}), done: make(chan struct{})}
	if busy <= keep {
		close(t.done) // no overflow: nothing to trim
		return t
	}
	go t.run()
	return t
}

func (t *trimmer) run() {
	defer close(t.done)
	const samples = 10 // without a gate: db.Stats samples per period
	tick := time.NewTicker(t.period / samples)
	defer tick.Stop()
	peak, n := 0, 0
	for {
		select {
		case <-t.stopCh:
			return
		case <-tick.C:
		}
		if t.g == nil {
			peak = max(peak, t.db.Stats().InUse)
		}
		if n++; n < samples {
			continue
		}
		if t.g != nil {
			peak = t.g.takePeak()
		}
		if peak <= t.keep {
			if st := t.db.Stats(); st.Idle > 0 && st.Idle+st.InUse > t.keep {
				t.db.SetMaxIdleConns(t.keep) // closes the idle ones beyond keep
				t.db.SetMaxIdleConns(t.busy)
			}
		}
		peak, n = 0, 0
	}
}

// stop ends the trimmer and waits for it. It is idempotent.
func (t *trimmer) stop() {
	if t == nil {
		return
	}
	t.stopped.Do(func() {
		close(t.stopCh)
		<-t.done
	})
}

// stmtCache prepares each statement once per pool; database/sql then keeps
// one prepared copy per connection. Preparing costs more than running a
// point query on SQLite (the parser dominated Get before), and saves a
// round trip per statement on a server. Only a bounded set of statements
// goes through it: the static ones and the power-of-two chunks.
type stmtCache struct {
	db *sql.DB
	m  sync.Map // query string → *sql.Stmt
}

func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	if v, ok := c.m.Load(query); ok {
		return v.(*sql.Stmt), nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if v, loaded := c.m.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return v.(*sql.Stmt), nil
	}
	return st, nil
}

// load returns the statement of query if it was prepared.
func (c *stmtCache) load(query string) (*sql.Stmt, bool) {
	v, ok := c.m.Load(query)
	if !ok {
		return nil, false
	}
	return v.(*sql.Stmt), true
}

func (c *stmtCache) close() error {
	var errs []error
	c.m.Range(func(k, v any) bool {
		errs = append(errs, v.(*sql.Stmt).Close())
		c.m.Delete(k)
		return true
	})
	return errors.Join(errs...)
}
