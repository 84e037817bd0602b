package tokens

import (
	"context"
	"fmt"

	"github.com/tokencache/tokencache/replica"
	"github.com/tokencache/tokencache/token"
)

// maxPutsPerEntry bounds the records of one log entry (a cascade revoke of
// a larger tree takes several entries).
const maxPutsPerEntry = 10_000

// Revoke revokes the token k and all its descendants, and returns their keys
// (k first, then the descendants breadth-first). It is acknowledged only once
// every healthy node has applied the revocation.
func (s *Service) Revoke(ctx context.Context, k token.Key) ([]token.Key, error) {
	res, err := s.write(ctx, &WriteRequest{Revoke: &RevokeSpec{Key: k}})
	if err != nil {
		return nil, err
	}
	keys := make([]token.Key, len(res.Tokens))
	for i, t := range res.Tokens {
		keys[i] = t.Key
	}
	return keys, nil
}

// RevokeToken revokes the token whose full text is raw (RFC 7009). A
// malformed or unknown token, or a wrong secret, is not an error: the
// revocation endpoint answers the same for all of them.
//
// The leader judges whether the token exists: this node's state may lag (the
// token was issued a moment ago through another node, or this node is out of
// contact), so a local miss proves nothing and answering it here would
// acknowledge a revocation that never happened. Only a local record whose
// hash differs is answered at once (a key's hash never changes, so the
// secret is wrong everywhere).
//
// A node the fence says is out of contact answers the fence's error.
func (s *Service) RevokeToken(ctx context.Context, raw []byte) error {
	codec, p, err := s.formats.Parse(raw)
	if err != nil {
		return nil
	}
	k := p.Key
	if err := s.repl.Fence(); err != nil {
		return err
	}
	if s.selfContained(p) {
		return s.revokeSelfContained(ctx, p)
	}
	if t, _, ok := s.cache.Get(k); ok && !codec.Verify(p, t) {
		return nil
	}
	h := codec.Sum(p)
	_, err = s.write(ctx, &WriteRequest{Revoke: &RevokeSpec{Key: k, Hash: &h}})
	if errIs(err, ErrNotFound) {
		return nil
	}
	return err
}

// revokeSelfContained revokes a token judged by its own claims (a JWT from
// an external issuer, or any JWT while the store is disabled; Parse
// verified it): the leader writes its tombstone, the record its claims
// state with RevokedAt, through the ordinary put of a revocation, so that
// replication, snapshots, retention and purge treat it like any record and
// the answer comes only once every healthy node applied it (invariant 2).
// A token past its exp by more than token.TombstoneMargin is dead on every
// node anyway: nothing is written. Idempotent: a
// second revocation finds the tombstone and only waits for it to be
// applied everywhere.
func (s *Service) revokeSelfContained(ctx context.Context, p token.Presented) error {
	c := p.Claims
	now := token.At(s.now())
	if c.Expires != 0 && now >= c.Expires.Add(token.TombstoneMargin) {
		return nil // no node accepts it any more, whatever its clock says
	}
	tomb := &token.Token{
		Key: p.Key, Format: token.FormatJWT, Type: c.Type,
		Created: c.Created, Expires: c.Expires,
		Username: c.Username, Realm: c.Realm, UID: c.UID, HasUID: c.HasUID,
	}
	if tomb.Type == token.TypeUnknown {
		tomb.Type = token.TypeUser
	}
	if tomb.Realm == "" {
		tomb.Realm = token.DefaultRealm
	}
	if tomb.Created == 0 || (tomb.Expires != 0 && tomb.Created >= tomb.Expires) {
		tomb.Created = min(now, tomb.Expires-1)
	}
	_, err := s.write(ctx, &WriteRequest{Revoke: &RevokeSpec{Key: p.Key, Tombstone: tomb}})
	if errIs(err, ErrNotFound) {
		return nil
	}
	return err
}

// selfContained reports whether p is judged by the claims it carries
// rather than by a record: a JWT of an external issuer (it never has a
// record here), or any JWT while the store is disabled (nothing has one).
// A record under its key can then only be its revocation tombstone.
func (s *Service) selfContained(p token.Presented) bool {
	return p.Claims != nil && (p.External || s.noStore)
}

// leaderTombstone writes the revocation tombstone of spec (RevokeToken of a
// self-contained token) unless a record of its key exists, which is then
// revoked as any record is (a second revocation finds the tombstone).
func (s *Service) leaderTombstone(ctx context.Context, spec *RevokeSpec) ([]*token.Token, error) {
	tomb := spec.Tombstone.Clone()
	if tomb.Key != spec.Key || tomb.Format != token.FormatJWT || !tomb.Hash.IsZero() || tomb.Ext != nil {
		return nil, fmt.Errorf("%w: a tombstone is the bare record of a JWT", token.ErrInvalid)
	}
	root, err := s.get(ctx, spec.Key)
	if err != nil {
		return nil, err
	}
	if root == nil {
		// A record that appeared meanwhile is revoked below, as any is.
		done, _, err := s.writeTombstone(ctx, tomb)
		switch {
		case err != nil:
			return nil, err
		case done && tomb.RevokedAt == 0: // past its exp: nothing written
			return nil, nil
		case done:
			return []*token.Token{tomb}, nil
		}
	}
	return s.leaderRevoke(ctx, &RevokeSpec{Key: spec.Key})
}

// writeTombstone proposes tomb under its user's lock, unless a record of its
// key appeared meanwhile (returned, and done is false).
func (s *Service) writeTombstone(ctx context.Context, tomb *token.Token) (done bool, root *token.Token, err error) {
	unlock := s.locks.lock(tomb.Username)
	defer unlock()
	if root, err = s.get(ctx, tomb.Key); err != nil || root != nil {
		return false, root, err
	}
	now := token.At(s.now())
	if tomb.Expires != 0 && now >= tomb.Expires.Add(token.TombstoneMargin) {
		return true, nil, nil // expired meanwhile, everywhere: nothing to revoke
	}
	tomb.RevokedAt = max(now, tomb.Created)
	if err := tomb.Validate(); err != nil {
		return true, nil, fmt.Errorf("cannot revoke %s: %w", tomb.Key, err)
	}
	_, err = s.propose(ctx, &replica.Command{Op: replica.OpPut, Time: now, Puts: []*token.Token{tomb}})
	return true, nil, err
}

// leaderRevoke revokes spec.Key and its descendants in one log entry.
func (s *Service) leaderRevoke(ctx context.Context, spec *RevokeSpec) ([]*token.Token, error) {
	if spec.Tombstone != nil {
		return s.leaderTombstone(ctx, spec)
	}
	root, err := s.get(ctx, spec.Key)
	if err != nil {
		return nil, err
	}
	if root == nil && s.noStore && spec.Hash == nil {
		// By key alone: a JWT without a record cannot be revoked, for
		// its tombstone must name its exp (revoke it by its text).
		return nil, fmt.Errorf("%w: no record of %s is kept; revoke a JWT by its text", ErrStoreDisabled, spec.Key)
	}
	now := token.At(s.now())
	if root == nil || s.rules.State(root, now, 0) == token.StateUnknown ||
		(spec.Hash != nil && *spec.Hash != root.Hash) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, spec.Key)
	}
	unlock := s.locks.lock(root.Username)
	defer unlock()
	// Re-read under the lock: the record may have changed before we held it.
	if root, err = s.get(ctx, spec.Key); err != nil {
		return nil, err
	}
	if root == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, spec.Key)
	}
	desc, derr := s.descendants(ctx, root.Key)
	if derr != nil {
		// The store cannot list the descendants (it is down). Revoke what
		// is known (the root) now rather than refuse: validation checks a
		// token's ancestors, so every descendant already answers revoked on
		// every node; the caller gets indeterminate and a retry, once the
		// store answers, writes the cascade into every record.
		desc = nil
	}
	if len(desc) > s.cfg.MaxDescendants {
		return nil, fmt.Errorf("%w: %s has more than %d descendants; nothing was revoked", ErrTooManyDescendants, root.Key, s.cfg.MaxDescendants)
	}
	all := append([]*token.Token{root}, desc...)
	var puts []*token.Token
	revoked := make(map[token.Key]*token.Token)
	for _, t := range all {
		if t.RevokedAt != 0 {
			continue // keep the first revocation time
		}
		c := t.Clone()
		c.RevokedAt = now
		puts = append(puts, c)
		revoked[c.Key] = c
	}
	// One log entry revokes the whole tree when it fits (atomic on every
	// node). A huge tree is split: descendants first, the root last, all
	// under the user's lock, so no child can be added meanwhile; a failure
	// part-way answers indeterminate and a retry finishes the job.
	if len(puts) == 0 {
		// Everything was revoked already, perhaps by an attempt whose answer
		// was lost (indeterminate): acknowledge only once every node applied
		// those revocations, as for a first attempt.
		var last uint64
		for _, t := range all {
			last = max(last, t.Index)
		}
		if err := s.repl.WaitApplied(ctx, last); err != nil {
			return nil, fmt.Errorf("%w: revocation at index %d not yet applied everywhere: %w", ErrIndeterminate, last, err)
		}
	}
	for len(puts) > 0 {
		n := min(len(puts), maxPutsPerEntry)
		chunk := puts[len(puts)-n:]
		if _, err := s.propose(ctx, &replica.Command{Op: replica.OpPut, Time: now, Puts: chunk}); err != nil {
			return nil, err
		}
		puts = puts[:len(puts)-n]
	}
	if derr != nil {
		return nil, fmt.Errorf("%w: %s is revoked, but its descendants could not be listed: %w", ErrIndeterminate, root.Key, derr)
	}
	out := make([]*token.Token, len(all))
	for i, t := range all {
		if r, ok := revoked[t.Key]; ok {
			t = r
		}
		out[i] = t
	}
	return out, nil
}

// Modify changes a token's name, scopes or expiry.
func (s *Service) Modify(ctx context.Context, req ModifyRequest) (*token.Token, error) {
	if s.noStore {
		return nil, fmt.Errorf("%w: a JWT states its own name, scopes and expiry", ErrStoreDisabled)
	}
	if req.NoExpire && req.Expires != nil {
		return nil, fmt.Errorf("%w: no_expire cannot be combined with expires", token.ErrInvalid)
	}
	if req.Name != nil {
		if err := token.ValidText("name", *req.Name, token.MaxNameLen, false); err != nil {
			return nil, err
		}
	}
	if req.Scopes != nil {
		if _, err := token.ParseScopes(string(*req.Scopes)); err != nil {
			return nil, err
		}
	}
	res, err := s.write(ctx, &WriteRequest{Modify: &ModifySpec{Request: req}})
	if err != nil {
		return nil, err
	}
	return res.Token, nil
}

// leaderModify applies a modify on the leader.
func (s *Service) leaderModify(ctx context.Context, req *ModifyRequest) (*token.Token, error) {
	cur, err := s.get(ctx, req.Key)
	if err != nil {
		return nil, err
	}
	if cur == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, req.Key)
	}
	unlock := s.locks.lock(cur.Username)
	defer unlock()
	if cur, err = s.get(ctx, req.Key); err != nil {
		return nil, err
	}
	now := token.At(s.now())
	switch st := s.rules.State(cur, now, 0); {
	case cur == nil || st == token.StateUnknown:
		return nil, fmt.Errorf("%w: %s", ErrNotFound, req.Key)
	case st == token.StateRevoked || st == token.StateExpired:
		return nil, fmt.Errorf("%w: the token is %s", ErrTokenNotValid, st)
	}
	next := cur.Clone()
	e := token.Extra{}
	if next.Ext != nil {
		e = *next.Ext
	}
	if req.Name != nil && *req.Name != cur.Name() {
		e.Name = *req.Name
		if e.Name != "" {
			live, err := s.named(ctx, cur.Username, e.Name, now)
			if err != nil {
				return nil, err
			}
			for _, t := range live {
				if t.Key != cur.Key {
					return nil, fmt.Errorf("%w: %q", ErrDuplicateName, e.Name)
				}
			}
		}
	}
	next.SetExtra(e)
	if req.Scopes != nil {
		next.Scopes = *req.Scopes
	}
	switch {
	case req.NoExpire:
		if err := s.checkLifetime("expires", true, 0); err != nil {
			return nil, err
		}
		next.Expires = 0
	case req.Expires != nil:
		exp := token.At(*req.Expires)
		if exp <= now {
			return nil, fmt.Errorf("%w: expires must be in the future", token.ErrInvalid)
		}
		if err := s.checkLifetime("expires", false, exp.Time().Sub(now.Time())); err != nil {
			return nil, err
		}
		next.Expires = exp
	}
	if p := next.Parent(); !p.IsZero() {
		// Judged against the parent as it stands under its own ancestors.
		// A child already narrowed by its ancestors at validation may keep
		// its record as it is; a modify may only ask for what they allow.
		parent, err := s.get(ctx, p)
		if err != nil {
			return nil, err
		}
		if parent != nil {
			eff, pst, err := s.effective(ctx, parent, now)
			if err != nil {
				return nil, s.storeErr(err)
			}
			if pst != token.StateValid {
				return nil, fmt.Errorf("%w: its parent is %s", ErrTokenNotValid, pst)
			}
			if req.Scopes != nil && !eff.Scopes.Contains(next.Scopes) {
				return nil, fmt.Errorf("%w: a child token cannot have scopes its parent lacks", token.ErrInvalid)
			}
			if (req.NoExpire || req.Expires != nil) && eff.Expires != 0 && (next.Expires == 0 || next.Expires > eff.Expires) {
				return nil, fmt.Errorf("%w: a child token cannot outlive its parent", token.ErrInvalid)
			}
		}
	}
	if err := next.Validate(); err != nil {
		return nil, err
	}
	if _, err := s.propose(ctx, &replica.Command{Op: replica.OpPut, Time: now, Puts: []*token.Token{next}}); err != nil {
		return nil, err
	}
	return next, nil
}
