package tokens

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tokencache/tokencache/replica"
	"github.com/tokencache/tokencache/token"
)

// MaxIdempotencyKeyLen bounds the Idempotency-Key header: the bound of the
// log command that carries it (replica.MaxIdempotencyKeyLen).
const MaxIdempotencyKeyLen = replica.MaxIdempotencyKeyLen

// Issue mints a token. It runs on the node that received the request: the
// secret is generated and kept here, and only its hash goes to the leader.
func (s *Service) Issue(ctx context.Context, req IssueRequest) (Issued, error) {
	if s.noStore {
		return s.issueUnstored(req)
	}
	if err := s.checkIssue(&req); err != nil {
		return Issued{}, err
	}
	codec, _ := s.formats.Codec(req.Format) // checkIssue made sure
	key := token.NewKey()
	secret, hash := codec.Mint(key)
	if req.IdempotencyKey != "" {
		e := s.memo.remember(req.IdempotencyKey, memoEntry{
			fingerprint: fingerprint(req), key: key, secret: secret, at: s.now(),
		})
		if e.fingerprint != fingerprint(req) {
			return Issued{}, fmt.Errorf("%w: the key was used for a different request", ErrIdempotencyConflict)
		}
		if e.key != key {
			key, secret = e.key, e.secret
			hash = codec.Sum(token.Presented{Key: key, Secret: []byte(secret)})
		}
	}
	spec := &IssueSpec{Request: req, Key: key, Hash: hash}
	spec.Request.Credentials = nil
	res, err := s.write(ctx, &WriteRequest{Issue: spec})
	if err != nil {
		if req.IdempotencyKey != "" && notApplied(err) {
			// Refused before it reached the log: the request did not
			// run, so its key stays free for a corrected request
			// (as Stripe and the IETF Idempotency-Key draft do). An
			// outcome that may have happened keeps the key.
			s.memo.forget(req.IdempotencyKey, key)
		}
		return Issued{}, err
	}
	if res.Token.Key != key {
		// An earlier attempt with this Idempotency-Key minted another token,
		// through a node that no longer remembers its secret.
		return Issued{}, fmt.Errorf("%w: token %s was issued for this key earlier and its secret cannot be shown again", ErrIdempotencyConflict, res.Token.Key)
	}
	text, err := codec.Encode(res.Token, secret)
	if err != nil {
		return Issued{}, fmt.Errorf("cannot encode token %s: %w", key, err)
	}
	return Issued{Token: text, Record: res.Token, Reused: res.Reused}, nil
}

// issueUnstored issues a token while the store is disabled: only a
// self-contained format (a JWT) can be, and it is signed on this node
// without any write, since there is nothing to store it in (its record has
// no log index). What needs a record is refused: an opaque token, a parent,
// a name (its uniqueness is checked against the stored tokens), an
// Idempotency-Key (the replicated table of keys lives with the records).
func (s *Service) issueUnstored(req IssueRequest) (Issued, error) {
	if s.stopping.Load() {
		return Issued{}, ErrShuttingDown
	}
	if err := s.checkIssue(&req); err != nil {
		return Issued{}, err
	}
	switch {
	case req.Format.HasSecret():
		return Issued{}, fmt.Errorf("%w: a %s token needs a stored record; issue a jwt", ErrStoreDisabled, req.Format)
	case !req.Parent.IsZero():
		return Issued{}, fmt.Errorf("%w: a child token needs its parent's record", ErrStoreDisabled)
	case req.Name != "":
		return Issued{}, fmt.Errorf("%w: a token name is unique among stored tokens", ErrStoreDisabled)
	case req.IdempotencyKey != "":
		return Issued{}, fmt.Errorf("%w: an Idempotency-Key is remembered with stored tokens", ErrStoreDisabled)
	}
	codec, _ := s.formats.Codec(req.Format) // checkIssue made sure
	key := token.NewKey()
	secret, hash := codec.Mint(key)
	rec := s.newRecord(&req, key, hash, token.At(s.now()))
	if err := rec.Validate(); err != nil {
		return Issued{}, err
	}
	text, err := codec.Encode(rec, secret)
	if err != nil {
		return Issued{}, fmt.Errorf("cannot encode token %s: %w", key, err)
	}
	return Issued{Token: text, Record: rec}, nil
}

// AudienceChecker is implemented by a codec whose tokens name an audience
// (the JWT codec): CheckAudience judges the space-separated audience an
// issue asks for against the configured allow-list (tokens.jwt.audiences),
// and answers an error wrapping token.ErrInvalid for a value it does not
// allow. The service asks it in checkIssue, on the receiving node and again
// on the leader; a codec without it accepts any audience.
type AudienceChecker interface {
	CheckAudience(audience string) error
}

// MintChecker is implemented by a codec that may be unable to mint tokens:
// a JWT codec without signing keys (a validate-only node, which has
// tokens.jwt.trusted and no tokens.jwt.keys_file). CheckMint answers why
// (jwt.ErrNoSigningKey, an invalid request) or nil. The service asks it in
// checkIssue, before anything is written, so that an issue the node could
// not encode leaves no record; a codec without it always mints.
type MintChecker interface {
	CheckMint() error
}

// LifetimeCeiling bounds every lifetime the service grants, whatever
// tokens.max_lifetime says (100 years): beyond it "never" (no_expire) is what
// the caller means, and an expiry stays far from the end of token.Time
// (2262). It is the one place this bound lives: the HTTP API only refuses
// what token.Time cannot hold.
const LifetimeCeiling = 100 * 365 * 24 * time.Hour

// checkLifetime applies tokens.max_lifetime (and LifetimeCeiling) to a
// lifetime asked for (zero: none asked) or to never expiring; field names the
// lifetime in the message. While the setting is in force no token may
// outlive it, on every path (issue, delegation, modify), so a token that
// never expires is refused rather than silently given an expiry its holder
// did not ask for (a child is bounded by its parent's expiry, and a default
// lifetime by tokens.expiry, which start-up keeps within the limit).
func (s *Service) checkLifetime(field string, noExpire bool, life time.Duration) error {
	limit := s.cfg.MaxLifetime
	if noExpire {
		if limit == NoMaxLifetime {
			return nil
		}
		return fmt.Errorf("%w: no_expire is refused: no token may outlive tokens.max_lifetime (%s); ask for an expiry within it, or set tokens.max_lifetime to -1 to allow tokens that never expire",
			token.ErrInvalid, limit)
	}
	if limit != NoMaxLifetime && limit < LifetimeCeiling && life > limit {
		return fmt.Errorf("%w: %s is longer than tokens.max_lifetime (%s)", token.ErrInvalid, field, limit)
	}
	if life > LifetimeCeiling {
		return fmt.Errorf("%w: %s must be at most 100 years (%d seconds) from now; use no_expire for tokens that never expire",
			token.ErrInvalid, field, int64(LifetimeCeiling/time.Second))
	}
	return nil
}

// checkIssue validates and normalises an issue request; it changes nothing.
func (s *Service) checkIssue(req *IssueRequest) error {
	if err := token.ValidUsername(req.Username); err != nil {
		return err
	}
	if req.Realm == "" {
		req.Realm = token.DefaultRealm
	}
	if req.Type == token.TypeUnknown {
		req.Type = token.TypeUser
	}
	if req.ExpiresIn < 0 {
		return fmt.Errorf("%w: expires_in must not be negative", token.ErrInvalid)
	}
	if req.NoExpire && req.ExpiresIn != 0 {
		return fmt.Errorf("%w: no_expire cannot be combined with expires_in", token.ErrInvalid)
	}
	if err := s.checkLifetime("expires_in", req.NoExpire, req.ExpiresIn); err != nil {
		return err
	}
	if len(req.Credentials) > 0 {
		return fmt.Errorf("%w: storing credentials on a token is not supported by this version", token.ErrInvalid)
	}
	codec, ok := s.formats.Codec(req.Format)
	if !ok {
		// Opaque is always accepted: a missing format is jwt, which is
		// accepted once signing keys are configured.
		return fmt.Errorf("%w: format %s needs a signing key, which is not configured", token.ErrInvalid, req.Format)
	}
	if mc, ok := codec.(MintChecker); ok {
		if err := mc.CheckMint(); err != nil {
			return err
		}
	}
	if req.Format == token.FormatJWT && req.NoExpire {
		return fmt.Errorf("%w: a jwt needs an expiry (no_expire is for opaque tokens)", token.ErrInvalid)
	}
	if req.Audience != "" {
		if req.Format != token.FormatJWT {
			return fmt.Errorf("%w: audience is only for jwt tokens", token.ErrInvalid)
		}
		req.Audience = strings.Join(strings.Fields(req.Audience), " ")
		if ac, ok := codec.(AudienceChecker); ok {
			if err := ac.CheckAudience(req.Audience); err != nil {
				return err
			}
		}
	}
	if len(req.IdempotencyKey) > MaxIdempotencyKeyLen {
		return fmt.Errorf("%w: Idempotency-Key is longer than %d bytes", token.ErrInvalid, MaxIdempotencyKeyLen)
	}
	if (req.Type == token.TypeInternal || req.Type == token.TypeNotebook) && req.Parent.IsZero() {
		return fmt.Errorf("%w: %s tokens need a parent (use the delegation endpoints)", token.ErrInvalid, req.Type)
	}
	// Validate every field through the record it would become.
	probe := s.newRecord(req, token.Key{1}, token.Hash{1}, token.At(s.now()))
	return probe.Validate()
}

// newRecord builds the record of an issue at now.
func (s *Service) newRecord(req *IssueRequest, k token.Key, h token.Hash, now token.Time) *token.Token {
	t := &token.Token{
		Key:      k,
		Hash:     h,
		Created:  now,
		Username: req.Username,
		Realm:    req.Realm,
		UID:      req.UID,
		HasUID:   req.HasUID,
		Scopes:   req.Scopes,
		Format:   req.Format,
		Type:     req.Type,
	}
	switch {
	case req.NoExpire:
	case req.ExpiresIn > 0:
		t.Expires = now.Add(req.ExpiresIn)
	default:
		t.Expires = now.Add(s.rules.Expiry)
	}
	t.SetExtra(token.Extra{Name: req.Name, Service: req.Service, ClientID: req.ClientID, Parent: req.Parent, Audience: req.Audience})
	return t
}

// leaderIssue runs an issue on the leader.
func (s *Service) leaderIssue(ctx context.Context, spec *IssueSpec) (*token.Token, bool, error) {
	req := spec.Request
	if err := s.checkIssue(&req); err != nil {
		return nil, false, err
	}
	if spec.Key.IsZero() || (spec.Hash.IsZero() && req.Format.HasSecret()) {
		return nil, false, fmt.Errorf("%w: issue without key or hash", token.ErrInvalid)
	}
	unlock := s.locks.lock(req.Username)
	defer unlock()

	if req.IdempotencyKey != "" {
		if prev, ok := s.state.IdempotencyKey(req.IdempotencyKey); ok {
			t, err := s.get(ctx, prev)
			if err != nil {
				return nil, false, err
			}
			if t == nil {
				return nil, false, fmt.Errorf("%w: the token issued for this key is gone", ErrIdempotencyConflict)
			}
			return t, true, nil
		}
	}
	now := token.At(s.now())
	rec := s.newRecord(&req, spec.Key, spec.Hash, now)
	if len(spec.CredentialsSealed) > 0 {
		e := *rec.Ext
		e.Credentials = spec.CredentialsSealed
		rec.SetExtra(e)
	}
	if !req.Parent.IsZero() {
		parent, err := s.get(ctx, req.Parent)
		if err != nil {
			return nil, false, err
		}
		if err := s.checkChild(ctx, rec, parent, now); err != nil {
			return nil, false, err
		}
	}
	if name := req.Name; name != "" {
		live, err := s.named(ctx, req.Username, name, now)
		if err != nil {
			return nil, false, err
		}
		if len(live) > 0 {
			return nil, false, fmt.Errorf("%w: %q", ErrDuplicateName, name)
		}
	}
	a, err := s.propose(ctx, &replica.Command{Op: replica.OpPut, Time: now, Puts: []*token.Token{rec}, IdempotencyKey: req.IdempotencyKey})
	if err != nil {
		return nil, false, err
	}
	if a.Done && a.Result.Replayed {
		t, err := s.get(ctx, a.Result.Existing)
		if err != nil || t == nil {
			return nil, false, fmt.Errorf("%w: the token issued for this key is gone", ErrIdempotencyConflict)
		}
		return t, true, nil
	}
	return rec, false, nil
}

// checkChild applies the rules of a child token to rec under parent (nil when
// the parent does not exist): same user, parent valid as it stands under its
// own ancestors, scopes within its effective scopes, expiry clamped to its
// effective expiry, and no deeper than validation walks (maxAncestry).
func (s *Service) checkChild(ctx context.Context, rec, parent *token.Token, now token.Time) error {
	if parent == nil {
		return fmt.Errorf("%w: %s", ErrParentNotFound, rec.Parent())
	}
	eff, st, err := s.effective(ctx, parent, now)
	if err != nil {
		return s.storeErr(err)
	}
	if st != token.StateValid {
		if st == token.StateUnknown {
			return fmt.Errorf("%w: %s", ErrParentNotFound, parent.Key)
		}
		return fmt.Errorf("%w: parent is %s", ErrParentNotValid, st)
	}
	if parent.Username != rec.Username {
		return fmt.Errorf("%w: a child token belongs to its parent's user %q", token.ErrInvalid, parent.Username)
	}
	if !eff.Scopes.Contains(rec.Scopes) {
		return fmt.Errorf("%w: a child token cannot have scopes its parent lacks", token.ErrInvalid)
	}
	if eff.Expires != 0 && (rec.Expires == 0 || rec.Expires > eff.Expires) {
		rec.Expires = eff.Expires
	}
	depth := 1
	for p := parent.Parent(); !p.IsZero(); depth++ {
		if depth >= maxAncestry {
			return fmt.Errorf("%w: a token can have at most %d ancestors", token.ErrInvalid, maxAncestry)
		}
		a, err := s.get(ctx, p)
		if err != nil {
			return err
		}
		if a == nil {
			break
		}
		p = a.Parent()
	}
	return nil
}

// notApplied reports whether a write failed with an error that says it was
// judged and refused, or never reached the leader, so that it changed
// nothing: a bad request, a name or parent conflict, a full write queue, no
// leader. An indeterminate outcome, a deadline or an error this list does
// not name may have been applied.
func notApplied(err error) bool {
	if errIs(err, ErrIndeterminate) {
		return false
	}
	return errIs(err, token.ErrInvalid, token.ErrMalformed, ErrNotFound, ErrParentNotFound,
		ErrParentNotValid, ErrTokenNotValid, ErrDuplicateName, ErrOverloaded, ErrNoLeader)
}

// fingerprint identifies the content of an issue request (for the
// idempotency memo).
func fingerprint(req IssueRequest) string {
	req.IdempotencyKey = ""
	b, _ := json.Marshal(req)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Delegate hands out a delegated child of the parent token: an existing one
// when it fits (token.Rules.Reusable), else a new one. Like Issue, it runs on
// the receiving node, which keeps every secret.
func (s *Service) Delegate(ctx context.Context, req DelegateRequest) (Issued, error) {
	if s.noStore {
		return Issued{}, fmt.Errorf("%w: a delegated token needs its parent's record", ErrStoreDisabled)
	}
	d := req.Delegation
	if d.Type != token.TypeInternal && d.Type != token.TypeNotebook {
		return Issued{}, fmt.Errorf("%w: delegation type must be internal or notebook", token.ErrInvalid)
	}
	if d.Type == token.TypeInternal {
		if err := token.ValidText("service", d.Service, token.MaxServiceLen, true); err != nil {
			return Issued{}, err
		}
	}
	if req.ExpiresIn < 0 {
		return Issued{}, fmt.Errorf("%w: expires_in must not be negative", token.ErrInvalid)
	}
	if err := s.checkLifetime("expires_in", false, req.ExpiresIn); err != nil {
		return Issued{}, err
	}
	pcodec, pp, err := s.formats.Parse([]byte(req.ParentToken))
	if err != nil {
		return Issued{}, fmt.Errorf("%w: parent_token: %w", token.ErrInvalid, err)
	}
	if len(pp.Secret) == 0 {
		// A child's secret is sealed under its parent's (so that any node
		// can hand a reused child out again): a parent needs a secret.
		return Issued{}, fmt.Errorf("%w: parent_token: a %s token cannot have delegated children", token.ErrInvalid, pcodec.Format())
	}
	pk, psecret := pp.Key, pp.Secret
	parent, err := s.get(ctx, pk)
	if err != nil {
		return Issued{}, err
	}
	if parent == nil || !pcodec.Verify(pp, parent) {
		return Issued{}, fmt.Errorf("%w: %s", ErrParentNotFound, pk)
	}
	key := token.NewKey()
	secret, hash := s.opaque.Mint(key)
	sealed, err := token.SealSecret(psecret, key, secret)
	if err != nil {
		return Issued{}, err
	}
	spec := &DelegateSpec{
		Parent: pk, ParentHash: parent.Hash, Delegation: d,
		Key: key, Hash: hash, Sealed: sealed,
	}
	if req.ExpiresIn > 0 {
		spec.Expires = token.At(s.now()).Add(req.ExpiresIn)
	}
	res, err := s.write(ctx, &WriteRequest{Delegate: spec})
	if err != nil {
		return Issued{}, err
	}
	child := res.Token
	if child.Key != key {
		if child.Ext == nil || len(child.Ext.Sealed) == 0 {
			return Issued{}, fmt.Errorf("delegated child %s has no sealed secret", child.Key)
		}
		secret, err = token.OpenSecret(psecret, child.Key, child.Ext.Sealed)
		if err != nil {
			return Issued{}, fmt.Errorf("cannot open the secret of delegated child %s: %w", child.Key, err)
		}
	}
	text, err := s.opaque.Encode(child, secret)
	if err != nil {
		return Issued{}, fmt.Errorf("cannot encode delegated child %s: %w", child.Key, err)
	}
	return Issued{Token: text, Record: child, Reused: res.Reused}, nil
}

// leaderDelegate finds a reusable child or mints the one in spec. The parent
// is judged as it stands under its own ancestors (effective), and read again
// under its user's lock, so that a modify of the parent cannot slip between
// the check and the write.
func (s *Service) leaderDelegate(ctx context.Context, spec *DelegateSpec) (*token.Token, bool, error) {
	parent, err := s.get(ctx, spec.Parent)
	if err != nil {
		return nil, false, err
	}
	if parent == nil || parent.Hash != spec.ParentHash {
		return nil, false, fmt.Errorf("%w: %s", ErrParentNotFound, spec.Parent)
	}
	unlock := s.locks.lock(parent.Username)
	defer unlock()
	if parent, err = s.get(ctx, spec.Parent); err != nil {
		return nil, false, err
	}
	if parent == nil || parent.Hash != spec.ParentHash {
		return nil, false, fmt.Errorf("%w: %s", ErrParentNotFound, spec.Parent)
	}
	now := token.At(s.now())
	eff, st, err := s.effective(ctx, parent, now)
	if err != nil {
		return nil, false, s.storeErr(err)
	}
	switch st {
	case token.StateValid:
	case token.StateUnknown:
		return nil, false, fmt.Errorf("%w: %s", ErrParentNotFound, spec.Parent)
	default:
		return nil, false, fmt.Errorf("%w: parent is %s", ErrParentNotValid, st)
	}
	d := spec.Delegation
	if d.Type == token.TypeNotebook {
		d.Scopes = eff.Scopes
	}
	if !eff.Scopes.Contains(d.Scopes) {
		// Checked before reuse too: a child minted before the parent lost
		// a scope must not be handed out for it.
		return nil, false, fmt.Errorf("%w: a child token cannot have scopes its parent lacks", token.ErrInvalid)
	}
	kids, err := s.children(ctx, []token.Key{parent.Key})
	if err != nil {
		return nil, false, err
	}
	for _, k := range kids {
		if eff.Expires != 0 && (k.Expires == 0 || k.Expires > eff.Expires) {
			c := *k // as it stands under its parent (lineage)
			c.Expires = eff.Expires
			k = &c
		}
		if s.rules.Reusable(k, eff, d, now) {
			return k, true, nil
		}
	}
	req := IssueRequest{
		Username: parent.Username, Realm: parent.Realm, UID: parent.UID, HasUID: parent.HasUID,
		Type: d.Type, Scopes: d.Scopes, Parent: parent.Key, Service: d.Service,
	}
	if spec.Expires != 0 {
		req.ExpiresIn = time.Duration(spec.Expires - now)
	}
	rec := s.newRecord(&req, spec.Key, spec.Hash, now)
	if spec.Expires == 0 && eff.Expires != 0 {
		rec.Expires = eff.Expires // a child lives as long as its parent by default
	}
	e := *rec.Ext
	e.Sealed = spec.Sealed
	rec.SetExtra(e)
	if err := s.checkChild(ctx, rec, parent, now); err != nil {
		return nil, false, err
	}
	if err := rec.Validate(); err != nil {
		return nil, false, err
	}
	if _, err := s.propose(ctx, &replica.Command{Op: replica.OpPut, Time: now, Puts: []*token.Token{rec}}); err != nil {
		return nil, false, err
	}
	return rec, false, nil
}
