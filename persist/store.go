// Package persist keeps the durable set of tokens in SQL (or in memory).
//
// persist.store picks the Store: "sqlite" (a file local to each node),
// "mysql" (one database shared by every node), "memory" (Memory: every
// record in this process's memory, rebuilt from the Raft log and snapshots
// when a node restarts) and "none" (None: the store is disabled, for a
// cluster that uses JWTs alone; it is "memory" restricted to the revocation
// tombstones of JWTs, so it holds no token record at all, and the token
// service answers tokens.ErrStoreDisabled to every operation that needs
// one).
//
// A Store is written by exactly one writer, in log order, with batches
// (see Batch) that carry the log index of every change: a row is only
// overwritten by a newer index, so replaying a batch is harmless, and the
// index up to which the store is complete is recorded in the same
// transaction. Stores are safe for concurrent use: one writer and any number
// of readers.
package persist

import (
	"context"
	"errors"

	"github.com/tokencache/tokencache/token"
)

// Errors returned by stores. Driver errors are translated at this boundary.
var (
	// ErrNotFound means no row has that key.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable means the database cannot be reached or did not answer
	// in time. Callers answer 503 and retry later; nothing was changed.
	ErrUnavailable = errors.New("store unavailable")
	// ErrSchemaTooNew means the database was migrated by a newer tokencache;
	// this binary refuses to touch it.
	ErrSchemaTooNew = errors.New("database schema is newer than this binary")
	// ErrNoTables means the tables are missing and create_tables is off.
	ErrNoTables = errors.New("tables are missing and persist.create_tables is false")
	// ErrCorrupt means a row could not be decoded (bad hash length, unknown
	// type, …). The row is treated as absent for validation: never valid.
	ErrCorrupt = errors.New("corrupt row")
	// ErrSchemaOutdated means the database has an older schema than this
	// binary needs and persist.create_tables is false, so it was not
	// migrated.
	ErrSchemaOutdated = errors.New("database schema is older than this binary and persist.create_tables is false")
	// ErrConfig is wrapped by every error of Config.Validate.
	ErrConfig = errors.New("invalid persist configuration")
	// ErrBadURL is wrapped by every error of ParseURL.
	ErrBadURL = errors.New("invalid persist.url")
)

// Store is the durable token set.
type Store interface {
	// Get returns the row for k, or ErrNotFound.
	Get(ctx context.Context, k token.Key) (*token.Token, error)
	// List returns rows matching q, newest first (created, then key, descending).
	List(ctx context.Context, q Query) ([]*token.Token, error)
	// Children returns the direct children of any of parents, ordered by
	// created then key (ascending), so that breadth-first walks are stable.
	Children(ctx context.Context, parents []token.Key) ([]*token.Token, error)
	// Named returns every row of username whose name is name (live or not;
	// the caller judges liveness).
	Named(ctx context.Context, username, name string) ([]*token.Token, error)
	// Orphaned returns rows whose parent key is set but whose parent row no
	// longer exists, newest first, at most limit (limit > 0).
	Orphaned(ctx context.Context, limit int) ([]*token.Token, error)
	// Stats counts rows as of now.
	Stats(ctx context.Context, now token.Time) (Stats, error)
	// Ended returns rows whose end of use, min(expires, revoked_at), is
	// before the given time, oldest first, at most limit (limit > 0). The
	// reaper uses it to find rows past retention.
	Ended(ctx context.Context, before token.Time, limit int) ([]*token.Token, error)
	// Newest returns up to limit rows older than cursor, newest first, and
	// the cursor for the next page (the zero Cursor starts at the newest
	// row; a returned zero Cursor means there is nothing more). Warm start
	// reads the store with it in batches of cache.load_batch_size.
	Newest(ctx context.Context, cursor Cursor, limit int) ([]*token.Token, Cursor, error)
	// Scan calls fn for every row, in no particular order, until fn returns
	// an error (which Scan returns). Snapshots of a local store use it.
	Scan(ctx context.Context, fn func(*token.Token) error) error

	// Write applies b in one transaction (per shard): upserts only over
	// rows with a smaller index, deletes only rows whose index is at most the
	// deletion's MaxIndex, last-used times only forward, and the persisted
	// index. Replaying a batch changes nothing.
	Write(ctx context.Context, b *Batch) error
	// PersistedIndex returns the log index up to which the store holds every
	// change (the smallest over shards).
	PersistedIndex(ctx context.Context) (uint64, error)
	// Reset deletes every row and sets the persisted index to 0. A node
	// restoring a snapshot into its own local store uses it; a shared store
	// is never reset.
	Reset(ctx context.Context) error

	// Shared reports whether several nodes use this store (MySQL): then only
	// the leader writes it. A local store (SQLite file, memory) is written by
	// every node for itself.
	Shared() bool
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// Close releases the store. It is idempotent.
	Close() error
}

// Query selects rows for List.
type Query struct {
	Username string     // "" = any
	Type     token.Type // TypeUnknown = any
	Limit    int        // > 0; callers cap it
}

// Cursor is a position in the newest-first order of Newest: the (created,
// key) of the last row returned.
type Cursor struct {
	Created token.Time
	Key     token.Key
}

// IsZero reports whether c is the start (or end) cursor.
func (c Cursor) IsZero() bool { return c == Cursor{} }

// Stats are the counts of DESIGN §5 /v1/stats, taken from the store.
type Stats struct {
	Tokens         int64 // every row
	UniqueSessions int64 // distinct usernames with a live session token
	UserTokens     int64 // live user tokens
}

// Batch is one ordered group of changes from the log.
type Batch struct {
	Puts    []*token.Token // upsert where the stored index is smaller than t.Index
	Deletes []Delete       // delete where the stored index is at most MaxIndex
	Touches []Touch        // last_used = max(last_used, At) where the row exists
	// Index, when not 0, is recorded as the persisted index in the same
	// transaction: every change up to Index is in the store once Write returns.
	Index uint64
}

// Len returns the number of changes in b.
func (b *Batch) Len() int { return len(b.Puts) + len(b.Deletes) + len(b.Touches) }

// Delete removes a row unless it changed after the deletion was decided.
type Delete struct {
	Key      token.Key
	MaxIndex uint64 // delete only if the stored index ≤ MaxIndex
}

// Touch moves a row's last-used time forward.
type Touch struct {
	Key token.Key
	At  token.Time
}

// KeyScanner is a store that can list its keys without reading whole rows.
type KeyScanner interface {
	// ScanKeys calls fn for the key of every row, in no particular order,
	// until fn returns an error (which ScanKeys returns).
	ScanKeys(ctx context.Context, fn func(token.Key) error) error
}

// ScanKeys calls fn for the key of every row of st: with st's own ScanKeys
// when it is a KeyScanner, else through Scan. The key filter is built with
// it: on a server database, reading 16-byte keys instead of decoding every
// row costs the database, the network and the node a fraction of a Scan.
func ScanKeys(ctx context.Context, st Store, fn func(token.Key) error) error {
	if ks, ok := st.(KeyScanner); ok {
		return ks.ScanKeys(ctx, fn)
	}
	return st.Scan(ctx, func(t *token.Token) error { return fn(t.Key) })
}
