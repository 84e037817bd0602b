package jwt

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/tokencache/tokencache/token"
)

// cacheShards is the number of shards of the verified-token cache (a power
// of two).
const cacheShards = 64

// verified is one entry of the verified-token cache: what Parse returned
// for a text, and what must be re-checked on a hit.
type verified struct {
	p token.Presented // Claims shared, read-only
	// notBefore and notAfter bound the instants (Unix nanoseconds) at which
	// the token is valid, the leeway applied: max(nbf, iat) - leeway and
	// exp + leeway.
	notBefore, notAfter int64
	key                 *Key   // the key that verified the signature
	iss                 Issuer // its issuer
	local               bool   // signed by the local issuer
}

// stillTrusted reports whether the issuer of an external token still
// holds the key that verified it (a trusted issuer's keys change with its
// JWKS, without a SetTrusted).
func (v *verified) stillTrusted() bool {
	k, ok := v.iss.Key(v.key.kid)
	return ok && k != nil && (k == v.key || k.sameMaterial(v.key))
}

// The verified-token cache's memory bound. An entry is charged
// entryCost(text): its text, about as much again for the parsed claims
// (they hold the payload, decoded), and entryOverhead for the entry, its
// key, claims and map slot. The cache holds at most its size in entries and
// its size × bytesPerEntry in charges, so large texts (a trusted IdP's
// tokens, up to the 16 KiB a token may have) are fewer, not bigger in sum:
// 128 MiB at the default size of 65,536, where an entry bound alone let
// 65,536 texts of 16 KiB take 2 GiB.
const (
	bytesPerEntry = 2 << 10
	entryOverhead = 256
)

// entryCost is what an entry for text is charged against the byte bound.
func entryCost(text string) int { return 2*len(text) + entryOverhead }

// cache is the verified-token cache: token texts whose signature and
// claims were verified, keyed by the whole text, so that a forged variant
// (one character of header, payload or signature changed) misses and is
// verified in full. It is bounded in entries and in bytes (above): a full
// shard drops arbitrary entries (Go's map iteration starts at a random
// place) to make room. A lookup allocates nothing (m[string(b)] does not
// copy b). Safe for concurrent use.
type cache struct {
	seed     maphash.Seed
	perShard int // entries
	maxBytes int // charges, per shard
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu    sync.RWMutex
	m     map[string]*verified
	bytes int      // the charges of the entries in m
	_     [24]byte // keep shards on separate cache lines (64 bytes)
}

func newCache(size int) *cache {
	per := (size + cacheShards - 1) / cacheShards
	c := &cache{seed: maphash.MakeSeed(), perShard: per, maxBytes: per * bytesPerEntry}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*verified)
	}
	return c
}

// hash returns the hash of raw that picks its shard.
func (c *cache) hash(raw []byte) uint64 { return maphash.Bytes(c.seed, raw) }

// get returns the entry of raw, whose hash is h.
func (c *cache) get(raw []byte, h uint64) *verified {
	s := &c.shards[h&(cacheShards-1)]
	s.mu.RLock()
	v := s.m[string(raw)]
	s.mu.RUnlock()
	return v
}

// put adds the entry of text, whose hash is h, verified under state st,
// unless the codec's state cur has changed since (a SetKeys or SetTrusted
// that ran during the verification may have removed the key: its purge
// must not be undone).
func (c *cache) put(h uint64, text string, v *verified, st *state, cur *atomic.Pointer[state]) {
	s := &c.shards[h&(cacheShards-1)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur.Load() != st {
		return
	}
	cost := entryCost(text)
	if cost > c.maxBytes {
		return // larger than the shard's whole share
	}
	if _, ok := s.m[text]; ok {
		s.m[text] = v
		return
	}
	for k := range s.m {
		if len(s.m) < c.perShard && s.bytes+cost <= c.maxBytes {
			break
		}
		s.drop(k)
	}
	s.m[text] = v
	s.bytes += cost
}

// drop deletes the entry of text (the shard's lock held).
func (s *cacheShard) drop(text string) {
	if _, ok := s.m[text]; ok {
		delete(s.m, text)
		s.bytes -= entryCost(text)
	}
}

// remove drops the entry of raw, whose hash is h.
func (c *cache) remove(raw []byte, h uint64) {
	s := &c.shards[h&(cacheShards-1)]
	s.mu.Lock()
	s.drop(string(raw))
	s.mu.Unlock()
}

// purge drops every entry for which drop reports true.
func (c *cache) purge(drop func(v *verified) bool) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for k, v := range s.m {
			if drop(v) {
				s.drop(k)
			}
		}
		s.mu.Unlock()
	}
}

// bytes returns the charges of the entries held.
func (c *cache) bytes() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += s.bytes
		s.mu.RUnlock()
	}
	return n
}

// len returns the number of entries.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
