package replica

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
)

// Op identifies the kind of a Command.
type Op uint8

// Commands. Values are part of the log format: never renumber.
const (
	// OpPut writes full token records: issue, modify, and revoke (with its
	// cascade) are all puts of records the leader computed.
	OpPut Op = 1
	// OpDelete removes records past retention (the reaper and purge).
	OpDelete Op = 2
	// OpTouch carries coalesced last-used times.
	OpTouch Op = 3
	// OpPersisted announces that the shared SQL store holds every change up
	// to an index, so that every node may release (unpin) those changes.
	OpPersisted Op = 4
	// OpNoop changes nothing; a new leader commits one to learn that its
	// state is current.
	OpNoop Op = 5
	// OpClusterID records the cluster's identity, created once when the
	// cluster was bootstrapped (cluster/DESIGN.md §8). The first one applied
	// wins; later ones change nothing. It changes no token.
	OpClusterID Op = 6
)

func (o Op) String() string {
	switch o {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpTouch:
		return "touch"
	case OpPersisted:
		return "persisted"
	case OpNoop:
		return "noop"
	case OpClusterID:
		return "cluster-id"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Command is one entry of the replicated log. The leader resolves everything
// non-deterministic (times, keys, secret hashes, the set of descendants of a
// revoked token) before it proposes a command, so that applying it is a pure
// function of the command and the state.
type Command struct {
	Op   Op
	Time token.Time // the proposer's clock when it built the command

	// OpPut: the new records. Apply sets each one's Index to the entry's.
	Puts []*token.Token
	// OpPut of an issue sent with an Idempotency-Key: the key, so that every
	// node remembers which token it minted.
	IdempotencyKey string

	Deletes   []persist.Delete // OpDelete
	Touches   []persist.Touch  // OpTouch
	Persisted uint64           // OpPersisted
	ClusterID string           // OpClusterID
}

// Revokes reports whether c is a revocation: a put of records that all
// carry RevokedAt (a revoke, its cascade, a tombstone).
func (c *Command) Revokes() bool {
	if c.Op != OpPut || len(c.Puts) == 0 {
		return false
	}
	for _, t := range c.Puts {
		if t.RevokedAt == 0 {
			return false
		}
	}
	return true
}

// Sync reports whether c must be proposed synchronously (committed and
// applied before the proposer is answered) whatever the replication policy:
// revocations (invariant 2 needs their index), puts of child tokens (a
// revocation of the parent reads the leader's view for descendants right
// after; an accepted but unapplied child would escape the cascade), named
// tokens (the next write of the user checks name uniqueness against the
// applied state), issues with an Idempotency-Key (the replay is detected by
// applying) and no-ops (a leader's barrier).
func (c *Command) Sync() bool {
	switch c.Op {
	case OpNoop:
		return true
	case OpPut:
		if c.IdempotencyKey != "" {
			return true
		}
		for _, t := range c.Puts {
			if t.RevokedAt != 0 || !t.Parent().IsZero() || t.Name() != "" {
				return true
			}
		}
	}
	return false
}

// Encoding limits: a decoder never trusts a length it reads.
const (
	commandVersion = 1
	maxFieldLen    = 1 << 16 // strings and blobs inside a record
	// MaxIdempotencyKeyLen bounds an idempotency key (the Idempotency-Key
	// header): the one place this bound is declared.
	MaxIdempotencyKeyLen = 255
	// MaxClusterIDLen bounds a cluster id (OpClusterID, snapshots).
	MaxClusterIDLen = 64
)

// ErrBadCommand means a log entry or snapshot could not be decoded. A node
// that meets one stops applying: skipping it would make it diverge.
var ErrBadCommand = errors.New("cannot decode command")

// MarshalBinary encodes c in the versioned log format.
func (c *Command) MarshalBinary() ([]byte, error) { return c.AppendBinary(nil) }

// AppendBinary appends the encoding of c to b.
func (c *Command) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, commandVersion, byte(c.Op))
	b = binary.AppendVarint(b, int64(c.Time))
	switch c.Op {
	case OpPut:
		b = binary.AppendUvarint(b, uint64(len(c.Puts)))
		for _, t := range c.Puts {
			b = AppendToken(b, t)
		}
		if len(c.IdempotencyKey) > MaxIdempotencyKeyLen {
			return nil, fmt.Errorf("idempotency key longer than %d bytes", MaxIdempotencyKeyLen)
		}
		b = appendString(b, c.IdempotencyKey)
	case OpDelete:
		b = binary.AppendUvarint(b, uint64(len(c.Deletes)))
		for _, d := range c.Deletes {
			b = append(b, d.Key[:]...)
			b = binary.AppendUvarint(b, d.MaxIndex)
		}
	case OpTouch:
		b = binary.AppendUvarint(b, uint64(len(c.Touches)))
		for _, t := range c.Touches {
			b = append(b, t.Key[:]...)
			b = binary.AppendVarint(b, int64(t.At))
		}
	case OpPersisted:
		b = binary.AppendUvarint(b, c.Persisted)
	case OpNoop:
	case OpClusterID:
		if c.ClusterID == "" || len(c.ClusterID) > MaxClusterIDLen {
			return nil, fmt.Errorf("cluster id of %d bytes, want 1 to %d", len(c.ClusterID), MaxClusterIDLen)
		}
		b = appendString(b, c.ClusterID)
	default:
		return nil, fmt.Errorf("cannot encode unknown op %d", c.Op)
	}
	return b, nil
}

// UnmarshalBinary decodes a command encoded by MarshalBinary (any version
// this binary knows).
func (c *Command) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	v := r.byte()
	if r.err == nil && v != commandVersion {
		return fmt.Errorf("%w: unknown version %d", ErrBadCommand, v)
	}
	*c = Command{Op: Op(r.byte()), Time: token.Time(r.varint())}
	switch c.Op {
	case OpPut:
		n := r.count(1 + token.KeySize)
		c.Puts = make([]*token.Token, 0, n)
		for i := 0; i < n && r.err == nil; i++ {
			c.Puts = append(c.Puts, r.token())
		}
		c.IdempotencyKey = r.string(MaxIdempotencyKeyLen)
	case OpDelete:
		n := r.count(token.KeySize + 1)
		c.Deletes = make([]persist.Delete, 0, n)
		for i := 0; i < n && r.err == nil; i++ {
			c.Deletes = append(c.Deletes, persist.Delete{Key: r.key(), MaxIndex: r.uvarint()})
		}
	case OpTouch:
		n := r.count(token.KeySize + 1)
		c.Touches = make([]persist.Touch, 0, n)
		for i := 0; i < n && r.err == nil; i++ {
			c.Touches = append(c.Touches, persist.Touch{Key: r.key(), At: token.Time(r.varint())})
		}
	case OpPersisted:
		c.Persisted = r.uvarint()
	case OpNoop:
	case OpClusterID:
		c.ClusterID = r.string(MaxClusterIDLen)
		if r.err == nil && c.ClusterID == "" {
			r.err = fmt.Errorf("%w: empty cluster id", ErrBadCommand)
		}
	default:
		if r.err == nil {
			return fmt.Errorf("%w: unknown op %d", ErrBadCommand, c.Op)
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", ErrBadCommand, len(r.b))
	}
	return r.err
}

// Record flags. A flag added later marks a field appended after the fields
// of the earlier flags, so that records written before it decode unchanged.
const (
	flagUID = 1 << iota
	flagExt
	// flagAudience: Ext.Audience follows the other Ext fields (a JWT's
	// aud). Set only with flagExt.
	flagAudience
)

// AppendToken appends the encoding of one record (log and snapshot format).
func AppendToken(b []byte, t *token.Token) []byte {
	b = append(b, t.Key[:]...)
	b = append(b, t.Hash[:]...)
	b = binary.AppendUvarint(b, t.Index)
	b = binary.AppendVarint(b, int64(t.Created))
	b = binary.AppendVarint(b, int64(t.Expires))
	b = binary.AppendVarint(b, int64(t.LastUsed))
	b = binary.AppendVarint(b, int64(t.RevokedAt))
	b = binary.AppendVarint(b, t.UID)
	var flags byte
	if t.HasUID {
		flags |= flagUID
	}
	if t.Ext != nil {
		flags |= flagExt
		if t.Ext.Audience != "" {
			flags |= flagAudience
		}
	}
	b = append(b, flags, byte(t.Format), byte(t.Type))
	b = appendString(b, t.Username)
	b = appendString(b, t.Realm)
	b = appendString(b, string(t.Scopes))
	if t.Ext != nil {
		b = appendString(b, t.Ext.Name)
		b = appendString(b, t.Ext.Service)
		b = appendString(b, t.Ext.ClientID)
		b = append(b, t.Ext.Parent[:]...)
		b = appendString(b, string(t.Ext.Credentials))
		b = appendString(b, string(t.Ext.Sealed))
		if t.Ext.Audience != "" {
			b = appendString(b, t.Ext.Audience)
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// reader decodes with bounds checks; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated or invalid %s", ErrBadCommand, what)
	}
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail("byte")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads an element count and checks that the rest of the input can
// hold that many elements of at least minSize bytes.
func (r *reader) count(minSize int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/minSize) {
		r.fail("count")
		return 0
	}
	return int(n)
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || len(r.b) < n {
		r.fail("bytes")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) string(max int) string {
	n := r.uvarint()
	if r.err == nil && (n > uint64(max) || n > uint64(len(r.b))) {
		r.fail("string length")
		return ""
	}
	return string(r.bytes(int(n)))
}

func (r *reader) blob(max int) []byte {
	s := r.string(max)
	if s == "" {
		return nil
	}
	return []byte(s)
}

func (r *reader) key() token.Key {
	var k token.Key
	copy(k[:], r.bytes(token.KeySize))
	return k
}

func (r *reader) token() *token.Token {
	t := &token.Token{Key: r.key()}
	copy(t.Hash[:], r.bytes(token.HashSize))
	t.Index = r.uvarint()
	t.Created = token.Time(r.varint())
	t.Expires = token.Time(r.varint())
	t.LastUsed = token.Time(r.varint())
	t.RevokedAt = token.Time(r.varint())
	t.UID = r.varint()
	flags := r.byte()
	t.HasUID = flags&flagUID != 0
	t.Format = token.Format(r.byte())
	t.Type = token.Type(r.byte())
	t.Username = r.string(maxFieldLen)
	t.Realm = token.Intern(r.string(maxFieldLen))
	t.Scopes = token.Scopes(token.Intern(r.string(maxFieldLen)))
	if flags&flagExt != 0 {
		e := &token.Extra{
			Name:     r.string(maxFieldLen),
			Service:  r.string(maxFieldLen),
			ClientID: r.string(maxFieldLen),
		}
		e.Parent = r.key()
		e.Credentials = r.blob(maxFieldLen)
		e.Sealed = r.blob(maxFieldLen)
		if flags&flagAudience != 0 {
			e.Audience = r.string(maxFieldLen)
			if r.err == nil && e.Audience == "" {
				r.fail("audience")
			}
		}
		t.Ext = e
	} else if flags&flagAudience != 0 {
		r.fail("record flags")
	}
	if flags&^(flagUID|flagExt|flagAudience) != 0 {
		r.fail("record flags")
	}
	return t
}

// ReadToken decodes one record from the front of b and returns the rest.
func ReadToken(b []byte) (*token.Token, []byte, error) {
	r := reader{b: b}
	t := r.token()
	if r.err != nil {
		return nil, nil, r.err
	}
	return t, r.b, nil
}
