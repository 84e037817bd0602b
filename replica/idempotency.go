package replica

import (
	"time"

	"github.com/tokencache/tokencache/token"
)

// IdempotencyWindow is how long an Idempotency-Key is remembered, and
// maxIdempotencyKeys how many at most. Both are constants rather than
// settings because every node must prune the table identically.
const (
	IdempotencyWindow  = 24 * time.Hour
	maxIdempotencyKeys = 1 << 20
)

// IdempotencyKey returns the token an earlier entry minted for key. Safe
// for concurrent use.
func (s *Machine) IdempotencyKey(key string) (token.Key, bool) {
	s.idemMu.RLock()
	defer s.idemMu.RUnlock()
	return s.idem.get(key)
}

// idempotencyTable remembers which token each Idempotency-Key minted. It is
// part of the replicated state: pruned only by times carried in commands, so
// every node holds the same table.
type idempotencyTable struct {
	m     map[string]idemEntry
	order []idemRef // insertion order, for pruning
	head  int
}

type idemEntry struct {
	key token.Key
	at  token.Time
}

type idemRef struct {
	id string
	at token.Time
}

func newIdempotencyTable() idempotencyTable {
	return idempotencyTable{m: make(map[string]idemEntry)}
}

func (t *idempotencyTable) get(id string) (token.Key, bool) {
	e, ok := t.m[id]
	return e.key, ok
}

func (t *idempotencyTable) put(id string, k token.Key, at token.Time) {
	t.m[id] = idemEntry{key: k, at: at}
	t.order = append(t.order, idemRef{id: id, at: at})
	for len(t.m) > maxIdempotencyKeys {
		t.dropOldest()
	}
}

// prune drops entries older than the window, judged by the command's time.
func (t *idempotencyTable) prune(now token.Time) {
	for t.head < len(t.order) && t.order[t.head].at < now-token.Time(IdempotencyWindow) {
		t.dropOldest()
	}
}

func (t *idempotencyTable) dropOldest() {
	ref := t.order[t.head]
	t.order[t.head] = idemRef{}
	t.head++
	if e, ok := t.m[ref.id]; ok && e.at == ref.at {
		delete(t.m, ref.id)
	}
	if t.head > 1024 && t.head*2 > len(t.order) {
		t.order = append([]idemRef(nil), t.order[t.head:]...)
		t.head = 0
	}
}

// entries returns the live entries in insertion order (for snapshots).
func (t *idempotencyTable) entries() []idemRef {
	out := make([]idemRef, 0, len(t.m))
	for _, ref := range t.order[t.head:] {
		if e, ok := t.m[ref.id]; ok && e.at == ref.at {
			out = append(out, ref)
		}
	}
	return out
}
