package cache

import "github.com/tokencache/tokencache/token"

// The negative cache remembers keys the store does not have, so that a
// client retrying an unknown (or past-retention) token costs one store query
// per NegativeTTL instead of one per request.
//
// It is one bounded simplelru per shard (key -> expiry in Unix ns), guarded
// by the shard mutex, so the miss path takes no lock beyond the shard's.
// Only a load that returned (nil, nil) while nothing changed the key creates
// an entry; errors are never remembered. Put and Delete clear the key's
// entry: a write through the log is visible at once, whatever the TTL.

// negativeLocked reports whether k is a remembered unknown key. An expired
// entry is dropped.
func (s *shard) negativeLocked(k token.Key, c *Cache) bool {
	if s.neg.Len() == 0 {
		return false
	}
	exp, ok := s.neg.Get(k)
	if !ok {
		return false
	}
	if c.nowNanos() >= exp {
		s.neg.Remove(k)
		return false
	}
	return true
}

// addNegativeLocked remembers k as unknown for NegativeTTL.
func (s *shard) addNegativeLocked(k token.Key, c *Cache) {
	s.neg.Add(k, c.nowNanos()+c.cfg.negTTL)
}
