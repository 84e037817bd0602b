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
	codec, p, err := s.formats.Parse(raw)
	if err != nil {
		if errors.Is(err, token.ErrExpired) {
			// A JWT whose signature verified and whose exp passed: its
			// own text proves it (no record needed).
			return Validation{State: token.StateExpired}
		}
		return Validation{State: token.StateMalformed}
	}
	if err := s.repl.Fence(); err != nil {
		return Validation{Err: err}
	}
	k := p.Key
	var t *token.Token
	var used token.Time
	var ok bool
	if s.selfContained(p) {
		// Judged by its claims unless a record (its revocation
		// tombstone) exists. Lookup, not Get: a key without a record
		// is answered from memory by the key filter or the negative
		// cache, which a tombstone's put clears on every node as it
		// is applied; no catch-up wait either, since a revocation is
		// acknowledged only once every healthy node applied it.
		if t, used, err = s.cache.Lookup(ctx, k, s.load); err != nil {
			return Validation{Err: ErrStoreUnavailable}
		}
		if t == nil {
			return s.judgeClaims(p.Claims)
		}
	} else if t, used, ok = s.cache.Get(k); !ok {
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
	if !codec.Verify(p, t) {
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
			eff, ast, err := s.lineage(ctx, t, now)
			if err != nil {
				return Validation{Err: ErrStoreUnavailable}
			}
			if ast != token.StateValid {
				return Validation{State: ast, Token: t}
			}
			t = eff
		}
		s.cache.MarkUsed(k, now)
	}
	return Validation{State: st, Token: t}
}

// judgeClaims judges the record a self-contained token states (it has no
// record here, and no parent) by the same rules as a record: expiry and
// retention. Idle timeout does not apply: a token without a record has no
// replicated last use to measure it by. The answer points at c, which is
// shared and read-only like a cached record.
func (s *Service) judgeClaims(c *token.Token) Validation {
	now := token.At(s.now())
	st := s.rules.State(c, now, now)
	if st == token.StateUnknown {
		return Validation{State: st}
	}
	return Validation{State: st, Token: c}
}

// lineage judges t against its ancestors, up to maxAncestry levels: a token
// is never worth more than its ancestors are now. It returns the state the
// ancestors impose (revoked when one is revoked, expired when one is expired
// or gone, else valid) and t's effective record: t itself, or, when an
// ancestor's current scopes or expiry are narrower than t's, a copy of t
// narrowed to them. The common case (no narrowing) allocates nothing.
//
// Effective rights are derived here, from the records every node holds,
// rather than written into each descendant when an ancestor changes: so they
// hold on every node whatever the order in which writes reach it, and even
// when the leader cannot list a subtree (the store is down). A revoke still
// writes the revocation into every descendant it can list, so that listings
// show it; this check makes the subtree answer revoked anyway.
//
// A parent that no longer exists was deleted past retention (or purged once
// expired): its descendants are past their use too, and answer expired.
func (s *Service) lineage(ctx context.Context, t *token.Token, now token.Time) (*token.Token, token.State, error) {
	eff := t
	p := t.Parent()
	for depth := 0; !p.IsZero() && depth < maxAncestry; depth++ {
		a, _, ok := s.cache.Get(p)
		if !ok {
			var err error
			if a, _, err = s.cache.Lookup(ctx, p, s.load); err != nil {
				return t, token.StateUnknown, err
			}
			if a == nil {
				return t, token.StateExpired, nil
			}
		}
		if a.RevokedAt != 0 {
			return t, token.StateRevoked, nil
		}
		if a.Expires != 0 && now >= a.Expires {
			return t, token.StateExpired, nil
		}
		shorter := a.Expires != 0 && (eff.Expires == 0 || eff.Expires > a.Expires)
		if shorter || !a.Scopes.Contains(eff.Scopes) {
			if eff == t {
				c := *t // shallow: Ext is shared and never changed
				eff = &c
			}
			if shorter {
				eff.Expires = a.Expires
			}
			eff.Scopes = eff.Scopes.Intersect(a.Scopes)
		}
		p = a.Parent()
	}
	return eff, token.StateValid, nil
}

// effective returns t as it stands at now under its ancestors (lineage) and
// its state: the state of t's own record, or, when that is valid, the one
// its ancestors impose. t must not be nil.
func (s *Service) effective(ctx context.Context, t *token.Token, now token.Time) (*token.Token, token.State, error) {
	st := s.rules.State(t, now, 0)
	if st != token.StateValid || t.Parent().IsZero() {
		return t, st, nil
	}
	return s.lineage(ctx, t, now)
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
	if !s.repl.CatchUp(ctx) {
		return nil, 0
	}
	t, used, ok := s.cache.Get(k)
	if !ok {
		t, used, _ = s.cache.Lookup(ctx, k, s.load)
	}
	return t, used
}
