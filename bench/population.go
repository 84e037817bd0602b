package bench

import "sync/atomic"

// Seeded is one item a target created before the run: a token (its text,
// and its key for revocation) or, for a key-value baseline, a key.
type Seeded struct {
	Token string // what a read sends: the token text, or the KV key
	Key   string // what a revoke sends: the token key, or the KV key
}

// Population is the set of seeded items the workloads draw from. Tokens
// are split, in the order they were created, into cold (the oldest: read by
// validate-miss, walked in order) and hot (the newest: read by validate,
// introspect and authz, at random). A separate pool holds items that
// revoke may consume; issue refills it.
//
// A Population is safe for concurrent use after NewPopulation.
type Population struct {
	tokens []Seeded
	hot    []Seeded
	cold   []Seeded
	next   atomic.Uint64 // cursor of the cold walk
	pool   chan string   // keys revoke may consume
	jwts   []Seeded      // tokens issued as JWTs, read by validate-jwt
}

// NewPopulation splits items: the last revokePool go to the revoke pool,
// the newest hot of the rest are hot, the others cold. hot ≤ 0 or larger
// than what is left makes every token hot (then validate-miss reads hot
// tokens, which a warm cache answers as hits: Config.Validate prevents
// that combination).
func NewPopulation(items []Seeded, hot, revokePool int) *Population {
	revokePool = min(max(revokePool, 0), len(items))
	readable := items[:len(items)-revokePool]
	if hot <= 0 || hot > len(readable) {
		hot = len(readable)
	}
	p := &Population{
		tokens: readable,
		cold:   readable[:len(readable)-hot],
		hot:    readable[len(readable)-hot:],
		// Room for the seeded pool plus what issue adds during the run.
		pool: make(chan string, max(revokePool*2, 1024)),
	}
	for _, it := range items[len(items)-revokePool:] {
		p.pool <- it.Key
	}
	return p
}

// Len is the number of readable tokens (hot and cold).
func (p *Population) Len() int { return len(p.tokens) }

// HotLen and ColdLen are the sizes of the two sets.
func (p *Population) HotLen() int  { return len(p.hot) }
func (p *Population) ColdLen() int { return len(p.cold) }

// Hot returns the hot token chosen by the random number r.
func (p *Population) Hot(r uint64) Seeded {
	if len(p.hot) == 0 {
		return Seeded{}
	}
	return p.hot[r%uint64(len(p.hot))]
}

// NextCold returns the next cold token of the walk, or a hot one when
// there are no cold tokens.
func (p *Population) NextCold() Seeded {
	if len(p.cold) == 0 {
		return p.Hot(p.next.Add(1))
	}
	return p.cold[(p.next.Add(1)-1)%uint64(len(p.cold))]
}

// TakeRevocable removes a key from the revoke pool; ok is false when the
// pool is empty.
func (p *Population) TakeRevocable() (key string, ok bool) {
	select {
	case key = <-p.pool:
		return key, true
	default:
		return "", false
	}
}

// AddRevocable offers a freshly issued key to the revoke pool; it is
// dropped when the pool is full.
func (p *Population) AddRevocable(key string) {
	select {
	case p.pool <- key:
	default:
	}
}

// RevocableLen is the number of keys in the revoke pool now.
func (p *Population) RevocableLen() int { return len(p.pool) }

// SetJWTs sets the tokens validate-jwt reads (issued as signed JWTs). Call
// it before the population is shared.
func (p *Population) SetJWTs(items []Seeded) { p.jwts = items }

// JWT returns the JWT chosen by the random number r.
func (p *Population) JWT(r uint64) Seeded {
	if len(p.jwts) == 0 {
		return Seeded{}
	}
	return p.jwts[r%uint64(len(p.jwts))]
}
