package persist

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// gate bounds the connections in use, so that waiting for one can time
// out (database/sql would wait for ever, or until the context ends). The
// nil gate never waits.
type gate struct {
	slots chan struct{}
	what  string // the connections it counts, for the error message
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
		return nil
	default:
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-t.C:
		return fmt.Errorf("%w: no database connection became free within persist.pool_timeout (%s): all %d of %s are in use",
			ErrUnavailable, timeout, cap(g.slots), g.what)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) release() {
	if g != nil {
		<-g.slots
	}
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
