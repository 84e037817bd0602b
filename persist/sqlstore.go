package persist

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokencache/tokencache/token"
)

// SQLStore is the Store over database/sql, shared by every SQL database
// through a dialect. It is safe for concurrent use: one writer and any
// number of readers. Every method blocks on the database.
//
// Reads wait at most Config.PoolTimeout for a free connection and then at
// most Config.QueryTimeout for the answer; past either they fail with
// ErrUnavailable. Writes (Write, Reset) wait PoolTimeout for a connection
// and are then bounded by the caller's context only: a write-through write
// must not be abandoned half-way by a deadline of the store's own.
type SQLStore struct {
	d      dialect
	rdb    *sql.DB // reads
	wdb    *sql.DB // writes; the same pool as rdb for a server database
	rgate  *gate   // read slots (nil: unlimited)
	wgate  *gate   // write slots; the same as rgate when the pools are one
	shared bool
	what   string // "sqlite database /path/tokens.db", for messages

	poolTimeout  time.Duration
	queryTimeout time.Duration
	q            queries
	rstmts       stmtCache   // prepared statements of the read pool
	wstmts       stmtCache   // prepared statements of the write pool
	trims        []*trimmer  // close idle overflow connections (pool.go)
	gets         *getBatcher // batched Get (server databases); nil: one SELECT per Get

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var _ Store = (*SQLStore)(nil)

// Rows per multi-row statement (powers of two; see chunks). Measured on
// SQLite in sqlite_bench_test.go (BenchmarkSQLiteWriteChunk).
const (
	putChunk      = 256
	deleteChunk   = 256
	touchChunk    = 256
	childrenChunk = 512
)

// chunks splits n rows into statements of at most max rows whose sizes are
// powers of two (max, max, …, then the binary digits of the rest), so that
// a store prepares at most log2(max)+1 statements per kind and reuses them,
// instead of parsing a statement of a new size for every batch. max must be
// a power of two.
func chunks(n, max int, fn func(off, size int) error) error {
	off := 0
	for size := max; size > 0; size /= 2 {
		for n-off >= size {
			if err := fn(off, size); err != nil {
				return err
			}
			off += size
			if size < max {
				break // each smaller size appears at most once
			}
		}
	}
	return nil
}

// queries are the statements of a store, built once from its dialect.
type queries struct {
	get, listUserType, listUser, listType, listAll string
	named, orphaned, stats, ended                  string
	newestFirst, newestAfter, scan                 string
	persisted, setPersisted, deleteAll, resetIndex string
	putChunk, deleteChunk, touchChunk              int
	// upsert, delete and touch hold the statement of 2^i rows at [i].
	upsert, delete, touch []string
}

func buildQueries(d dialect) queries {
	ph := func(n int) string { return d.placeholder(n) }
	sel := "SELECT " + selectColumns + " FROM tokens "
	const newest = " ORDER BY created DESC, token_key DESC LIMIT "
	live := "revoked_at IS NULL AND (expires IS NULL OR expires > "
	q := queries{
		get:          sel + "WHERE token_key = " + ph(1),
		listUserType: sel + "WHERE username = " + ph(1) + " AND type = " + ph(2) + newest + ph(3),
		listUser:     sel + "WHERE username = " + ph(1) + newest + ph(2),
		listType:     sel + "WHERE type = " + ph(1) + newest + ph(2),
		listAll:      sel + newest[1:] + ph(1),
		named:        sel + "WHERE username = " + ph(1) + " AND name = " + ph(2) + " ORDER BY created, token_key",
		orphaned: sel + "WHERE parent_key IS NOT NULL AND NOT EXISTS " +
			"(SELECT 1 FROM tokens AS p WHERE p.token_key = tokens.parent_key)" + newest + ph(1),
		stats: "SELECT (SELECT COUNT(*) FROM tokens), " +
			"(SELECT COUNT(DISTINCT username) FROM tokens WHERE type = 'session' AND " + live + ph(1) + ")), " +
			"(SELECT COUNT(*) FROM tokens WHERE type = 'user' AND " + live + ph(2) + "))",
		ended: sel + "WHERE end_of_use IS NOT NULL AND end_of_use < " + ph(1) +
			" ORDER BY end_of_use, token_key LIMIT " + ph(2),
		newestFirst: sel + newest[1:] + ph(1),
		// created <= c bounds the index range; the OR then skips the rows
		// of the cursor's own created time at or after its key.
		newestAfter: sel + "WHERE created <= " + ph(1) + " AND (created < " + ph(2) +
			" OR token_key < " + ph(3) + ")" + newest + ph(4),
		scan:         sel,
		persisted:    "SELECT value FROM meta WHERE name = 'persisted_index'",
		setPersisted: "UPDATE meta SET value = " + ph(1) + " WHERE name = 'persisted_index' AND value < " + ph(2),
		deleteAll:    "DELETE FROM tokens",
		resetIndex:   "UPDATE meta SET value = 0 WHERE name = 'persisted_index'",
	}
	q.putChunk = pow2Below(min(putChunk, d.maxParams()/len(columns)))
	q.deleteChunk = pow2Below(min(deleteChunk, d.maxParams()/2))
	q.touchChunk = pow2Below(min(touchChunk, d.maxParams()/3))
	for n := 1; n <= q.putChunk; n *= 2 {
		q.upsert = append(q.upsert, upsertSQL(d, n))
	}
	for n := 1; n <= q.deleteChunk; n *= 2 {
		q.delete = append(q.delete, deleteSQL(d, n))
	}
	for n := 1; n <= q.touchChunk; n *= 2 {
		q.touch = append(q.touch, touchSQL(d, n))
	}
	return q
}

// pow2Below returns the largest power of two at most n (n >= 1).
func pow2Below(n int) int {
	p := 1
	for p*2 <= n {
		p *= 2
	}
	return p
}

// log2 returns i such that 1<<i == n, for a power of two n.
func log2(n int) int {
	i := 0
	for 1<<i < n {
		i++
	}
	return i
}

// prepareWrites prepares every statement Write uses, before any
// transaction holds the write connection.
func (s *SQLStore) prepareWrites(ctx context.Context) error {
	all := slices.Concat(s.q.upsert, s.q.delete, s.q.touch, []string{s.q.setPersisted})
	for _, q := range all {
		if _, err := s.wstmts.get(ctx, q); err != nil {
			return fmt.Errorf("cannot prepare a write statement: %w", classified(s.d, err))
		}
	}
	return nil
}

// upsertSQL returns the guarded multi-row upsert of n rows.
func upsertSQL(d dialect, n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO tokens (")
	b.WriteString(selectColumns)
	b.WriteString(") VALUES ")
	next := 1
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		placeholders(&b, d, len(columns), &next)
		b.WriteByte(')')
	}
	b.WriteString(d.upsertTail(columns))
	return b.String()
}

// deleteSQL deletes n rows, each only if its idx is at most its bound.
func deleteSQL(d dialect, n int) string {
	var b strings.Builder
	b.WriteString("DELETE FROM tokens WHERE ")
	next := 1
	for i := range n {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString("(token_key = " + d.placeholder(next) + " AND idx <= " + d.placeholder(next+1) + ")")
		next += 2
	}
	return b.String()
}

// touchSQL moves last_used forward for n rows (key, time pairs, then the
// n keys again for the IN list).
func touchSQL(d dialect, n int) string {
	var b strings.Builder
	b.WriteString("UPDATE tokens SET last_used = ")
	var cas strings.Builder
	cas.WriteString("CASE token_key")
	next := 1
	for range n {
		cas.WriteString(" WHEN " + d.placeholder(next) + " THEN " + d.placeholder(next+1))
		next += 2
	}
	cas.WriteString(" END")
	b.WriteString(d.greatest("COALESCE(last_used, 0)", cas.String()))
	b.WriteString(" WHERE token_key IN (")
	placeholders(&b, d, n, &next)
	b.WriteByte(')')
	return b.String()
}

// childrenSQL selects the direct children of n parents.
func childrenSQL(d dialect, n int) string {
	return selectIn(d, "parent_key", n, " ORDER BY created, token_key")
}

// selectIn selects the rows whose column is one of n values, then adds
// tail.
func selectIn(d dialect, column string, n int, tail string) string {
	var b strings.Builder
	b.WriteString("SELECT " + selectColumns + " FROM tokens WHERE " + column + " IN (")
	next := 1
	placeholders(&b, d, n, &next)
	b.WriteString(")" + tail)
	return b.String()
}

// errClosed is returned by every method of a closed store.
var errClosed = fmt.Errorf("%w: the store is closed", ErrUnavailable)

// translate turns an error of a store operation into the store's error
// vocabulary: the caller's own cancellation as is, a deadline as
// ErrUnavailable, driver errors classified by the dialect.
func (s *SQLStore) translate(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(cerr, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %s did not answer before the caller's deadline: %w", ErrUnavailable, s.what, cerr)
		}
		return cerr
	}
	var ce *CorruptError
	switch {
	case errors.As(err, &ce), errors.Is(err, ErrUnavailable), errors.Is(err, ErrNotFound):
		return err
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// Only the store's own query deadline can end the query here.
		return fmt.Errorf("%w: %s did not answer within persist.query_timeout (%s)", ErrUnavailable, s.what, s.queryTimeout)
	}
	return classified(s.d, err)
}

// read runs fn with a read slot and the query deadline.
func (s *SQLStore) read(ctx context.Context, fn func(ctx context.Context) error) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := s.rgate.acquire(ctx, s.poolTimeout); err != nil {
		return s.translate(ctx, err)
	}
	defer s.rgate.release()
	qctx, cancel := context.WithTimeout(ctx, s.queryTimeout)
	defer cancel()
	return s.translate(ctx, fn(qctx))
}

// queryTokens runs a read query and decodes every row. Static queries are
// prepared once (prepared = true); generated ones are not.
func (s *SQLStore) queryTokens(ctx context.Context, query string, prepared bool, args ...any) ([]*token.Token, error) {
	var out []*token.Token
	err := s.read(ctx, func(ctx context.Context) error {
		var err error
		out, err = s.collect(ctx, query, prepared, args, -1, nil)
		return err
	})
	return out, err
}

// collect returns the decoded rows of a read query. When limit >= 0 it
// decodes at most limit rows and reports in *more whether a further row
// exists.
func (s *SQLStore) collect(ctx context.Context, query string, prepared bool, args []any, limit int, more *bool) ([]*token.Token, error) {
	var rows *sql.Rows
	var err error
	if prepared {
		var st *sql.Stmt
		if st, err = s.rstmts.get(ctx, query); err != nil {
			return nil, err
		}
		rows, err = st.QueryContext(ctx, args...)
	} else {
		rows, err = s.rdb.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*token.Token
	r := newRowBuf()
	for rows.Next() {
		if limit >= 0 && len(out) == limit {
			*more = true
			break
		}
		t, err := r.scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, rows.Close()
}

// Get returns the row for k, or ErrNotFound (returned bare, without
// wrapping: it is the hot answer to a flood of unknown keys).
func (s *SQLStore) Get(ctx context.Context, k token.Key) (*token.Token, error) {
	if s.gets != nil {
		if s.closed.Load() {
			return nil, fmt.Errorf("cannot get token %s: %w", k, errClosed)
		}
		t, err := s.gets.get(ctx, k)
		switch {
		case err == nil:
			return t, nil
		case errors.Is(err, ErrNotFound):
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("cannot get token %s: %w", k, err)
	}
	var t *token.Token
	err := s.read(ctx, func(ctx context.Context) error {
		st, err := s.rstmts.get(ctx, s.q.get)
		if err != nil {
			return err
		}
		rows, err := st.QueryContext(ctx, k[:])
		if err != nil {
			return err
		}
		defer rows.Close()
		if !rows.Next() {
			if err := rows.Err(); err != nil {
				return err
			}
			return ErrNotFound
		}
		if t, err = newRowBuf().scan(rows); err != nil {
			return err
		}
		return rows.Close()
	})
	switch {
	case err == nil:
		return t, nil
	case errors.Is(err, ErrNotFound):
		return nil, ErrNotFound
	}
	return nil, fmt.Errorf("cannot get token %s: %w", k, err)
}

var errBadLimit = errors.New("limit must be positive")

// List returns rows matching q, newest first.
func (s *SQLStore) List(ctx context.Context, q Query) ([]*token.Token, error) {
	if q.Limit <= 0 {
		return nil, fmt.Errorf("cannot list tokens: %w, got %d", errBadLimit, q.Limit)
	}
	var out []*token.Token
	var err error
	switch {
	case q.Username != "" && q.Type != token.TypeUnknown:
		out, err = s.queryTokens(ctx, s.q.listUserType, true, q.Username, q.Type.String(), q.Limit)
	case q.Username != "":
		out, err = s.queryTokens(ctx, s.q.listUser, true, q.Username, q.Limit)
	case q.Type != token.TypeUnknown:
		out, err = s.queryTokens(ctx, s.q.listType, true, q.Type.String(), q.Limit)
	default:
		out, err = s.queryTokens(ctx, s.q.listAll, true, q.Limit)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot list tokens: %w", err)
	}
	return out, nil
}

// Children returns the direct children of parents, by created then key.
func (s *SQLStore) Children(ctx context.Context, parents []token.Key) ([]*token.Token, error) {
	var out []*token.Token
	for chunk := range slices.Chunk(dedupKeys(parents), childrenChunk) {
		args := make([]any, len(chunk))
		for i := range chunk {
			args[i] = chunk[i][:]
		}
		rows, err := s.queryTokens(ctx, childrenSQL(s.d, len(chunk)), false, args...)
		if err != nil {
			return nil, fmt.Errorf("cannot list children of %d tokens: %w", len(parents), err)
		}
		out = append(out, rows...)
	}
	if len(parents) > childrenChunk {
		slices.SortFunc(out, byCreatedKey)
	}
	return out, nil
}

// Named returns every row of username named name, by created then key.
func (s *SQLStore) Named(ctx context.Context, username, name string) ([]*token.Token, error) {
	if name == "" {
		return nil, nil
	}
	out, err := s.queryTokens(ctx, s.q.named, true, username, name)
	if err != nil {
		return nil, fmt.Errorf("cannot list tokens named %q: %w", name, err)
	}
	return out, nil
}

// Orphaned returns rows whose parent row is missing, newest first.
func (s *SQLStore) Orphaned(ctx context.Context, limit int) ([]*token.Token, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("cannot list orphaned tokens: %w, got %d", errBadLimit, limit)
	}
	out, err := s.queryTokens(ctx, s.q.orphaned, true, limit)
	if err != nil {
		return nil, fmt.Errorf("cannot list orphaned tokens: %w", err)
	}
	return out, nil
}

// Stats counts rows, and live session users and user tokens at now.
func (s *SQLStore) Stats(ctx context.Context, now token.Time) (Stats, error) {
	var st Stats
	err := s.read(ctx, func(ctx context.Context) error {
		stmt, err := s.rstmts.get(ctx, s.q.stats)
		if err != nil {
			return err
		}
		return stmt.QueryRowContext(ctx, int64(now), int64(now)).
			Scan(&st.Tokens, &st.UniqueSessions, &st.UserTokens)
	})
	if err != nil {
		return Stats{}, fmt.Errorf("cannot count tokens: %w", err)
	}
	return st, nil
}

// Ended returns rows whose end of use is before before, oldest first.
func (s *SQLStore) Ended(ctx context.Context, before token.Time, limit int) ([]*token.Token, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("cannot list ended tokens: %w, got %d", errBadLimit, limit)
	}
	out, err := s.queryTokens(ctx, s.q.ended, true, int64(before), limit)
	if err != nil {
		return nil, fmt.Errorf("cannot list ended tokens: %w", err)
	}
	return out, nil
}

// Newest returns up to limit rows older than cursor, newest first. It asks
// for one row more than limit to know whether another page exists, so the
// last page comes with the zero cursor.
func (s *SQLStore) Newest(ctx context.Context, cursor Cursor, limit int) ([]*token.Token, Cursor, error) {
	if limit <= 0 {
		return nil, Cursor{}, fmt.Errorf("cannot read newest tokens: %w, got %d", errBadLimit, limit)
	}
	var out []*token.Token
	var more bool
	err := s.read(ctx, func(ctx context.Context) error {
		var err error
		if cursor.IsZero() {
			out, err = s.collect(ctx, s.q.newestFirst, true, []any{limit + 1}, limit, &more)
		} else {
			c := int64(cursor.Created)
			out, err = s.collect(ctx, s.q.newestAfter, true, []any{c, c, cursor.Key[:], limit + 1}, limit, &more)
		}
		return err
	})
	if err != nil {
		return nil, Cursor{}, fmt.Errorf("cannot read newest tokens: %w", err)
	}
	if !more || len(out) == 0 {
		return out, Cursor{}, nil
	}
	last := out[len(out)-1]
	return out, Cursor{Created: last.Created, Key: last.Key}, nil
}

// Scan calls fn for every row, in one statement (a consistent read). It is
// bounded by ctx only, not by the query timeout, and holds one read
// connection until it returns: fn may call the store, except on an
// in-memory SQLite database, which has a single connection.
func (s *SQLStore) Scan(ctx context.Context, fn func(*token.Token) error) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := s.rgate.acquire(ctx, s.poolTimeout); err != nil {
		return fmt.Errorf("cannot scan tokens: %w", s.translate(ctx, err))
	}
	defer s.rgate.release()
	rows, err := s.rdb.QueryContext(ctx, s.q.scan)
	if err != nil {
		return fmt.Errorf("cannot scan tokens: %w", s.translate(ctx, err))
	}
	defer rows.Close()
	r := newRowBuf()
	for rows.Next() {
		t, err := r.scan(rows)
		if err != nil {
			return fmt.Errorf("cannot scan tokens: %w", s.translate(ctx, err))
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot scan tokens: %w", s.translate(ctx, err))
	}
	return nil
}

// ScanKeys reads the key column of every row. A key of the wrong length
// is a *CorruptError.
func (s *SQLStore) ScanKeys(ctx context.Context, fn func(token.Key) error) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := s.rgate.acquire(ctx, s.poolTimeout); err != nil {
		return fmt.Errorf("cannot scan token keys: %w", s.translate(ctx, err))
	}
	defer s.rgate.release()
	rows, err := s.rdb.QueryContext(ctx, "SELECT token_key FROM tokens")
	if err != nil {
		return fmt.Errorf("cannot scan token keys: %w", s.translate(ctx, err))
	}
	defer rows.Close()
	var raw sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&raw); err != nil {
			return fmt.Errorf("cannot scan token keys: %w", s.translate(ctx, err))
		}
		if len(raw) != token.KeySize {
			return fmt.Errorf("cannot scan token keys: %w", &CorruptError{Reason: fmt.Sprintf("key is %d bytes, want %d", len(raw), token.KeySize)})
		}
		if err := fn(token.Key(raw)); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot scan token keys: %w", s.translate(ctx, err))
	}
	return nil
}

// Write applies b in one transaction: guarded upserts in chunks of
// multi-row statements, guarded deletes, forward-only touches, and the
// persisted index (which only moves forward: a batch with a smaller Index
// leaves a larger recorded one in place, since every change up to it is
// still in the store). A put also keeps the larger of its own and the stored
// last-used time, so that no write moves last_used backward. Every record is
// validated first; one bad record fails the batch and nothing is written.
func (s *SQLStore) Write(ctx context.Context, b *Batch) error {
	if err := checkBatch(b); err != nil {
		return err
	}
	if s.closed.Load() {
		return errClosed
	}
	p := makePlan(b)
	if err := s.wgate.acquire(ctx, s.poolTimeout); err != nil {
		return fmt.Errorf("cannot write batch at index %d: %w", b.Index, s.translate(ctx, err))
	}
	defer s.wgate.release()
	if err := s.write(ctx, p, b.Index); err != nil {
		return fmt.Errorf("cannot write batch of %d changes at index %d: %w", b.Len(), b.Index, s.translate(ctx, err))
	}
	return nil
}

func (s *SQLStore) write(ctx context.Context, p plan, index uint64) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	exec := func(query string, args []any) error {
		// The write statements were prepared at open: preparing one now
		// would wait for a connection of the write pool, whose only
		// connection this transaction holds.
		if st, ok := s.wstmts.load(query); ok {
			_, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...)
			return err
		}
		_, err := tx.ExecContext(ctx, query, args...)
		return err
	}
	args := make([]any, 0, min(len(p.puts), s.q.putChunk)*len(columns))
	err = chunks(len(p.puts), s.q.putChunk, func(off, n int) error {
		args = args[:0]
		for _, t := range p.puts[off : off+n] {
			args = appendArgs(args, t)
		}
		return exec(s.q.upsert[log2(n)], args)
	})
	if err != nil {
		return err
	}
	err = chunks(len(p.deletes), s.q.deleteChunk, func(off, n int) error {
		args = args[:0]
		for i := off; i < off+n; i++ {
			args = append(args, p.deletes[i].Key[:], int64(p.deletes[i].MaxIndex))
		}
		return exec(s.q.delete[log2(n)], args)
	})
	if err != nil {
		return err
	}
	err = chunks(len(p.touches), s.q.touchChunk, func(off, n int) error {
		args = args[:0]
		for i := off; i < off+n; i++ {
			args = append(args, p.touches[i].Key[:], int64(p.touches[i].At))
		}
		for i := off; i < off+n; i++ {
			args = append(args, p.touches[i].Key[:])
		}
		return exec(s.q.touch[log2(n)], args)
	})
	if err != nil {
		return err
	}
	if index > 0 {
		if err := exec(s.q.setPersisted, []any{int64(index), int64(index)}); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// PersistedIndex returns the index up to which the store holds every change.
func (s *SQLStore) PersistedIndex(ctx context.Context) (uint64, error) {
	var v int64
	err := s.read(ctx, func(ctx context.Context) error {
		st, err := s.rstmts.get(ctx, s.q.persisted)
		if err != nil {
			return err
		}
		return st.QueryRowContext(ctx).Scan(&v)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("cannot read the persisted index: %w", &CorruptError{Reason: "meta row persisted_index is missing"})
	case err != nil:
		return 0, fmt.Errorf("cannot read the persisted index: %w", err)
	case v < 0:
		return 0, fmt.Errorf("cannot read the persisted index: %w", &CorruptError{Reason: fmt.Sprintf("persisted index is %d", v)})
	}
	return uint64(v), nil
}

// Reset deletes every row and sets the persisted index to 0, in one
// transaction.
func (s *SQLStore) Reset(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := s.wgate.acquire(ctx, s.poolTimeout); err != nil {
		return fmt.Errorf("cannot reset the store: %w", s.translate(ctx, err))
	}
	defer s.wgate.release()
	err := func() error {
		tx, err := s.wdb.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		if _, err := tx.ExecContext(ctx, s.q.deleteAll); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q.resetIndex); err != nil {
			return err
		}
		return tx.Commit()
	}()
	if err != nil {
		return fmt.Errorf("cannot reset the store: %w", s.translate(ctx, err))
	}
	return nil
}

// Shared reports whether several nodes write this store (MySQL).
func (s *SQLStore) Shared() bool { return s.shared }

// Ping reads the persisted index: it checks that the database answers and
// still has the schema.
func (s *SQLStore) Ping(ctx context.Context) error {
	if _, err := s.PersistedIndex(ctx); err != nil {
		return fmt.Errorf("cannot ping %s: %w", s.what, err)
	}
	return nil
}

// Close closes the connection pools. It is idempotent; methods called
// afterwards fail with ErrUnavailable.
func (s *SQLStore) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.gets != nil {
			s.gets.stop()
		}
		for _, t := range s.trims {
			t.stop()
		}
		errs := []error{s.rstmts.close(), s.wstmts.close()}
		if s.wdb != s.rdb {
			errs = append(errs, s.wdb.Close())
		}
		errs = append(errs, s.rdb.Close())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("cannot close %s: %w", s.what, err)
		}
	})
	return s.closeErr
}

// byCreatedKey orders rows by created, then key (ascending).
func byCreatedKey(a, b *token.Token) int {
	if c := cmp.Compare(a.Created, b.Created); c != 0 {
		return c
	}
	return bytes.Compare(a.Key[:], b.Key[:])
}

// dedupKeys returns keys without duplicates and without the zero key,
// keeping the first occurrence of each.
func dedupKeys(keys []token.Key) []token.Key {
	if len(keys) <= 1 {
		if len(keys) == 1 && keys[0].IsZero() {
			return nil
		}
		return keys
	}
	seen := make(map[token.Key]struct{}, len(keys))
	out := make([]token.Key, 0, len(keys))
	for _, k := range keys {
		if _, ok := seen[k]; ok || k.IsZero() {
			continue
		}
		seen[k] = struct{}{}
		out = append(out, k)
	}
	return out
}
