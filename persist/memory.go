package persist

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/tokencache/tokencache/token"
)

// Memory is a Store held in this process's memory: maps and indexes under
// one RWMutex, with the same write rules as the SQL stores.
//
// Nothing in it survives a restart of the process, so with persist.store
// "memory" nothing survives a restart of the whole cluster: a node that
// restarts gets its tokens back only from the Raft log and snapshots of the
// nodes that stayed up. Use it for tests and throwaway sidecars.
//
// Memory is safe for concurrent use; Write takes the write lock, every
// other method a read lock, and none blocks on I/O. Records are copied on
// the way in and on the way out, so callers may change what they pass and
// what they get. Scan calls fn on a snapshot taken under the read lock,
// outside the lock, so fn may call the store.
type Memory struct {
	mu        sync.RWMutex
	rows      map[token.Key]*token.Token // private records, replaced on change, never mutated
	byUser    map[string]map[token.Key]struct{}
	byParent  map[token.Key]map[token.Key]struct{}
	order     []orderKey // every row, sorted by (created, key) ascending
	persisted uint64
	closed    bool
}

var _ Store = (*Memory)(nil)

// orderKey is a position in the (created, key) order.
type orderKey struct {
	created token.Time
	key     token.Key
}

func cmpOrder(a, b orderKey) int {
	if c := cmp.Compare(a.created, b.created); c != 0 {
		return c
	}
	return bytes.Compare(a.key[:], b.key[:])
}

// NewMemory returns an empty memory store.
func NewMemory() *Memory {
	return &Memory{
		rows:     make(map[token.Key]*token.Token),
		byUser:   make(map[string]map[token.Key]struct{}),
		byParent: make(map[token.Key]map[token.Key]struct{}),
	}
}

// rlock takes the read lock after checking ctx and that m is open; the
// caller unlocks when it returns nil.
func (m *Memory) rlock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return errClosed
	}
	return nil
}

// Get returns a copy of the row for k, or ErrNotFound.
func (m *Memory) Get(ctx context.Context, k token.Key) (*token.Token, error) {
	if err := m.rlock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	t, ok := m.rows[k]
	if !ok {
		return nil, ErrNotFound
	}
	return t.Clone(), nil
}

// List returns rows matching q, newest first.
func (m *Memory) List(ctx context.Context, q Query) ([]*token.Token, error) {
	if q.Limit <= 0 {
		return nil, errBadLimit
	}
	if err := m.rlock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	match := func(t *token.Token) bool { return q.Type == token.TypeUnknown || t.Type == q.Type }
	var out []*token.Token
	if q.Username != "" {
		for k := range m.byUser[q.Username] {
			if t := m.rows[k]; match(t) {
				out = append(out, t)
			}
		}
		slices.SortFunc(out, func(a, b *token.Token) int { return byCreatedKey(b, a) })
		return cloneAll(out[:min(len(out), q.Limit)]), nil
	}
	for i := len(m.order) - 1; i >= 0 && len(out) < q.Limit; i-- {
		if t := m.rows[m.order[i].key]; match(t) {
			out = append(out, t)
		}
	}
	return cloneAll(out), nil
}

// Children returns the direct children of parents, by created then key.
func (m *Memory) Children(ctx context.Context, parents []token.Key) ([]*token.Token, error) {
	if err := m.rlock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	var out []*token.Token
	for _, p := range dedupKeys(parents) {
		for k := range m.byParent[p] {
			out = append(out, m.rows[k])
		}
	}
	slices.SortFunc(out, byCreatedKey)
	return cloneAll(out), nil
}

// Named returns every row of username named name, by created then key.
func (m *Memory) Named(ctx context.Context, username, name string) ([]*token.Token, error) {
	if name == "" {
		return nil, nil
	}
	if err := m.rlock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	var out []*token.Token
	for k := range m.byUser[username] {
		if t := m.rows[k]; t.Name() == name {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, byCreatedKey)
	return cloneAll(out), nil
}

// Orphaned returns rows whose parent row is missing, newest first.
func (m *Memory) Orphaned(ctx context.Context, limit int) ([]*token.Token, error) {
	if limit <= 0 {
		return nil, errBadLimit
	}
	if err := m.rlock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	var out []*token.Token
	for p, kids := range m.byParent {
		if _, ok := m.rows[p]; ok {
			continue
		}
		for k := range kids {
			out = append(out, m.rows[k])
		}
	}
	slices.SortFunc(out, func(a, b *token.Token) int { return byCreatedKey(b, a) })
	return cloneAll(out[:min(len(out), limit)]), nil
}

// Stats counts rows, and live session users and user tokens at now.
func (m *Memory) Stats(ctx context.Context, now token.Time) (Stats, error) {
	if err := m.rlock(ctx); err != nil {
		return Stats{}, err
	}
	defer m.mu.RUnlock()
	st := Stats{Tokens: int64(len(m.rows))}
	users := make(map[string]struct{})
	for _, t := range m.rows {
		if !token.Live(t, now) {
			continue
		}
		switch t.Type {
		case token.TypeSession:
			users[t.Username] = struct{}{}
		case token.TypeUser:
			st.UserTokens++
		}
	}
	st.UniqueSessions = int64(len(users))
	return st, nil
}

// Ended returns rows whose end of use is before before, oldest first (then
// by key).
func (m *Memory) Ended(ctx context.Context, before token.Time, limit int) ([]*token.Token, error) {
	if limit <= 0 {
		return nil, errBadLimit
	}
	if err := m.rlock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	type ended struct {
		end token.Time
		t   *token.Token
	}
	var all []ended
	for _, t := range m.rows {
		if end := token.EndOfUse(t); end != 0 && end < before {
			all = append(all, ended{end, t})
		}
	}
	slices.SortFunc(all, func(a, b ended) int {
		return cmpOrder(orderKey{a.end, a.t.Key}, orderKey{b.end, b.t.Key})
	})
	out := make([]*token.Token, 0, min(len(all), limit))
	for _, e := range all[:min(len(all), limit)] {
		out = append(out, e.t.Clone())
	}
	return out, nil
}

// Newest returns up to limit rows older than cursor, newest first.
func (m *Memory) Newest(ctx context.Context, cursor Cursor, limit int) ([]*token.Token, Cursor, error) {
	if limit <= 0 {
		return nil, Cursor{}, errBadLimit
	}
	if err := m.rlock(ctx); err != nil {
		return nil, Cursor{}, err
	}
	defer m.mu.RUnlock()
	end := len(m.order) // rows before end are older than the cursor
	if !cursor.IsZero() {
		end, _ = slices.BinarySearchFunc(m.order, orderKey{cursor.Created, cursor.Key}, cmpOrder)
	}
	start := max(0, end-limit)
	out := make([]*token.Token, 0, end-start)
	for i := end - 1; i >= start; i-- {
		out = append(out, m.rows[m.order[i].key].Clone())
	}
	if start == 0 || len(out) == 0 {
		return out, Cursor{}, nil
	}
	last := out[len(out)-1]
	return out, Cursor{Created: last.Created, Key: last.Key}, nil
}

// ScanKeys calls fn for every key, from a snapshot taken under the read
// lock; fn runs without the lock.
func (m *Memory) ScanKeys(ctx context.Context, fn func(token.Key) error) error {
	if err := m.rlock(ctx); err != nil {
		return err
	}
	keys := make([]token.Key, 0, len(m.rows))
	for k := range m.rows {
		keys = append(keys, k)
	}
	m.mu.RUnlock()
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

// Scan calls fn for a copy of every row, from a snapshot taken under the
// read lock; fn runs without the lock.
func (m *Memory) Scan(ctx context.Context, fn func(*token.Token) error) error {
	if err := m.rlock(ctx); err != nil {
		return err
	}
	snap := make([]*token.Token, 0, len(m.rows))
	for _, t := range m.rows {
		snap = append(snap, t)
	}
	m.mu.RUnlock()
	for _, t := range snap {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(t.Clone()); err != nil {
			return err
		}
	}
	return nil
}

// Write applies b atomically under the write lock, with the rules of
// SQLStore.Write: guarded upserts (keeping the larger last_used), guarded
// deletes, forward-only touches, and a forward-only persisted index.
func (m *Memory) Write(ctx context.Context, b *Batch) error {
	if err := checkBatch(b); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p := makePlan(b)
	// Copy before taking the lock; the caller keeps its records.
	puts := make([]*token.Token, len(p.puts))
	for i, t := range p.puts {
		puts[i] = t.Clone()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	var added []orderKey
	removed := make(map[orderKey]struct{})
	for _, t := range puts {
		old, ok := m.rows[t.Key]
		if ok && old.Index >= t.Index {
			continue
		}
		if ok {
			t.LastUsed = max(t.LastUsed, old.LastUsed)
			m.unindex(old)
			if old.Created != t.Created {
				removed[orderKey{old.Created, old.Key}] = struct{}{}
				added = append(added, orderKey{t.Created, t.Key})
			}
		} else {
			added = append(added, orderKey{t.Created, t.Key})
		}
		m.rows[t.Key] = t
		m.index(t)
	}
	for _, d := range p.deletes {
		old, ok := m.rows[d.Key]
		if !ok || old.Index > d.MaxIndex {
			continue
		}
		delete(m.rows, d.Key)
		m.unindex(old)
		removed[orderKey{old.Created, old.Key}] = struct{}{}
	}
	for _, tc := range p.touches {
		old, ok := m.rows[tc.Key]
		if !ok || old.LastUsed >= tc.At {
			continue
		}
		t := old.Clone()
		t.LastUsed = tc.At
		m.rows[tc.Key] = t
	}
	m.reorder(added, removed)
	m.persisted = max(m.persisted, b.Index)
	return nil
}

// index and unindex maintain byUser and byParent for t.
func (m *Memory) index(t *token.Token) {
	u := m.byUser[t.Username]
	if u == nil {
		u = make(map[token.Key]struct{})
		m.byUser[t.Username] = u
	}
	u[t.Key] = struct{}{}
	if p := t.Parent(); !p.IsZero() {
		kids := m.byParent[p]
		if kids == nil {
			kids = make(map[token.Key]struct{})
			m.byParent[p] = kids
		}
		kids[t.Key] = struct{}{}
	}
}

func (m *Memory) unindex(t *token.Token) {
	if u := m.byUser[t.Username]; u != nil {
		delete(u, t.Key)
		if len(u) == 0 {
			delete(m.byUser, t.Username)
		}
	}
	if p := t.Parent(); !p.IsZero() {
		if kids := m.byParent[p]; kids != nil {
			delete(kids, t.Key)
			if len(kids) == 0 {
				delete(m.byParent, p)
			}
		}
	}
}

// reorder updates the (created, key) order. New tokens are mostly the
// newest, so a few additions are inserted in place (usually appended);
// many are appended and the slice sorted once.
func (m *Memory) reorder(added []orderKey, removed map[orderKey]struct{}) {
	if len(removed) > 0 {
		gone := func(o orderKey) bool {
			_, ok := removed[o]
			return ok
		}
		m.order = slices.DeleteFunc(m.order, gone)
		added = slices.DeleteFunc(added, gone) // put, then deleted, in one batch
	}
	if len(added) > 64 {
		m.order = append(m.order, added...)
		slices.SortFunc(m.order, cmpOrder)
		return
	}
	for _, o := range added {
		i, _ := slices.BinarySearchFunc(m.order, o, cmpOrder)
		m.order = slices.Insert(m.order, i, o)
	}
}

// PersistedIndex returns the index up to which the store holds every change.
func (m *Memory) PersistedIndex(ctx context.Context) (uint64, error) {
	if err := m.rlock(ctx); err != nil {
		return 0, err
	}
	defer m.mu.RUnlock()
	return m.persisted, nil
}

// Reset deletes every row and sets the persisted index to 0.
func (m *Memory) Reset(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	m.rows = make(map[token.Key]*token.Token)
	m.byUser = make(map[string]map[token.Key]struct{})
	m.byParent = make(map[token.Key]map[token.Key]struct{})
	m.order = nil
	m.persisted = 0
	return nil
}

// Shared is false: every node has a memory store of its own.
func (m *Memory) Shared() bool { return false }

// Ping reports whether the store is open.
func (m *Memory) Ping(ctx context.Context) error {
	if err := m.rlock(ctx); err != nil {
		return err
	}
	m.mu.RUnlock()
	return nil
}

// Close drops every row. It is idempotent; methods called afterwards fail
// with ErrUnavailable.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.rows, m.byUser, m.byParent, m.order = nil, nil, nil, nil
	return nil
}

func cloneAll(ts []*token.Token) []*token.Token {
	if len(ts) == 0 {
		return nil
	}
	out := make([]*token.Token, len(ts))
	for i, t := range ts {
		out[i] = t.Clone()
	}
	return out
}
