package replica

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"slices"

	"github.com/tokencache/tokencache/cache"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
)

// Snapshot format (version 2), all integers varints:
//
//	"TCSNAP" version applied persisted clusterID
//	nIdem  { id key at }
//	nPinned { kind=1 record | kind=2 key index maxIndex }
//	rows?  { 1 record }* 0        (local stores only: every row of the store)
//	crc32c of everything before it (4 bytes, big endian)
//
// where record is a length-prefixed AppendToken encoding and clusterID a
// length-prefixed string ("" when the state has none). Version 1 is the same
// without clusterID; it is still read.
// A snapshot carries the pinned set (every change the store may not hold
// yet), so compacting the log never loses a change SQL lacks.
const (
	snapshotMagic   = "TCSNAP"
	snapshotVersion = 2
	kindRecord      = 1
	kindDelete      = 2
	maxRecordLen    = 8 * maxFieldLen
)

// ErrBadSnapshot means a snapshot could not be decoded or failed its checksum.
var ErrBadSnapshot = errors.New("cannot read snapshot")

// Snapshot is a point-in-time copy of a node's replicated state, taken
// between two applies. WriteTo may run concurrently with later applies.
type Snapshot struct {
	state     *Machine
	applied   uint64
	persisted uint64
	clusterID string
	idem      []idemRef
	idemKeys  map[string]token.Key
	pinned    []cache.Change
	rowsMax   uint64 // largest index of a row WriteTo streamed (local store)
}

// Snapshot captures the state. It must be called from the apply goroutine
// (between applies); it copies only the pinned set and the idempotency table.
func (s *Machine) Snapshot() *Snapshot {
	snap := &Snapshot{
		state:     s,
		applied:   s.applied.Load(),
		persisted: s.PersistedIndex(),
		clusterID: s.ClusterID(),
		idemKeys:  make(map[string]token.Key),
	}
	s.idemMu.RLock()
	snap.idem = s.idem.entries()
	for _, ref := range snap.idem {
		snap.idemKeys[ref.id] = s.idem.m[ref.id].key
	}
	s.idemMu.RUnlock()
	s.cache.EachPinned(func(c cache.Change) bool {
		snap.pinned = append(snap.pinned, c)
		return true
	})
	slices.SortFunc(snap.pinned, func(a, b cache.Change) int { return cmpU64(a.Index, b.Index) })
	return snap
}

// SnapshotAt is Snapshot, except that the snapshot records index as its
// applied index (when index is above the applied index). The cluster uses
// it to fast-forward a new Raft log past the store's persisted index: the
// log jumps to index with nothing in between, and the snapshot it installs
// there is this state, claiming index, so that a node that restores it has
// applied == index and keeps the persisted index. Same rules as Snapshot.
func (s *Machine) SnapshotAt(index uint64) *Snapshot {
	snap := s.Snapshot()
	snap.applied = max(snap.applied, index)
	return snap
}

// Index returns the applied index the snapshot was taken at.
func (snap *Snapshot) Index() uint64 { return snap.applied }

// MaxRowIndex returns the largest log index among the rows the last WriteTo
// streamed (local store; 0 for a shared one, or before WriteTo). Rows may
// carry indexes above the persisted index (a store refilled by Restore); a
// fast-forward must go past them too.
func (snap *Snapshot) MaxRowIndex() uint64 { return snap.rowsMax }

// WriteTo writes the snapshot. With a local store it streams every row of
// the store as well (rows newer than the snapshot are harmless: replaying the
// log after a restore rewrites them idempotently).
func (snap *Snapshot) WriteTo(ctx context.Context, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	out := io.MultiWriter(bw, crc)
	var b []byte
	flush := func() error {
		_, err := out.Write(b)
		b = b[:0]
		return err
	}
	b = append(b, snapshotMagic...)
	b = binary.AppendUvarint(b, snapshotVersion)
	b = binary.AppendUvarint(b, snap.applied)
	b = binary.AppendUvarint(b, snap.persisted)
	b = appendString(b, snap.clusterID)
	b = binary.AppendUvarint(b, uint64(len(snap.idem)))
	for _, ref := range snap.idem {
		b = appendString(b, ref.id)
		k := snap.idemKeys[ref.id]
		b = append(b, k[:]...)
		b = binary.AppendVarint(b, int64(ref.at))
	}
	b = binary.AppendUvarint(b, uint64(len(snap.pinned)))
	for _, c := range snap.pinned {
		if c.Token != nil {
			b = append(b, kindRecord)
			b = appendRecord(b, c.Token)
		} else {
			b = append(b, kindDelete)
			b = append(b, c.Key[:]...)
			b = binary.AppendUvarint(b, c.Index)
			b = binary.AppendUvarint(b, c.MaxIndex)
		}
		if len(b) > 1<<16 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if !snap.state.store.Shared() {
		snap.rowsMax = 0
		err := snap.state.store.Scan(ctx, func(t *token.Token) error {
			snap.rowsMax = max(snap.rowsMax, t.Index)
			b = append(b, 1)
			b = appendRecord(b, t)
			if len(b) > 1<<16 {
				return flush()
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("cannot read the store for a snapshot: %w", err)
		}
		b = append(b, 0)
	}
	if err := flush(); err != nil {
		return err
	}
	if _, err := bw.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32())); err != nil {
		return err
	}
	return bw.Flush()
}

// Restore replaces the whole state with a snapshot written by WriteTo: the
// cache is emptied, a local store is reset and refilled, and the pinned set,
// the idempotency table and the indexes are taken from the snapshot. It must
// be called from the apply goroutine. A snapshot that fails to decode or its
// checksum changes nothing in the cache (a local store may be left partly
// filled, and the node must not serve until a restore succeeds).
func (s *Machine) Restore(ctx context.Context, r io.Reader) error {
	return s.restore(ctx, r, false)
}

// RestoreOwn is Restore for a snapshot this node wrote of its own state
// (SnapshotAt, for a fast-forward of the Raft log): a local store is left as
// it is — the snapshot's rows are its rows — instead of being reset and
// refilled, so that the node's only copy of its data is never deleted and
// rewritten. The rows are still read, for the checksum.
func (s *Machine) RestoreOwn(ctx context.Context, r io.Reader) error {
	return s.restore(ctx, r, true)
}

func (s *Machine) restore(ctx context.Context, r io.Reader, own bool) error {
	cr := &crcReader{r: bufio.NewReaderSize(r, 1<<16), h: crc32.New(crc32.MakeTable(crc32.Castagnoli))}
	d := snapDecoder{r: cr}
	magic := d.bytes(len(snapshotMagic))
	if d.err == nil && string(magic) != snapshotMagic {
		return fmt.Errorf("%w: not a tokencache snapshot", ErrBadSnapshot)
	}
	v := d.uvarint()
	if d.err == nil && (v < 1 || v > snapshotVersion) {
		return fmt.Errorf("%w: unknown version %d", ErrBadSnapshot, v)
	}
	applied, persisted := d.uvarint(), d.uvarint()
	var clusterID string
	if v >= 2 {
		clusterID = string(d.bytes(int(d.uvarintMax(MaxClusterIDLen))))
	}
	idem := newIdempotencyTable()
	for n := d.uvarint(); d.err == nil && n > 0; n-- {
		id := string(d.bytes(int(d.uvarintMax(MaxIdempotencyKeyLen))))
		k := d.key()
		at := token.Time(d.varint())
		idem.m[id] = idemEntry{key: k, at: at}
		idem.order = append(idem.order, idemRef{id: id, at: at})
	}
	var pinned []cache.Change
	for n := d.uvarint(); d.err == nil && n > 0; n-- {
		switch d.byte() {
		case kindRecord:
			t := d.token()
			if d.err == nil {
				pinned = append(pinned, cache.Change{Index: t.Index, Key: t.Key, Token: t})
			}
		case kindDelete:
			c := cache.Change{Key: d.key()}
			c.Index, c.MaxIndex = d.uvarint(), d.uvarint()
			pinned = append(pinned, c)
		default:
			d.fail("pinned kind")
		}
	}
	if d.err != nil {
		return d.err
	}
	if !s.store.Shared() && own {
		for d.err == nil && d.byte() == 1 {
			d.token()
		}
		if d.err != nil {
			return d.err
		}
	} else if !s.store.Shared() {
		if err := s.store.Reset(ctx); err != nil {
			return fmt.Errorf("cannot reset the local store: %w", err)
		}
		batch := &persist.Batch{}
		for d.err == nil && d.byte() == 1 {
			batch.Puts = append(batch.Puts, d.token())
			if len(batch.Puts) == 1024 {
				if err := s.store.Write(ctx, batch); err != nil {
					return fmt.Errorf("cannot restore rows: %w", err)
				}
				batch = &persist.Batch{}
			}
		}
		if d.err != nil {
			return d.err
		}
		batch.Index = persisted
		if err := s.store.Write(ctx, batch); err != nil {
			return fmt.Errorf("cannot restore rows: %w", err)
		}
	}
	sum := cr.h.Sum32()
	var tail [4]byte
	if _, err := io.ReadFull(cr.r, tail[:]); err != nil || binary.BigEndian.Uint32(tail[:]) != sum {
		return fmt.Errorf("%w: checksum mismatch", ErrBadSnapshot)
	}

	s.refill(pinned, applied)
	s.idemMu.Lock()
	s.idem = idem
	s.idemMu.Unlock()
	s.writer.persisted.Store(persisted)
	s.clusterID.Store(&clusterID)
	s.applied.Store(applied)
	return nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// crcReader checksums what is read through it.
type crcReader struct {
	r *bufio.Reader
	h hash.Hash32
}

func (c *crcReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.h.Write([]byte{b})
	}
	return b, err
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	return n, err
}

// snapDecoder reads snapshot fields; the first error sticks.
type snapDecoder struct {
	r   *crcReader
	err error
}

func (d *snapDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or invalid %s", ErrBadSnapshot, what)
	}
}

func (d *snapDecoder) byte() byte {
	if d.err != nil {
		return 0
	}
	b, err := d.r.ReadByte()
	if err != nil {
		d.fail("byte")
	}
	return b
}

func (d *snapDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(d.r)
	if err != nil {
		d.fail("uvarint")
	}
	return v
}

func (d *snapDecoder) uvarintMax(max uint64) uint64 {
	v := d.uvarint()
	if v > max {
		d.fail("length")
		return 0
	}
	return v
}

func (d *snapDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(d.r)
	if err != nil {
		d.fail("varint")
	}
	return v
}

func (d *snapDecoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(d.r, b); err != nil {
		d.fail("bytes")
		return nil
	}
	return b
}

func (d *snapDecoder) key() token.Key {
	var k token.Key
	copy(k[:], d.bytes(token.KeySize))
	return k
}

// token reads one length-prefixed record.
func (d *snapDecoder) token() *token.Token {
	n := d.uvarintMax(maxRecordLen)
	buf := d.bytes(int(n))
	if d.err != nil {
		return nil
	}
	t, rest, err := ReadToken(buf)
	if err != nil || len(rest) != 0 {
		d.fail("record")
		return nil
	}
	return t
}

// appendRecord appends a length-prefixed record.
func appendRecord(b []byte, t *token.Token) []byte {
	n := len(b)
	b = AppendToken(b, t)
	rec := append([]byte(nil), b[n:]...)
	b = binary.AppendUvarint(b[:n], uint64(len(rec)))
	return append(b, rec...)
}
