package tokens

import (
	"sync"
	"time"

	"github.com/tokencache/tokencache/replica"
	"github.com/tokencache/tokencache/token"
)

// memo remembers, on the node that received an issue with an
// Idempotency-Key, the key and secret it generated (until the request is
// refused: a request that changed nothing does not use up its key), so that a retry of the
// same request reuses them (and so mints nothing new even if the first
// attempt did commit) and can show the token text again. It lives only in
// this node's memory: the replicated state knows which token a key minted,
// but never its secret. Safe for concurrent use.
type memo struct {
	mu      sync.Mutex
	entries map[string]memoEntry
	order   []string
}

type memoEntry struct {
	fingerprint string // of the request, so a different request with the same key is a conflict
	key         token.Key
	secret      string
	at          time.Time
}

const (
	memoMax = 100_000
	memoTTL = replica.IdempotencyWindow
)

func newMemo() *memo { return &memo{entries: make(map[string]memoEntry)} }

// remember stores e for id unless an entry exists; it returns the entry in
// force.
func (m *memo) remember(id string, e memoEntry) memoEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.entries[id]; ok && e.at.Sub(old.at) <= memoTTL {
		return old
	}
	m.entries[id] = e
	m.order = append(m.order, id)
	for len(m.entries) > memoMax && len(m.order) > 0 {
		delete(m.entries, m.order[0])
		m.order = m.order[1:]
	}
	if len(m.order) > 2*memoMax {
		m.order = append([]string(nil), m.order[len(m.order)-memoMax:]...)
	}
	return e
}

// forget drops the entry of id if it is still the one that generated key (a
// concurrent request with the same Idempotency-Key may have replaced it).
func (m *memo) forget(id string, key token.Key) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[id]; ok && e.key == key {
		delete(m.entries, id)
	}
}
