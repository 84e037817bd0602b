package tokens

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokencache/tokencache/internal/errcode"
	"github.com/tokencache/tokencache/internal/jwttest"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/token/jwt"
)

// jwtNode is a node that accepts opaque tokens and JWTs (the local issuer
// and the external provider of jwttest), over store (nil: memory).
func jwtNode(t testing.TB, store persist.Store) (*testNode, *jwttest.Setup) {
	t.Helper()
	clock := newClock()
	js := jwttest.New(t, clock.Now)
	formats, err := token.NewFormats(token.NewOpaque("tc", token.NewHasher(nil)), js.Codec)
	if err != nil {
		t.Fatal(err)
	}
	return newNode(t, nodeOpts{formats: formats, store: store, clock: clock}), js
}

// TestJWTIssueCarriesAudience: a JWT is issued through the ordinary path
// (its record written and stored, audience included), the audience is
// judged by the codec's allow-list, and what a JWT cannot be is refused.
func TestJWTIssueCarriesAudience(t *testing.T) {
	n, js := jwtNode(t, nil)
	ctx := context.Background()
	iss := n.issue(t, IssueRequest{Format: token.FormatJWT, Audience: " billing  api ", Scopes: "read"})
	if iss.Record.Format != token.FormatJWT || iss.Record.Audience() != "billing api" || iss.Record.Index == 0 {
		t.Fatalf("Issue(jwt) record = %+v, want a written JWT record with audience %q", iss.Record, "billing api")
	}
	stored, err := n.store.Get(ctx, iss.Record.Key)
	if err != nil || stored.Audience() != "billing api" {
		t.Fatalf("store.Get(jwt) = %+v, %v; want the record with its audience", stored, err)
	}
	v := n.svc.Validate(ctx, []byte(iss.Token))
	if v.State != token.StateValid || v.Token.Audience() != "billing api" {
		t.Fatalf("Validate(jwt) = %v %+v", v.State, v.Token)
	}
	for name, req := range map[string]IssueRequest{
		"audience not allowed": {Username: "alice", Format: token.FormatJWT, Audience: "evil"},
		"audience on opaque":   {Username: "alice", Audience: "api"},
		"jwt without expiry":   {Username: "alice", Format: token.FormatJWT, NoExpire: true},
	} {
		if _, err := n.svc.Issue(ctx, req); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("Issue(%s) = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := n.svc.Delegate(ctx, DelegateRequest{ParentToken: iss.Token,
		Delegation: token.Delegation{Type: token.TypeNotebook}}); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("Delegate(jwt parent) = %v, want ErrInvalid", err)
	}
	// A local JWT is judged by its record while the store is on: one whose
	// record does not exist (here: never written) is unknown.
	ghost := *iss.Record
	ghost.Key = token.NewKey()
	text, err := js.Codec.Encode(&ghost, "")
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, n, text, token.StateUnknown)
}

// TestExternalJWTRevokedByTombstone: a trusted issuer's token has no record
// here and is judged by its claims; revoking it by its text writes a
// tombstone (through the log and into the store) that every later
// validation finds, twice is harmless, and the tombstone outlives retention
// until the token's own exp.
func TestExternalJWTRevokedByTombstone(t *testing.T) {
	n, js := jwtNode(t, nil)
	ctx := context.Background()
	now := n.clock.Now()
	text, key := js.ExternalToken(t, "erin", now, now.Add(72*time.Hour))
	other, _ := js.ExternalToken(t, "erin", now, now.Add(72*time.Hour))
	v := n.svc.Validate(ctx, []byte(text))
	if v.State != token.StateValid || v.Token.Username != "erin" || v.Token.Key != key {
		t.Fatalf("Validate(external) = %v %+v, want valid for erin under %s", v.State, v.Token, key)
	}
	if _, err := n.store.Get(ctx, key); !errors.Is(err, persist.ErrNotFound) {
		t.Fatalf("store.Get(external) = %v, want no record", err)
	}

	if err := n.svc.RevokeToken(ctx, []byte(text)); err != nil {
		t.Fatalf("RevokeToken(external) = %v", err)
	}
	wantState(t, n, text, token.StateRevoked)
	wantState(t, n, other, token.StateValid)
	tomb, err := n.store.Get(ctx, key)
	if err != nil || !tomb.IsTombstone() || tomb.Username != "erin" || tomb.Expires != token.At(now.Add(72*time.Hour)) {
		t.Fatalf("store.Get(revoked external) = %+v, %v; want erin's tombstone expiring with the token", tomb, err)
	}
	if err := n.svc.RevokeToken(ctx, []byte(text)); err != nil {
		t.Fatalf("RevokeToken(external) again = %v", err)
	}
	if again, _ := n.store.Get(ctx, key); again == nil || again.Index != tomb.Index {
		t.Errorf("a second revocation rewrote the tombstone (index %d, was %d)", again.Index, tomb.Index)
	}

	// Past revoked_at + retention's grace (23h), before the token's exp:
	// the tombstone is not past retention, so purge keeps it.
	n.clock.Advance(30 * time.Hour)
	if _, err := n.svc.Purge(ctx, false); err != nil {
		t.Fatal(err)
	}
	wantState(t, n, text, token.StateRevoked)
	// Past exp + grace it goes, like any record.
	n.clock.Advance(72 * time.Hour)
	if gone, err := n.svc.Purge(ctx, false); err != nil || len(gone) != 1 || gone[0].Key != key {
		t.Fatalf("Purge past exp + grace = %d records, %v; want the tombstone", len(gone), err)
	}
}

// TestStoreNone: with persist.store none a JWT is signed without any
// write, validated by its claims, revoked by a tombstone (the only row the
// store holds, carried by snapshots), and every operation that needs a
// stored record answers ErrStoreDisabled.
func TestStoreNone(t *testing.T) {
	n, js := jwtNode(t, persist.NewNone())
	ctx := context.Background()
	if !n.svc.StoreDisabled() {
		t.Fatal("StoreDisabled() = false with persist.store none")
	}
	before := n.state.AppliedIndex()
	iss := n.issue(t, IssueRequest{Format: token.FormatJWT, Audience: "api", Scopes: "read"})
	if n.state.AppliedIndex() != before || iss.Record.Index != 0 {
		t.Fatalf("Issue(jwt) with store none wrote to the log (applied %d → %d, index %d)", before, n.state.AppliedIndex(), iss.Record.Index)
	}
	v := n.svc.Validate(ctx, []byte(iss.Token))
	if v.State != token.StateValid || v.Token.Username != "alice" || v.Token.Scopes != "read" {
		t.Fatalf("Validate(jwt) = %v %+v, want valid for alice", v.State, v.Token)
	}
	now := n.clock.Now()
	ext, extKey := js.ExternalToken(t, "erin", now, now.Add(time.Hour))
	wantState(t, n, ext, token.StateValid)

	disabled := map[string]error{}
	_, disabled["issue opaque"] = n.svc.Issue(ctx, IssueRequest{Username: "alice", Type: token.TypeUser})
	_, disabled["issue named jwt"] = n.svc.Issue(ctx, IssueRequest{Username: "alice", Type: token.TypeUser, Format: token.FormatJWT, Name: "x"})
	_, disabled["issue jwt with Idempotency-Key"] = n.svc.Issue(ctx, IssueRequest{Username: "alice", Type: token.TypeUser, Format: token.FormatJWT, IdempotencyKey: "k"})
	_, disabled["list"] = n.svc.List(ctx, ListQuery{Username: "alice"})
	_, disabled["children"] = n.svc.Children(ctx, iss.Record.Key)
	_, disabled["orphaned"] = n.svc.Orphaned(ctx)
	_, _, disabled["info"] = n.svc.Info(ctx, iss.Record.Key)
	name := "n"
	_, disabled["modify"] = n.svc.Modify(ctx, ModifyRequest{Key: iss.Record.Key, Name: &name})
	_, disabled["revoke by key"] = n.svc.Revoke(ctx, iss.Record.Key)
	_, disabled["delegate"] = n.svc.Delegate(ctx, DelegateRequest{ParentToken: iss.Token, Delegation: token.Delegation{Type: token.TypeNotebook}})
	for op, err := range disabled {
		if !errors.Is(err, ErrStoreDisabled) || errcode.Of(err) != errcode.StoreDisabled {
			t.Errorf("%s with store none = %v, want ErrStoreDisabled", op, err)
		}
	}

	for _, text := range []string{iss.Token, ext} {
		if err := n.svc.RevokeToken(ctx, []byte(text)); err != nil {
			t.Fatalf("RevokeToken = %v", err)
		}
		wantState(t, n, text, token.StateRevoked)
	}
	if rec, st, err := n.svc.Info(ctx, iss.Record.Key); err != nil || st != token.StateRevoked || !rec.IsTombstone() {
		t.Fatalf("Info(revoked jwt) = %+v, %v, %v; want its tombstone, revoked", rec, st, err)
	}
	if keys, err := n.svc.Revoke(ctx, extKey); err != nil || len(keys) != 1 {
		t.Fatalf("Revoke(key of a tombstone) = %v, %v; want it, already revoked", keys, err)
	}
	rows := 0
	if err := n.store.Scan(ctx, func(t *token.Token) error { rows++; return nil }); err != nil || rows != 2 {
		t.Fatalf("store none holds %d rows (%v), want the 2 tombstones", rows, err)
	}

	// A node restored from this node's snapshot answers revoked too.
	var snap bytesBuffer
	if err := n.state.Snapshot().WriteTo(ctx, &snap); err != nil {
		t.Fatal(err)
	}
	formats, _ := token.NewFormats(token.NewOpaque("tc", token.NewHasher(nil)), js.Codec)
	m := newNode(t, nodeOpts{formats: formats, store: persist.NewNone(), clock: n.clock})
	if err := m.state.Restore(ctx, snap.reader()); err != nil {
		t.Fatal(err)
	}
	wantState(t, m, iss.Token, token.StateRevoked)
	wantState(t, m, ext, token.StateRevoked)
}

// TestSelfContainedValidateAllocs: validating a seen JWT that has no record
// (store none; an external token with the store on) allocates nothing,
// like an opaque cache hit, valid or revoked.
func TestSelfContainedValidateAllocs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func() persist.Store
	}{
		{"store none", func() persist.Store { return persist.NewNone() }},
		{"store memory", func() persist.Store { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, js := jwtNode(t, tc.store())
			ctx := context.Background()
			now := n.clock.Now()
			valid, _ := js.ExternalToken(t, "erin", now, now.Add(time.Hour))
			revoked, _ := js.ExternalToken(t, "erin", now, now.Add(time.Hour))
			if err := n.svc.RevokeToken(ctx, []byte(revoked)); err != nil {
				t.Fatal(err)
			}
			for text, want := range map[string]token.State{valid: token.StateValid, revoked: token.StateRevoked} {
				raw := []byte(text)
				wantState(t, n, text, want)
				if allocs := testing.AllocsPerRun(1000, func() { n.svc.Validate(ctx, raw) }); allocs != 0 {
					t.Errorf("Validate(seen %v JWT) allocates %v times, want 0", want, allocs)
				}
			}
		})
	}
}

// TestExpiredJWTAnswersExpired: a JWT whose signature verifies and whose exp
// has passed answers expired, as an expired opaque token does (its own text
// proves it, with or without a record); the same token with its signature
// changed stays malformed: expiry is judged only on a verified token.
func TestExpiredJWTAnswersExpired(t *testing.T) {
	n, js := jwtNode(t, nil)
	now := n.clock.Now()
	local := n.issue(t, IssueRequest{Format: token.FormatJWT, Scopes: "read", ExpiresIn: time.Hour})
	ext, _ := js.ExternalToken(t, "erin", now, now.Add(time.Hour))
	wantState(t, n, local.Token, token.StateValid)
	wantState(t, n, ext, token.StateValid)
	n.clock.Advance(2 * time.Hour)
	for name, text := range map[string]string{"local": local.Token, "external": ext} {
		if v := n.svc.Validate(context.Background(), []byte(text)); v.State != token.StateExpired {
			t.Errorf("Validate(%s, past exp) = %v, want expired", name, v.State)
		}
		forged := []byte(text)
		if i := len(forged) - 2; forged[i] == 'A' { // a signature byte, still base64url
			forged[i] = 'B'
		} else {
			forged[i] = 'A'
		}
		if v := n.svc.Validate(context.Background(), forged); v.State != token.StateMalformed {
			t.Errorf("Validate(%s, past exp, forged signature) = %v, want malformed", name, v.State)
		}
	}
}

// TestStoreNoneLeaderRefusesStoredWrites: a write of a stored token that
// reaches a store-less leader anyway (forwarded by a node that stores
// tokens) is refused before it enters the log, so the store, which could
// never hold it, is not left retrying it and later revocations still land.
func TestStoreNoneLeaderRefusesStoredWrites(t *testing.T) {
	n, js := jwtNode(t, persist.NewNone())
	ctx := context.Background()
	before := n.state.AppliedIndex()
	for name, w := range map[string]*WriteRequest{
		"issue":  {Issue: &IssueSpec{Request: IssueRequest{Username: "alice", Scopes: "read"}, Key: token.NewKey(), Hash: token.Hash{1}}},
		"modify": {Modify: &ModifySpec{Request: ModifyRequest{Key: token.NewKey()}}},
	} {
		if _, err := n.svc.LeaderWrite(ctx, w); !errors.Is(err, ErrStoreDisabled) {
			t.Errorf("LeaderWrite(%s) on a store-less leader = %v, want ErrStoreDisabled", name, err)
		}
	}
	if got := n.state.AppliedIndex(); got != before {
		t.Fatalf("applied index moved %d → %d: a refused write entered the log", before, got)
	}
	now := n.clock.Now()
	text, _ := js.ExternalToken(t, "erin", now, now.Add(time.Hour))
	if err := n.svc.RevokeToken(ctx, []byte(text)); err != nil {
		t.Fatalf("RevokeToken after the refused writes = %v", err)
	}
	wantState(t, n, text, token.StateRevoked)
}

// TestTombstoneOutlivesExpByMargin: a node whose clock is behind the
// leader's still accepts a JWT a little past its exp (by its own clock, and
// within its leeway), so a tombstone is kept until token.TombstoneMargin
// after exp, even by a purge of everything expired.
func TestTombstoneOutlivesExpByMargin(t *testing.T) {
	n, js := jwtNode(t, persist.NewNone())
	ctx := context.Background()
	now := n.clock.Now()
	revoked, key := js.ExternalToken(t, "erin", now, now.Add(time.Hour))
	if err := n.svc.RevokeToken(ctx, []byte(revoked)); err != nil {
		t.Fatal(err)
	}
	n.clock.Advance(time.Hour + time.Second) // 1 s past exp on this node
	if _, err := n.svc.Purge(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := n.store.Get(ctx, key); err != nil {
		t.Errorf("tombstone 1 s past exp after Purge(include_expired) = %v, want kept for the margin", err)
	}
	n.clock.Advance(token.TombstoneMargin)
	if gone, err := n.svc.Purge(ctx, true); err != nil || len(gone) != 1 || gone[0].Key != key {
		t.Errorf("Purge(include_expired) past exp + margin = %d, %v; want the tombstone", len(gone), err)
	}
}

// TestVerifyOnlyNodeRefusesJWTIssue: on a node whose JWT codec has no
// signing key (tokens.jwt.trusted without tokens.jwt.keys_file), an issue
// of a JWT is refused before anything is written (no log entry, no record,
// no Idempotency-Key taken) with jwt.ErrNoSigningKey, an invalid request;
// the trusted provider's tokens validate and are revoked by their text, with
// the store on or off.
func TestVerifyOnlyNodeRefusesJWTIssue(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) persist.Store
	}{
		{"store memory", func(t *testing.T) persist.Store { return openMemory(t) }},
		{"store none", func(*testing.T) persist.Store { return persist.NewNone() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			js := jwttest.New(t, clock.Now)
			formats, err := token.NewFormats(token.NewOpaque("tc", token.NewHasher(nil)), js.NewVerifyOnly(t))
			if err != nil {
				t.Fatal(err)
			}
			store := tc.store(t)
			n := newNode(t, nodeOpts{formats: formats, store: store, clock: clock})
			ctx := context.Background()
			before := n.state.AppliedIndex()
			for _, req := range []IssueRequest{
				{Username: "alice", Format: token.FormatJWT},
				{Username: "alice", Format: token.FormatJWT, Audience: "api"},
				{Username: "alice", Format: token.FormatJWT, IdempotencyKey: "once"},
			} {
				iss, err := n.svc.Issue(ctx, req)
				if !errors.Is(err, jwt.ErrNoSigningKey) || !errors.Is(err, token.ErrInvalid) || errcode.Of(err) != errcode.Invalid {
					t.Fatalf("Issue(jwt %+v) on a validate-only node = %+v, %v; want ErrNoSigningKey (invalid)", req, iss, err)
				}
			}
			if got := n.state.AppliedIndex(); got != before {
				t.Errorf("refused JWT issues moved the applied index %d → %d", before, got)
			}
			rows := 0
			if err := store.Scan(ctx, func(*token.Token) error { rows++; return nil }); err != nil || rows != 0 {
				t.Errorf("store holds %d rows (%v) after refused JWT issues, want none", rows, err)
			}

			now := clock.Now()
			text, key := js.ExternalToken(t, "erin", now, now.Add(time.Hour))
			wantState(t, n, text, token.StateValid)
			if err := n.svc.RevokeToken(ctx, []byte(text)); err != nil {
				t.Fatalf("RevokeToken(external) on a validate-only node = %v", err)
			}
			wantState(t, n, text, token.StateRevoked)
			if tomb, err := store.Get(ctx, key); err != nil || !tomb.IsTombstone() {
				t.Fatalf("store.Get(revoked external) = %+v, %v; want its tombstone", tomb, err)
			}
			// An opaque token is still issued where the store is on.
			if _, err := n.svc.Issue(ctx, IssueRequest{Username: "alice"}); (err == nil) == n.svc.StoreDisabled() {
				t.Errorf("Issue(opaque) = %v with StoreDisabled %t", err, n.svc.StoreDisabled())
			}
		})
	}
}
