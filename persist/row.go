package persist

import (
	"database/sql"
	"fmt"
	"math"
	"strings"

	"github.com/tokencache/tokencache/token"
)

// columns of the tokens table, in the order every query selects and every
// insert binds them. columns[0] is the primary key.
var columns = []string{
	"token_key", "idx", "hash", "format", "type", "username", "realm", "uid",
	"scopes", "name", "service", "client_id", "parent_key", "credentials",
	"sealed", "created", "expires", "last_used", "revoked_at", "end_of_use",
	"audience", // schema version 2
}

// selectColumns is columns as a select list.
var selectColumns = strings.Join(columns, ", ")

// CorruptError describes a stored row that cannot be decoded into a valid
// record. It matches ErrCorrupt (errors.Is). The row is never returned as a
// token: a reader gets this error instead, so a damaged row can never
// validate.
type CorruptError struct {
	// Key is the row's key, or the zero key when the key itself is bad.
	Key token.Key
	// Reason says what is wrong (no secret can be in it: rows hold none).
	Reason string
}

func (e *CorruptError) Error() string {
	if e.Key.IsZero() {
		return "corrupt row: " + e.Reason
	}
	return "corrupt row " + e.Key.String() + ": " + e.Reason
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// appendArgs appends the bind values of t, in columns order. NULL is the
// nil interface (never a nil []byte, which drivers may bind as an empty
// blob). t must have passed checkBatch.
func appendArgs(args []any, t *token.Token) []any {
	var hash, uid, parent, creds, sealed any
	var name, service, clientID, audience any
	if !t.Hash.IsZero() {
		hash = t.Hash[:]
	}
	if t.HasUID {
		uid = t.UID
	}
	if e := t.Ext; e != nil {
		if e.Name != "" {
			name = e.Name
		}
		if e.Service != "" {
			service = e.Service
		}
		if e.ClientID != "" {
			clientID = e.ClientID
		}
		if !e.Parent.IsZero() {
			parent = e.Parent[:]
		}
		if len(e.Credentials) > 0 {
			creds = e.Credentials
		}
		if len(e.Sealed) > 0 {
			sealed = e.Sealed
		}
		if e.Audience != "" {
			audience = e.Audience
		}
	}
	return append(args,
		t.Key[:], int64(t.Index), hash, t.Format.String(), t.Type.String(),
		t.Username, t.Realm, uid, string(t.Scopes), name, service, clientID,
		parent, creds, sealed, int64(t.Created), nullTime(t.Expires),
		nullTime(t.LastUsed), nullTime(t.RevokedAt), nullTime(token.EndOfUse(t)),
		audience,
	)
}

func nullTime(t token.Time) any {
	if t == 0 {
		return nil
	}
	return int64(t)
}

// rowBuf receives one row. Keys, hashes, type and format are scanned as
// sql.RawBytes (no copy; valid until the next Next) and decoded into
// fixed-size fields.
type rowBuf struct {
	key, hash, parent, format, typ sql.RawBytes
	idx, created                   int64
	uid, expires, lastUsed         sql.NullInt64
	revokedAt, endOfUse            sql.NullInt64
	username, realm, scopes        string
	name, service, clientID        sql.NullString
	audience                       sql.NullString
	creds, sealed                  []byte
	dest                           []any
}

func newRowBuf() *rowBuf {
	r := &rowBuf{}
	r.dest = []any{
		&r.key, &r.idx, &r.hash, &r.format, &r.typ, &r.username, &r.realm, &r.uid,
		&r.scopes, &r.name, &r.service, &r.clientID, &r.parent, &r.creds,
		&r.sealed, &r.created, &r.expires, &r.lastUsed, &r.revokedAt, &r.endOfUse,
		&r.audience,
	}
	return r
}

// scan reads the current row of rows and decodes it. A row that does not
// decode into a valid record is a *CorruptError; a scan failure is returned
// as is (the caller translates it).
func (r *rowBuf) scan(rows *sql.Rows) (*token.Token, error) {
	r.creds, r.sealed = nil, nil
	if err := rows.Scan(r.dest...); err != nil {
		return nil, err
	}
	return r.decode()
}

func (r *rowBuf) decode() (*token.Token, error) {
	t := &token.Token{}
	if len(r.key) != token.KeySize {
		return nil, &CorruptError{Reason: fmt.Sprintf("key is %d bytes, want %d", len(r.key), token.KeySize)}
	}
	copy(t.Key[:], r.key)
	bad := func(format string, args ...any) error {
		return &CorruptError{Key: t.Key, Reason: fmt.Sprintf(format, args...)}
	}
	if t.Key.IsZero() {
		return nil, bad("key is all zero")
	}
	if r.idx < 0 {
		return nil, bad("negative index %d", r.idx)
	}
	t.Index = uint64(r.idx)
	switch len(r.hash) {
	case 0:
		if r.hash != nil {
			return nil, bad("hash is empty, want NULL or %d bytes", token.HashSize)
		}
	case token.HashSize:
		copy(t.Hash[:], r.hash)
	default:
		return nil, bad("hash is %d bytes, want %d", len(r.hash), token.HashSize)
	}
	var ok bool
	if t.Format, ok = parseFormat(r.format); !ok {
		return nil, bad("unknown format %q", r.format)
	}
	if t.Type, ok = parseType(r.typ); !ok {
		return nil, bad("unknown type %q", r.typ)
	}
	t.Username, t.Realm, t.Scopes = r.username, token.Intern(r.realm), token.Scopes(token.Intern(r.scopes))
	if r.uid.Valid {
		t.UID, t.HasUID = r.uid.Int64, true
	}
	var err error
	if t.Created, err = timeCol("created", sql.NullInt64{Int64: r.created, Valid: true}); err == nil {
		if t.Expires, err = timeCol("expires", r.expires); err == nil {
			if t.LastUsed, err = timeCol("last_used", r.lastUsed); err == nil {
				t.RevokedAt, err = timeCol("revoked_at", r.revokedAt)
			}
		}
	}
	if err != nil {
		return nil, bad("%v", err)
	}
	var e token.Extra
	e.Name, e.Service, e.ClientID = r.name.String, r.service.String, r.clientID.String
	e.Audience = r.audience.String
	if (r.name.Valid && e.Name == "") || (r.service.Valid && e.Service == "") || (r.clientID.Valid && e.ClientID == "") ||
		(r.audience.Valid && e.Audience == "") {
		return nil, bad("empty text where NULL is expected")
	}
	switch len(r.parent) {
	case 0:
		if r.parent != nil {
			return nil, bad("parent is empty, want NULL or %d bytes", token.KeySize)
		}
	case token.KeySize:
		copy(e.Parent[:], r.parent)
		if e.Parent.IsZero() {
			return nil, bad("parent key is all zero")
		}
	default:
		return nil, bad("parent is %d bytes, want %d", len(r.parent), token.KeySize)
	}
	if (r.creds != nil && len(r.creds) == 0) || (r.sealed != nil && len(r.sealed) == 0) {
		return nil, bad("empty blob where NULL is expected")
	}
	e.Credentials, e.Sealed = r.creds, r.sealed
	t.SetExtra(e)
	var end token.Time
	if end, err = timeCol("end_of_use", r.endOfUse); err != nil {
		return nil, bad("%v", err)
	}
	if want := token.EndOfUse(t); end != want {
		return nil, bad("end_of_use %d is not min(expires, revoked_at) = %d", end, want)
	}
	if err := validRecord(t); err != nil {
		return nil, bad("%v", err)
	}
	return t, nil
}

// validRecord is token.Validate plus the canonical form of the scopes:
// Validate accepts any order ("b a"), but a stored set must be the sorted
// string NewScopes makes, or comparisons of scope sets (delegation reuse)
// would go wrong.
func validRecord(t *token.Token) error {
	if err := t.Validate(); err != nil {
		return err
	}
	if !canonicalScopes(string(t.Scopes)) {
		return fmt.Errorf("%w: scopes %q are not in canonical form (sorted, single spaces)", token.ErrInvalid, t.Scopes)
	}
	return nil
}

// canonicalScopes reports, without allocating, whether s lists its
// space-separated scopes in strictly increasing order with single spaces
// (the form token.NewScopes makes; Validate has checked each scope).
func canonicalScopes(s string) bool {
	prev := ""
	for s != "" {
		cur, rest, found := strings.Cut(s, " ")
		if cur == "" || (prev != "" && cur <= prev) || (found && rest == "") {
			return false
		}
		prev, s = cur, rest
	}
	return true
}

// timeCol decodes a time column: NULL is unset, a stored value must be
// positive (0 would be ambiguous with unset).
func timeCol(name string, v sql.NullInt64) (token.Time, error) {
	if !v.Valid {
		return 0, nil
	}
	if v.Int64 <= 0 {
		return 0, fmt.Errorf("%s is %d, want a positive Unix time in nanoseconds or NULL", name, v.Int64)
	}
	return token.Time(v.Int64), nil
}

// parseType and parseFormat decode the stored names without allocating.
func parseType(b []byte) (token.Type, bool) {
	for t := token.TypeSession; t <= token.TypeOAuth; t++ {
		if string(b) == t.String() {
			return t, true
		}
	}
	return token.TypeUnknown, false
}

func parseFormat(b []byte) (token.Format, bool) {
	switch string(b) {
	case "opaque":
		return token.FormatOpaque, true
	case "jwt":
		return token.FormatJWT, true
	}
	return 0, false
}

// checkBatch validates every change of b before any is applied, so that a
// bad record fails the whole Write and nothing is written. Every store uses
// it, so they refuse the same batches.
func checkBatch(b *Batch) error {
	if b == nil {
		return fmt.Errorf("cannot write a nil batch: %w", token.ErrInvalid)
	}
	for i, t := range b.Puts {
		if t == nil {
			return fmt.Errorf("cannot write batch: put %d is nil: %w", i, token.ErrInvalid)
		}
		if err := validRecord(t); err != nil {
			return fmt.Errorf("cannot write token %s: %w", t.Key, err)
		}
		if t.Index > math.MaxInt64 {
			return fmt.Errorf("cannot write token %s: index %d does not fit a signed 64-bit column: %w", t.Key, t.Index, token.ErrInvalid)
		}
		if t.Created < 0 || t.Expires < 0 || t.LastUsed < 0 || t.RevokedAt < 0 {
			return fmt.Errorf("cannot write token %s: negative time: %w", t.Key, token.ErrInvalid)
		}
	}
	for _, d := range b.Deletes {
		if d.Key.IsZero() {
			return fmt.Errorf("cannot write batch: delete of the zero key: %w", token.ErrInvalid)
		}
	}
	for _, tc := range b.Touches {
		if tc.Key.IsZero() {
			return fmt.Errorf("cannot write batch: touch of the zero key: %w", token.ErrInvalid)
		}
		if tc.At < 0 {
			return fmt.Errorf("cannot write batch: touch of %s at a negative time: %w", tc.Key, token.ErrInvalid)
		}
	}
	if b.Index > math.MaxInt64 {
		return fmt.Errorf("cannot write batch: index %d does not fit a signed 64-bit column: %w", b.Index, token.ErrInvalid)
	}
	return nil
}

// plan is a batch reduced to what a store applies, in the order it applies
// it: puts (one per key, the largest index; the first of equal ones, as
// sequential upserts would keep), then deletes (one per key, the largest
// MaxIndex), then touches (one per key, the latest time). Applying puts
// before deletes is what makes the guards order-independent: a delete
// decided at index m removes the row only if the put that survives has
// index ≤ m, whichever came first in the log.
type plan struct {
	puts    []*token.Token
	deletes []Delete
	touches []Touch
}

func makePlan(b *Batch) plan {
	var p plan
	if len(b.Puts) > 0 {
		seen := make(map[token.Key]int, len(b.Puts))
		p.puts = make([]*token.Token, 0, len(b.Puts))
		for _, t := range b.Puts {
			if i, ok := seen[t.Key]; ok {
				if t.Index > p.puts[i].Index {
					p.puts[i] = t
				}
				continue
			}
			seen[t.Key] = len(p.puts)
			p.puts = append(p.puts, t)
		}
	}
	if len(b.Deletes) > 0 {
		seen := make(map[token.Key]int, len(b.Deletes))
		for _, d := range b.Deletes {
			d.MaxIndex = min(d.MaxIndex, math.MaxInt64)
			if i, ok := seen[d.Key]; ok {
				p.deletes[i].MaxIndex = max(p.deletes[i].MaxIndex, d.MaxIndex)
				continue
			}
			seen[d.Key] = len(p.deletes)
			p.deletes = append(p.deletes, d)
		}
	}
	if len(b.Touches) > 0 {
		seen := make(map[token.Key]int, len(b.Touches))
		for _, tc := range b.Touches {
			if tc.At == 0 {
				continue
			}
			if i, ok := seen[tc.Key]; ok {
				p.touches[i].At = max(p.touches[i].At, tc.At)
				continue
			}
			seen[tc.Key] = len(p.touches)
			p.touches = append(p.touches, tc)
		}
	}
	return p
}
