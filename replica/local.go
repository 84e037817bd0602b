package replica

import (
	"context"
	"sync"
)

// LocalLog is the log of a single process without replication: proposals are
// applied at once, in order, at consecutive indexes. It is what the service
// runs on in unit tests; it is safe for concurrent use.
type LocalLog struct {
	mu    sync.Mutex
	state *Machine
	index uint64
}

// NewLocalLog returns a LocalLog whose next index follows start (pass the
// store's persisted index, so that new rows always carry larger indexes).
func NewLocalLog(state *Machine, start uint64) *LocalLog {
	state.cache.Advance(start)
	return &LocalLog{state: state, index: start}
}

// Propose applies cmd at the next index.
func (l *LocalLog) Propose(ctx context.Context, cmd *Command) (Applied, error) {
	if err := ctx.Err(); err != nil {
		return Applied{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.index++
	res := l.state.Apply(l.index, cmd)
	return Applied{Index: l.index, Done: true, Result: res}, nil
}

// IsLeader reports true: a single process always leads.
func (l *LocalLog) IsLeader() bool { return true }

// WaitApplied returns at once: the only node applied it in Propose.
func (l *LocalLog) WaitApplied(context.Context, uint64) error { return nil }

// Consistent returns at once: the only node has every write.
func (l *LocalLog) Consistent(context.Context) error { return nil }

// Forward refuses: a single process always leads, so it never forwards.
func (l *LocalLog) Forward(context.Context, []byte) ([]byte, error) {
	return nil, ErrNoLeader
}

// Fence reports nil: a single process is never out of contact.
func (l *LocalLog) Fence() error { return nil }

// CatchUp reports false: the only node is never behind.
func (l *LocalLog) CatchUp(context.Context) bool { return false }

// ReadyCheck reports nil: a single process has nothing to join.
func (l *LocalLog) ReadyCheck(context.Context) error { return nil }
