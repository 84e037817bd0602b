package tokens

import (
	"context"
	"errors"

	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
)

// maxAncestry is how many parents Validate walks up from a token.
const maxAncestry = 8

// Validate judges the token text raw (which may alias a request buffer; it is
// not retained). It is the hot path: on a cache hit it does not allocate and
// takes no lock but the cache shard's.
//
// A node that the fence says is out of contact with the leader decides
// nothing but "malformed": it may have missed a revocation (so no valid) or
// an issue (so no unknown either).
func (s *Service) Validate(ctx context.Context, raw []byte) Validation {
	k, secret, err := token.Parse(s.cfg.Prefix, raw)
	if err != nil {
		return Validation{State: token.StateMalformed}
	}
	if f := s.fence.Load(); f != nil {
		if err := (*f)(); err != nil {
			return Validation{Err: err}
		}
	}
	t, used, ok := s.cache.Get(k)
	if !ok {
		t, used, err = s.cache.Lookup(ctx, k, s.load)
		if err != nil {
			return Validation{Err: ErrStoreUnavailable}
		}
		if t == nil {
			if t, used = s.afterCatchUp(ctx, k); t == nil {
				return Validation{State: token.StateUnknown}
			}
		}
	}
	if !s.hasher.Verify(k, secret, t.Hash) {
		// A wrong secret says nothing about the token behind the key.
		return Validation{State: token.StateUnknown}
	}
	now := token.At(s.now())
	st := s.rules.State(t, now, used)
	if st == token.StateUnknown {
		return Validation{State: st}
	}
	if st == token.StateValid {
		if !t.Parent().IsZero() {
			revoked, err := s.ancestorRevoked(ctx, t)
			if err != nil {
				return Validation{Err: ErrStoreUnavailable}
			}
			if revoked {
				return Validation{State: token.StateRevoked, Token: t}
			}
		}
		s.cache.MarkUsed(k, now)
	}
	return Validation{State: st, Token: t}
}

// ancestorRevoked reports whether a parent of t, up to maxAncestry levels,
// is revoked. A revoke writes the revocation into every descendant, but when
// the store cannot list them (it is down) only the root is revoked at once:
// this check makes its whole subtree answer revoked on every node anyway. A
// parent that no longer exists was deleted past retention, which a child,
// never outliving its parent, has reached too.
func (s *Service) ancestorRevoked(ctx context.Context, t *token.Token) (bool, error) {
	p := t.Parent()
	for depth := 0; !p.IsZero() && depth < maxAncestry; depth++ {
		a, _, ok := s.cache.Get(p)
		if !ok {
			var err error
			if a, _, err = s.cache.Lookup(ctx, p, s.load); err != nil {
				return false, err
			}
			if a == nil {
				return false, nil
			}
		}
		if a.RevokedAt != 0 {
			return true, nil
		}
		p = a.Parent()
	}
	return false, nil
}

// loadFromStore is the cache's read-through loader.
func (s *Service) loadFromStore(ctx context.Context, k token.Key) (*token.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadTimeout)
	defer cancel()
	t, err := s.store.Get(ctx, k)
	switch {
	case err == nil:
		return t, nil
	case errors.Is(err, persist.ErrNotFound):
		return nil, nil
	case errors.Is(err, persist.ErrCorrupt):
		// A row we cannot trust is never valid; say so once, answer unknown.
		s.log.Error("corrupt row in the store; answering unknown", "key", k.String(), "err", err)
		return nil, nil
	}
	return nil, err
}

// afterCatchUp retries a lookup of an unknown key once the log has caught up,
// when this node was behind.
func (s *Service) afterCatchUp(ctx context.Context, k token.Key) (*token.Token, token.Time) {
	f := s.catch.Load()
	if f == nil || !(*f)(ctx) {
		return nil, 0
	}
	t, used, ok := s.cache.Get(k)
	if !ok {
		t, used, _ = s.cache.Lookup(ctx, k, s.load)
	}
	return t, used
}
