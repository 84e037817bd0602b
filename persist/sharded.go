package persist

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"

	"github.com/tokencache/tokencache/token"
)

// Sharded spreads the rows of one token set over several stores
// (tokenserver's sharded SQL `databases`, persist.shards): a token's row
// lives in the shard ShardOf(key, n) picks, and reads that are not by key
// ask every shard and merge the answers in the order the Store contract
// gives. It is safe for concurrent use, like the stores it holds.
//
// A write batch is split by shard and each part is written in one
// transaction of its shard, all carrying the batch's index, so that every
// shard records how far it is complete; PersistedIndex is the smallest of
// them. A batch that fails on one shard after committing on another is
// simply written again: the guarded upserts make that harmless. Shards are
// written and read in parallel.
//
// The order of the shards is part of the data: each database records which
// shard of how many it is (meta rows "shard" and "shards") when it is first
// opened, and Open refuses a database listed at another place. Changing the
// number of shards needs the rows moved first (docs/persistence.md).
type Sharded struct {
	shards    []Store
	closeOnce sync.Once
	closeErr  error
}

var _ Store = (*Sharded)(nil)

// NewSharded returns the store over shards, in order (at least one). It
// takes ownership: Close closes them.
func NewSharded(shards []Store) (*Sharded, error) {
	if len(shards) == 0 {
		return nil, fmt.Errorf("%w: a sharded store needs at least one shard", ErrConfig)
	}
	return &Sharded{shards: slices.Clone(shards)}, nil
}

// ShardOf returns the shard (0 ≤ shard < n) that holds the row of k: jump
// consistent hash (Lamping and Veach, 2014) of the 64-bit FNV-1a hash of
// the key's 16 bytes. It never changes: rows are placed by it. Jump hash
// moves only 1/(n+1) of the keys when a shard is added at the end, which
// keeps a future resharding small.
func ShardOf(k token.Key, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write(k[:])
	return jumpHash(h.Sum64(), n)
}

func jumpHash(key uint64, n int) int {
	var b, j int64 = -1, 0
	for j < int64(n) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(b)
}

// Shards returns the number of shards.
func (s *Sharded) Shards() int { return len(s.shards) }

func (s *Sharded) of(k token.Key) Store { return s.shards[ShardOf(k, len(s.shards))] }

// each runs fn for every shard in parallel and returns their errors joined
// (each naming its shard), or nil.
func (s *Sharded) each(fn func(i int, st Store) error) error {
	if len(s.shards) == 1 {
		return fn(0, s.shards[0])
	}
	errs := make([]error, len(s.shards))
	var wg sync.WaitGroup
	for i, st := range s.shards {
		wg.Go(func() {
			if err := fn(i, st); err != nil {
				errs[i] = fmt.Errorf("shard %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// gather runs read on every shard and returns the rows of all of them.
func (s *Sharded) gather(read func(i int, st Store) ([]*token.Token, error)) ([]*token.Token, error) {
	parts := make([][]*token.Token, len(s.shards))
	err := s.each(func(i int, st Store) error {
		var err error
		parts[i], err = read(i, st)
		return err
	})
	if err != nil {
		return nil, err
	}
	return slices.Concat(parts...), nil
}

// newestFirst orders rows by created, then key, descending (List, Newest,
// Orphaned).
func newestFirst(a, b *token.Token) int { return -byCreatedKey(a, b) }

// Get returns the row for k from its shard.
func (s *Sharded) Get(ctx context.Context, k token.Key) (*token.Token, error) {
	return s.of(k).Get(ctx, k)
}

// List asks every shard for q.Limit rows and keeps the newest q.Limit.
func (s *Sharded) List(ctx context.Context, q Query) ([]*token.Token, error) {
	if q.Limit <= 0 {
		return nil, fmt.Errorf("cannot list tokens: %w, got %d", errBadLimit, q.Limit)
	}
	rows, err := s.gather(func(_ int, st Store) ([]*token.Token, error) { return st.List(ctx, q) })
	if err != nil {
		return nil, err
	}
	slices.SortFunc(rows, newestFirst)
	return rows[:min(len(rows), q.Limit)], nil
}

// Children returns the children of parents from every shard (a child is
// placed by its own key, not its parent's), by created then key.
func (s *Sharded) Children(ctx context.Context, parents []token.Key) ([]*token.Token, error) {
	rows, err := s.gather(func(_ int, st Store) ([]*token.Token, error) { return st.Children(ctx, parents) })
	if err != nil {
		return nil, err
	}
	slices.SortFunc(rows, byCreatedKey)
	return rows, nil
}

// Named returns the rows of username named name from every shard.
func (s *Sharded) Named(ctx context.Context, username, name string) ([]*token.Token, error) {
	rows, err := s.gather(func(_ int, st Store) ([]*token.Token, error) { return st.Named(ctx, username, name) })
	if err != nil {
		return nil, err
	}
	slices.SortFunc(rows, byCreatedKey)
	return rows, nil
}

// keyChecker is implemented by stores that can tell which of many keys
// have a row in one query.
type keyChecker interface {
	existing(ctx context.Context, keys []token.Key) (map[token.Key]bool, error)
}

// existingIn returns which of keys have a row in st.
func existingIn(ctx context.Context, st Store, keys []token.Key) (map[token.Key]bool, error) {
	if kc, ok := st.(keyChecker); ok {
		return kc.existing(ctx, keys)
	}
	out := make(map[token.Key]bool, len(keys))
	for _, k := range keys {
		_, err := st.Get(ctx, k)
		switch {
		case err == nil:
			out[k] = true
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrCorrupt):
		default:
			return nil, err
		}
	}
	return out, nil
}

// Orphaned returns rows whose parent has no row in any shard. A shard's own
// Orphaned only knows its own rows, so its answers are candidates whose
// parent is then looked for in the parent's shard; a shard is asked for more
// candidates until it has limit true orphans or no more candidates.
func (s *Sharded) Orphaned(ctx context.Context, limit int) ([]*token.Token, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("cannot list orphaned tokens: %w, got %d", errBadLimit, limit)
	}
	n := len(s.shards)
	if n == 1 {
		return s.shards[0].Orphaned(ctx, limit)
	}
	rows, err := s.gather(func(self int, st Store) ([]*token.Token, error) {
		for ask := limit; ; ask *= 4 {
			cands, err := st.Orphaned(ctx, ask)
			if err != nil {
				return nil, err
			}
			// Parents that live in another shard may exist there.
			elsewhere := make(map[int][]token.Key)
			for _, c := range cands {
				p := c.Parent()
				if i := ShardOf(p, n); i != self {
					elsewhere[i] = append(elsewhere[i], p)
				}
			}
			found := make(map[token.Key]bool)
			for i, keys := range elsewhere {
				got, err := existingIn(ctx, s.shards[i], dedupKeys(keys))
				if err != nil {
					return nil, err
				}
				for k := range got {
					found[k] = true
				}
			}
			orphans := slices.DeleteFunc(cands, func(c *token.Token) bool { return found[c.Parent()] })
			if len(orphans) >= limit || len(cands) < ask {
				return orphans[:min(len(orphans), limit)], nil
			}
		}
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(rows, newestFirst)
	return rows[:min(len(rows), limit)], nil
}

// sessionCounter is implemented by stores that can list the users with a
// live session token, so that users with sessions in several shards are
// counted once.
type sessionCounter interface {
	sessionUsers(ctx context.Context, now token.Time) (map[string]struct{}, error)
}

// Stats adds up the counts of every shard; unique sessions are counted over
// the union of each shard's users with a live session.
func (s *Sharded) Stats(ctx context.Context, now token.Time) (Stats, error) {
	if len(s.shards) == 1 {
		return s.shards[0].Stats(ctx, now)
	}
	stats := make([]Stats, len(s.shards))
	users := make([]map[string]struct{}, len(s.shards))
	err := s.each(func(i int, st Store) error {
		var err error
		if stats[i], err = st.Stats(ctx, now); err != nil {
			return err
		}
		sc, ok := st.(sessionCounter)
		if !ok {
			return fmt.Errorf("cannot count unique sessions over shards: %T cannot list session users", st)
		}
		users[i], err = sc.sessionUsers(ctx, now)
		return err
	})
	if err != nil {
		return Stats{}, err
	}
	var out Stats
	all := make(map[string]struct{})
	for i := range stats {
		out.Tokens += stats[i].Tokens
		out.UserTokens += stats[i].UserTokens
		for u := range users[i] {
			all[u] = struct{}{}
		}
	}
	out.UniqueSessions = int64(len(all))
	return out, nil
}

// Ended returns the rows of every shard whose end of use is before before,
// oldest first, at most limit.
func (s *Sharded) Ended(ctx context.Context, before token.Time, limit int) ([]*token.Token, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("cannot list ended tokens: %w, got %d", errBadLimit, limit)
	}
	rows, err := s.gather(func(_ int, st Store) ([]*token.Token, error) { return st.Ended(ctx, before, limit) })
	if err != nil {
		return nil, err
	}
	slices.SortFunc(rows, func(a, b *token.Token) int {
		if c := cmp.Compare(token.EndOfUse(a), token.EndOfUse(b)); c != 0 {
			return c
		}
		return bytes.Compare(a.Key[:], b.Key[:])
	})
	return rows[:min(len(rows), limit)], nil
}

// Newest asks every shard for limit rows older than cursor (a position in
// the global order, which each shard understands) and keeps the newest
// limit; the next cursor is the last row kept, unless no shard has more.
func (s *Sharded) Newest(ctx context.Context, cursor Cursor, limit int) ([]*token.Token, Cursor, error) {
	if limit <= 0 {
		return nil, Cursor{}, fmt.Errorf("cannot read newest tokens: %w, got %d", errBadLimit, limit)
	}
	if len(s.shards) == 1 {
		return s.shards[0].Newest(ctx, cursor, limit)
	}
	var moreMu sync.Mutex
	more := false
	rows, err := s.gather(func(_ int, st Store) ([]*token.Token, error) {
		page, next, err := st.Newest(ctx, cursor, limit)
		if !next.IsZero() {
			moreMu.Lock()
			more = true
			moreMu.Unlock()
		}
		return page, err
	})
	if err != nil {
		return nil, Cursor{}, err
	}
	slices.SortFunc(rows, newestFirst)
	if len(rows) > limit {
		rows, more = rows[:limit], true
	}
	if !more || len(rows) == 0 {
		return rows, Cursor{}, nil
	}
	last := rows[len(rows)-1]
	return rows, Cursor{Created: last.Created, Key: last.Key}, nil
}

// Scan scans every shard, one after the other.
func (s *Sharded) Scan(ctx context.Context, fn func(*token.Token) error) error {
	for i, st := range s.shards {
		if err := st.Scan(ctx, fn); err != nil {
			if len(s.shards) == 1 {
				return err
			}
			return fmt.Errorf("shard %d: %w", i, err)
		}
	}
	return nil
}

// ScanKeys lists the keys of every shard, one after the other.
func (s *Sharded) ScanKeys(ctx context.Context, fn func(token.Key) error) error {
	for i, st := range s.shards {
		if err := ScanKeys(ctx, st, fn); err != nil {
			if len(s.shards) == 1 {
				return err
			}
			return fmt.Errorf("shard %d: %w", i, err)
		}
	}
	return nil
}

// Write splits b by shard and writes every part, each with b's index, in
// parallel. Every shard gets a transaction when b.Index is set, even with
// no rows of its own, so that its persisted index keeps up.
func (s *Sharded) Write(ctx context.Context, b *Batch) error {
	if err := checkBatch(b); err != nil {
		return err
	}
	n := len(s.shards)
	if n == 1 {
		return s.shards[0].Write(ctx, b)
	}
	parts := make([]Batch, n)
	for i := range parts {
		parts[i].Index = b.Index
	}
	for _, t := range b.Puts {
		p := &parts[ShardOf(t.Key, n)]
		p.Puts = append(p.Puts, t)
	}
	for _, d := range b.Deletes {
		p := &parts[ShardOf(d.Key, n)]
		p.Deletes = append(p.Deletes, d)
	}
	for _, tc := range b.Touches {
		p := &parts[ShardOf(tc.Key, n)]
		p.Touches = append(p.Touches, tc)
	}
	return s.each(func(i int, st Store) error {
		if parts[i].Len() == 0 && parts[i].Index == 0 {
			return nil
		}
		return st.Write(ctx, &parts[i])
	})
}

// PersistedIndex returns the smallest persisted index of the shards: every
// change up to it is in its shard.
func (s *Sharded) PersistedIndex(ctx context.Context) (uint64, error) {
	idx := make([]uint64, len(s.shards))
	err := s.each(func(i int, st Store) error {
		var err error
		idx[i], err = st.PersistedIndex(ctx)
		return err
	})
	if err != nil {
		return 0, err
	}
	return slices.Min(idx), nil
}

// Reset resets every shard.
func (s *Sharded) Reset(ctx context.Context) error {
	return s.each(func(_ int, st Store) error { return st.Reset(ctx) })
}

// Shared reports whether the shards are shared by several nodes.
func (s *Sharded) Shared() bool { return s.shards[0].Shared() }

// Ping pings every shard.
func (s *Sharded) Ping(ctx context.Context) error {
	return s.each(func(_ int, st Store) error { return st.Ping(ctx) })
}

// Close closes every shard. It is idempotent.
func (s *Sharded) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.each(func(_ int, st Store) error { return st.Close() })
	})
	return s.closeErr
}

// existing implements keyChecker for SQL stores.
func (s *SQLStore) existing(ctx context.Context, keys []token.Key) (map[token.Key]bool, error) {
	out := make(map[token.Key]bool, len(keys))
	for chunk := range slices.Chunk(dedupKeys(keys), childrenChunk) {
		args := make([]any, len(chunk))
		for i := range chunk {
			args[i] = chunk[i][:]
		}
		var b bytes.Buffer
		b.WriteString("SELECT token_key FROM tokens WHERE token_key IN (")
		for i := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(s.d.placeholder(i + 1))
		}
		b.WriteByte(')')
		err := s.read(ctx, func(ctx context.Context) error {
			rows, err := s.rdb.QueryContext(ctx, b.String(), args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			var raw sql.RawBytes
			for rows.Next() {
				if err := rows.Scan(&raw); err != nil {
					return err
				}
				if len(raw) == token.KeySize {
					out[token.Key(raw)] = true
				}
			}
			return rows.Err()
		})
		if err != nil {
			return nil, fmt.Errorf("cannot look up %d keys: %w", len(chunk), err)
		}
	}
	return out, nil
}

// sessionUsers implements sessionCounter for SQL stores.
func (s *SQLStore) sessionUsers(ctx context.Context, now token.Time) (map[string]struct{}, error) {
	out := make(map[string]struct{})
	q := "SELECT DISTINCT username FROM tokens WHERE type = 'session' AND revoked_at IS NULL AND (expires IS NULL OR expires > " +
		s.d.placeholder(1) + ")"
	err := s.read(ctx, func(ctx context.Context) error {
		rows, err := s.rdb.QueryContext(ctx, q, int64(now))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var u string
			if err := rows.Scan(&u); err != nil {
				return err
			}
			out[u] = struct{}{}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("cannot list session users: %w", err)
	}
	return out, nil
}

// sessionUsers implements sessionCounter for the memory store.
func (m *Memory) sessionUsers(ctx context.Context, now token.Time) (map[string]struct{}, error) {
	if err := m.rlock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	out := make(map[string]struct{})
	for _, t := range m.rows {
		if t.Type == token.TypeSession && token.Live(t, now) {
			out[t.Username] = struct{}{}
		}
	}
	return out, nil
}

// Meta rows that record which shard a database is (see Sharded).
const (
	metaShard  = "shard"
	metaShards = "shards"
)

// claimShard records, the first time a database is opened, that it is
// shard of shards (0 of 1 for a store that is not sharded), and refuses a
// database that recorded another place.
func (s *SQLStore) claimShard(ctx context.Context, shard, shards int) error {
	ins := s.d.insertIgnore() + " meta (name, value) VALUES ('" + metaShard + "', " + s.d.placeholder(1) +
		"), ('" + metaShards + "', " + s.d.placeholder(2) + ")"
	if _, err := s.wdb.ExecContext(ctx, ins, shard, shards); err != nil {
		return fmt.Errorf("cannot record the shard of the database: %w", classified(s.d, err))
	}
	rows, err := s.wdb.QueryContext(ctx, "SELECT name, value FROM meta WHERE name IN ('"+metaShard+"', '"+metaShards+"')")
	if err != nil {
		return fmt.Errorf("cannot read the shard of the database: %w", classified(s.d, err))
	}
	defer rows.Close()
	got := map[string]int64{}
	for rows.Next() {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			return fmt.Errorf("cannot read the shard of the database: %w", classified(s.d, err))
		}
		got[name] = v
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read the shard of the database: %w", classified(s.d, err))
	}
	if got[metaShard] != int64(shard) || got[metaShards] != int64(shards) {
		return fmt.Errorf("%w: %s holds shard %d of %d, but the configuration makes it shard %d of %d "+
			"(persist.shards must keep its order; changing the number of shards needs the rows moved first, see docs/persistence.md)",
			ErrConfig, s.what, got[metaShard], got[metaShards], shard, shards)
	}
	return nil
}
