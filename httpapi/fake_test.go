package httpapi

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

var _ Tokens = (*fakeTokens)(nil)

// fakeTokens is an in-memory stand-in for the token service. It keeps
// tokens by their text and by key, records every write call in a log (so
// that tests can assert that bad input changed nothing), and lets tests
// inject errors.
type fakeTokens struct {
	mu      sync.Mutex
	byText  map[string]fakeEntry
	byKey   map[token.Key]*token.Token
	writes  []string
	now     time.Time
	prefix  string
	reuse   bool // Delegate hands out an existing child
	issueFn func(tokens.IssueRequest) (tokens.Issued, error)

	// Last requests of each write, for tests that check the mapping.
	lastIssue    tokens.IssueRequest
	lastModify   tokens.ModifyRequest
	lastDelegate tokens.DelegateRequest
	lastList     tokens.ListQuery
	lastPurge    bool
	revokedRaw   []string

	// Injected behaviour.
	validateErr   error // Validate answers Validation{Err: validateErr}
	validatePanic any   // Validate panics with this value
	fixed         *tokens.Validation
	err           error // every other method fails with err
	consistentErr error
	readyErr      error

	validates  atomic.Int64
	consistent atomic.Int64
}

type fakeEntry struct {
	rec   *token.Token
	state token.State
}

func newFake() *fakeTokens {
	return &fakeTokens{
		byText: map[string]fakeEntry{},
		byKey:  map[token.Key]*token.Token{},
		now:    time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		prefix: token.DefaultPrefix,
	}
}

// add stores rec under a fresh token text in state st and returns the text.
func (f *fakeTokens) add(rec *token.Token, st token.State) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addLocked(rec, st)
}

func (f *fakeTokens) addLocked(rec *token.Token, st token.State) string {
	if rec.Key.IsZero() {
		rec.Key = token.NewKey()
	}
	text := token.Encode(f.prefix, rec.Key, token.NewSecret())
	noteSecret(text)
	f.byText[text] = fakeEntry{rec: rec, state: st}
	f.byKey[rec.Key] = rec
	return text
}

func (f *fakeTokens) logWrite(op string) {
	f.writes = append(f.writes, op)
}

// writeLog returns the write calls made so far.
func (f *fakeTokens) writeLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.writes)
}

func (f *fakeTokens) Validate(ctx context.Context, raw []byte) tokens.Validation {
	f.validates.Add(1)
	if f.fixed != nil {
		return *f.fixed
	}
	if f.validatePanic != nil {
		panic(f.validatePanic)
	}
	if f.validateErr != nil {
		return tokens.Validation{State: token.StateUnknown, Err: f.validateErr}
	}
	f.mu.Lock()
	e, ok := f.byText[string(raw)]
	f.mu.Unlock()
	if !ok {
		if !token.HasPrefix(f.prefix, raw) {
			return tokens.Validation{State: token.StateMalformed}
		}
		return tokens.Validation{State: token.StateUnknown}
	}
	return tokens.Validation{State: e.state, Token: e.rec}
}

func (f *fakeTokens) Issue(ctx context.Context, req tokens.IssueRequest) (tokens.Issued, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logWrite("Issue")
	f.lastIssue = req
	if f.err != nil {
		return tokens.Issued{}, f.err
	}
	if f.issueFn != nil {
		return f.issueFn(req)
	}
	rec := &token.Token{
		Created:  token.At(f.now),
		Username: req.Username, Realm: req.Realm, UID: req.UID, HasUID: req.HasUID,
		Scopes: req.Scopes, Type: req.Type, Format: req.Format,
	}
	if rec.Realm == "" {
		rec.Realm = token.DefaultRealm
	}
	if rec.Type == token.TypeUnknown {
		rec.Type = token.TypeUser
	}
	if !req.NoExpire {
		d := req.ExpiresIn
		if d == 0 {
			d = time.Hour
		}
		rec.Expires = token.At(f.now.Add(d))
	}
	var creds []byte
	if len(req.Credentials) > 0 {
		creds = []byte("sealed-credentials-blob")
	}
	rec.SetExtra(token.Extra{Name: req.Name, Service: req.Service, ClientID: req.ClientID, Parent: req.Parent, Credentials: creds})
	text := f.addLocked(rec, token.StateValid)
	return tokens.Issued{Token: text, Record: rec}, nil
}

func (f *fakeTokens) Info(ctx context.Context, k token.Key) (*token.Token, token.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, 0, f.err
	}
	t, ok := f.byKey[k]
	if !ok {
		return nil, 0, tokens.ErrNotFound
	}
	return t, token.StateValid, nil
}

func (f *fakeTokens) Modify(ctx context.Context, req tokens.ModifyRequest) (*token.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logWrite("Modify")
	f.lastModify = req
	if f.err != nil {
		return nil, f.err
	}
	t, ok := f.byKey[req.Key]
	if !ok {
		return nil, tokens.ErrNotFound
	}
	c := t.Clone()
	if req.Name != nil {
		e := token.Extra{}
		if c.Ext != nil {
			e = *c.Ext
		}
		e.Name = *req.Name
		c.SetExtra(e)
	}
	if req.Scopes != nil {
		c.Scopes = *req.Scopes
	}
	if req.Expires != nil {
		c.Expires = token.At(*req.Expires)
	}
	if req.NoExpire {
		c.Expires = 0
	}
	f.byKey[req.Key] = c
	return c, nil
}

func (f *fakeTokens) Revoke(ctx context.Context, k token.Key) ([]token.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logWrite("Revoke")
	if f.err != nil {
		return nil, f.err
	}
	if _, ok := f.byKey[k]; !ok {
		return nil, tokens.ErrNotFound
	}
	out := []token.Key{k}
	for ck, t := range f.byKey {
		if t.Parent() == k {
			out = append(out, ck)
		}
	}
	return out, nil
}

func (f *fakeTokens) RevokeToken(ctx context.Context, raw []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logWrite("RevokeToken")
	f.revokedRaw = append(f.revokedRaw, string(raw))
	return f.err
}

// List answers as the service does for its limits (tokens.Config ListLimit
// and MaxListLimit): no limit is the default, a larger one is ErrInvalid.
// lastList records the query with the limit the service applies.
func (f *fakeTokens) List(ctx context.Context, q tokens.ListQuery) ([]*token.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	limits := tokens.DefaultConfig()
	switch {
	case q.Limit == 0:
		q.Limit = limits.ListLimit
	case q.Limit < 0 || q.Limit > limits.MaxListLimit:
		return nil, fmt.Errorf("%w: limit must be an integer from 1 to %d", token.ErrInvalid, limits.MaxListLimit)
	}
	f.lastList = q
	if f.err != nil {
		return nil, f.err
	}
	var out []*token.Token
	for _, t := range f.byKey {
		if (q.Username == "" || t.Username == q.Username) && (q.Type == token.TypeUnknown || t.Type == q.Type) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b *token.Token) int { return int(a.Created - b.Created) })
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func (f *fakeTokens) Children(ctx context.Context, k token.Key) ([]*token.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	if _, ok := f.byKey[k]; !ok {
		return nil, tokens.ErrNotFound
	}
	var out []*token.Token
	for _, t := range f.byKey {
		if t.Parent() == k {
			out = append(out, t)
		}
	}
	return out, nil
}

func (f *fakeTokens) Delegate(ctx context.Context, req tokens.DelegateRequest) (tokens.Issued, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logWrite("Delegate")
	f.lastDelegate = req
	if f.err != nil {
		return tokens.Issued{}, f.err
	}
	parent, ok := f.byText[req.ParentToken]
	if !ok {
		return tokens.Issued{}, tokens.ErrParentNotFound
	}
	rec := &token.Token{
		Created: token.At(f.now), Expires: token.At(f.now.Add(time.Hour)),
		Username: parent.rec.Username, Realm: parent.rec.Realm,
		Type: req.Delegation.Type, Scopes: req.Delegation.Scopes,
	}
	rec.SetExtra(token.Extra{Service: req.Delegation.Service, Parent: parent.rec.Key})
	text := f.addLocked(rec, token.StateValid)
	return tokens.Issued{Token: text, Record: rec, Reused: f.reuse}, nil
}

func (f *fakeTokens) Stats(ctx context.Context) (tokens.Stats, error) {
	if f.err != nil {
		return tokens.Stats{}, f.err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, one := int64(len(f.byKey)), int64(1)
	return tokens.Stats{Tokens: &n, UniqueSessions: &one, CacheHits: 3, CacheMisses: 1, CacheHitRate: 0.75}, nil
}

func (f *fakeTokens) Orphaned(ctx context.Context) ([]*token.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	var out []*token.Token
	for _, t := range f.byKey {
		if p := t.Parent(); !p.IsZero() {
			if _, ok := f.byKey[p]; !ok {
				out = append(out, t)
			}
		}
	}
	return out, nil
}

func (f *fakeTokens) Purge(ctx context.Context, includeExpired bool) ([]*token.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logWrite("Purge")
	f.lastPurge = includeExpired
	if f.err != nil {
		return nil, f.err
	}
	return nil, nil
}

func (f *fakeTokens) Consistent(ctx context.Context) error {
	f.consistent.Add(1)
	return f.consistentErr
}

func (f *fakeTokens) Ready(ctx context.Context) error { return f.readyErr }
