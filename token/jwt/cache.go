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

// cache is the verified-token cache: token texts whose signature and
// claims were verified, keyed by the whole text, so that a forged variant
// (one character of header, payload or signature changed) misses and is
// verified in full. It is bounded: a full shard drops an arbitrary entry
// (Go's map iteration starts at a random place) to make room. A lookup
// allocates nothing (m[string(b)] does not copy b). Safe for concurrent use.
type cache struct {
	seed     maphash.Seed
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]*verified
	_  [40]byte // keep shards on separate cache lines
}

func newCache(size int) *cache {
	c := &cache{seed: maphash.MakeSeed(), perShard: (size + cacheShards - 1) / cacheShards}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*verified)
	}
	return c
}

// hash returns the hash of raw that picks its shard.
func (c *cache) hash(raw []byte) uint64 { return maphash.Bytes(c.seed, raw) }

func (c *cache) shard(raw []byte) *cacheShard { return &c.shards[c.hash(raw)&(cacheShards-1)] }

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
	if _, ok := s.m[text]; !ok && len(s.m) >= c.perShard {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	s.m[text] = v
}

// remove drops the entry of raw.
func (c *cache) remove(raw []byte) {
	s := c.shard(raw)
	s.mu.Lock()
	delete(s.m, string(raw))
	s.mu.Unlock()
}

// purge drops every entry for which drop reports true.
func (c *cache) purge(drop func(v *verified) bool) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for k, v := range s.m {
			if drop(v) {
				delete(s.m, k)
			}
		}
		s.mu.Unlock()
	}
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
