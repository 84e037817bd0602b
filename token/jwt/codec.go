package jwt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/tokencache/tokencache/token"
)

// Codec is the JWT format: it implements token.Codec (Format() ==
// token.FormatJWT) for the local issuer and any trusted external issuers.
// A codec built without keys is validate-only: it has no local issuer,
// verifies only its trusted issuers' tokens and mints none. It is safe for
// concurrent use; SetKeys and SetTrusted swap its state atomically.
type Codec struct {
	cfg   Config
	now   func() time.Time
	st    atomic.Pointer[state]
	cache *cache
	fp    string
	mu    sync.Mutex // serialises SetKeys and SetTrusted
}

var _ token.Codec = (*Codec)(nil)

// state is what one Parse sees: the keys, the issuers by name, the parser.
type state struct {
	keys    *KeySet           // nil on a validate-only codec
	local   *localIssuer      // nil on a validate-only codec
	issuers map[string]Issuer // by iss; the local one included
	parser  *gojwt.Parser
	header  string // the encoded JOSE header of the active key, with the dot
}

// verifyOnlyFingerprint is the Fingerprint of every validate-only codec:
// it has no issuer or audiences of its own to compare, and it must differ
// from every signing codec's, so that a node that signs and one that does
// not never share a cluster.
const verifyOnlyFingerprint = "jwt|verify-only"

// New returns the codec of cfg signing with keys (its active key) and
// accepting tokens of the local issuer and of trusted.
//
// With keys nil the codec is validate-only (a node with tokens.jwt.trusted
// and no tokens.jwt.keys_file): no local issuer is registered, so a token
// naming cfg.Issuer is refused like any unknown issuer (ErrIssuer); Encode
// and CheckMint answer ErrNoSigningKey; KeySet is nil; cfg.Issuer may be
// empty. It needs at least one trusted issuer (ErrConfig otherwise).
func New(cfg Config, keys *KeySet, trusted ...Issuer) (*Codec, error) {
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := cfg.validate(keys != nil); err != nil {
		return nil, err
	}
	cfg.Audiences = slices.Clone(cfg.Audiences)
	auds := slices.Clone(cfg.Audiences)
	slices.Sort(auds)
	c := &Codec{
		cfg:   cfg,
		now:   cfg.Now,
		cache: newCache(cfg.CacheSize),
		fp:    "jwt|iss=" + cfg.Issuer + "|aud=" + strings.Join(auds, " "),
	}
	if keys == nil {
		c.fp = verifyOnlyFingerprint
	}
	st, err := c.newState(keys, trusted)
	if err != nil {
		return nil, err
	}
	c.st.Store(st)
	return c, nil
}

// newState builds the state of keys (nil: validate-only) and trusted.
func (c *Codec) newState(keys *KeySet, trusted []Issuer) (*state, error) {
	st := &state{keys: keys, issuers: map[string]Issuer{}}
	if keys != nil {
		st.local = &localIssuer{name: c.cfg.Issuer, auds: c.cfg.Audiences, keys: keys}
		st.issuers[st.local.name] = st.local
	}
	for _, t := range trusted {
		if t == nil {
			continue
		}
		if _, dup := st.issuers[t.Name()]; dup {
			return nil, fmt.Errorf("%w: issuer %q is trusted twice (or is the local issuer)", ErrConfig, t.Name())
		}
		st.issuers[t.Name()] = t
	}
	if len(st.issuers) == 0 {
		return nil, fmt.Errorf("%w: no keys and no trusted issuer: this codec would accept no token", ErrConfig)
	}
	opts := []gojwt.ParserOption{
		// Every algorithm this package verifies, and nothing else (no
		// "none"); the keyfunc then pins the one of the key the kid names.
		gojwt.WithValidMethods([]string{AlgEdDSA, AlgES256, AlgRS256, AlgHS256}),
		gojwt.WithExpirationRequired(),
		gojwt.WithIssuedAt(),
		gojwt.WithLeeway(c.cfg.Leeway),
		gojwt.WithTimeFunc(c.now),
		// One text per token: non-canonical base64 (stray padding bits)
		// is refused, so a changed character always changes the bytes.
		gojwt.WithStrictDecoding(),
	}
	if st.local != nil && len(st.issuers) == 1 {
		opts = append(opts, gojwt.WithIssuer(st.local.name))
	}
	st.parser = gojwt.NewParser(opts...)
	if keys == nil {
		return st, nil
	}
	a := keys.Active()
	h, _ := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{a.alg, a.kid, "JWT"})
	st.header = base64.RawURLEncoding.EncodeToString(h) + "."
	return st, nil
}

// SetKeys replaces the local issuer's keys (a reload). The verified cache
// forgets every token verified by a key that is no longer in ks (or whose
// kid now names other material). It changes nothing on a validate-only
// codec (built without keys): whether a node signs is a setting every node
// of its cluster shares (Fingerprint), which a reload does not change.
func (c *Codec) SetKeys(ks *KeySet) {
	if ks == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.st.Load()
	if old.local == nil {
		return
	}
	trusted := make([]Issuer, 0, len(old.issuers))
	for name, iss := range old.issuers {
		if name != old.local.name {
			trusted = append(trusted, iss)
		}
	}
	st, _ := c.newState(ks, trusted) // the same issuers as before: no duplicate
	c.st.Store(st)
	c.cache.purge(func(v *verified) bool {
		if !v.local {
			return false
		}
		k, ok := ks.Key(v.key.kid)
		return !ok || !k.sameMaterial(v.key)
	})
}

// KeySet returns the local issuer's keys; nil on a validate-only codec.
func (c *Codec) KeySet() *KeySet { return c.st.Load().keys }

// CheckMint reports whether this codec can mint (sign) a token: nil, or
// ErrNoSigningKey on a validate-only codec. tokens asks it before an issue
// is written anywhere.
func (c *Codec) CheckMint() error {
	if c.st.Load().keys == nil {
		return ErrNoSigningKey
	}
	return nil
}

// SetTrusted replaces the trusted external issuers; the verified cache
// forgets every token of an issuer not among them (an issuer kept keeps its
// tokens: a key its JWKS dropped is caught on the next hit, stillTrusted).
// It refuses an issuer named
// twice or named like the local issuer, and, on a validate-only codec, an
// empty list (the codec would accept nothing); it then changes nothing.
func (c *Codec) SetTrusted(trusted ...Issuer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.newState(c.st.Load().keys, trusted)
	if err != nil {
		return err
	}
	c.st.Store(st)
	c.cache.purge(func(v *verified) bool { return !v.local && !slices.Contains(trusted, v.iss) })
	return nil
}

// CheckAudience checks the space-separated audience of a token about to be
// issued against the allow-list ("" is the default audience). Issue is
// stricter than verification: this server mints only for audiences it
// accepts, so every value must be allowed.
func (c *Codec) CheckAudience(aud string) error {
	for _, a := range splitAudience(aud) {
		if err := validAudience(a); err != nil {
			return err
		}
		if !audienceAllowed(c.cfg.Audiences, []string{a}) {
			return fmt.Errorf("%w: audience %q is not allowed (tokens.jwt.audiences)", token.ErrInvalid, a)
		}
	}
	return nil
}

// Issuer returns the local issuer's name (the iss of the tokens it signs);
// "" on a validate-only codec, which signs none.
func (c *Codec) Issuer() string {
	if c.st.Load().local == nil {
		return ""
	}
	return c.cfg.Issuer
}

// Format implements token.Codec.
func (c *Codec) Format() token.Format { return token.FormatJWT }

// Fingerprint implements token.Codec: the issuer and the audiences. The
// kid set is not part of it: keys are compared through KeySet.Digest, so
// that a rolling rotation does not make nodes refuse each other. Nor are
// the trusted issuers (each node reads its own JWKS). A validate-only
// codec has one fingerprint of its own, whatever its settings.
func (c *Codec) Fingerprint() string { return c.fp }

// Match implements token.Codec: raw has the shape of a compact JWS: at
// most MaxTokenLen bytes, a header starting "eyJ" (base64 of `{"`), and
// exactly two dots between non-empty segments. It allocates nothing and
// its cost is bounded by MaxTokenLen whatever the text (CVE-2025-30204:
// a text of many dots is refused by a vectorised count, before any
// parsing). The alphabet is left to the strict base64 decoding of Parse.
func (c *Codec) Match(raw []byte) bool { return match(raw) }

func match(raw []byte) bool {
	if !plausible(raw) || bytes.Count(raw, dot) != 2 {
		return false
	}
	i := bytes.IndexByte(raw, '.')
	j := i + 1 + bytes.IndexByte(raw[i+1:], '.')
	return j != i+1 && j != len(raw)-1 // no empty segment
}

var dot = []byte{'.'}

// plausible is match's constant-time part: the length bound and the
// header's first bytes.
func plausible(raw []byte) bool {
	return len(raw) >= 8 && len(raw) <= MaxTokenLen && raw[0] == 'e' && raw[1] == 'y' && raw[2] == 'J'
}

// Parse implements token.Codec. A text verified before is found in the
// verified cache (keyed by the whole text, at most MaxTokenLen bytes) and
// only its exp and nbf are checked again: no allocation. Otherwise it is
// checked by Match and verified in full (see verify). Every failure wraps
// token.ErrMalformed; no error quotes the text.
func (c *Codec) Parse(raw []byte) (token.Presented, error) {
	if !plausible(raw) {
		return token.Presented{}, ErrSyntax
	}
	now := c.now().UnixNano()
	// A text in the cache passed match when it was verified. A miss checks
	// the shape again: Formats.Parse asked Match already, but a direct
	// caller may not have, and the count is nothing beside a signature.
	h := c.cache.hash(raw)
	if v := c.cache.get(raw, h); v != nil {
		if now >= v.notAfter {
			c.cache.remove(raw, h)
			return token.Presented{}, ErrExpired
		}
		if now < v.notBefore {
			return token.Presented{}, ErrNotYetValid
		}
		if v.local || v.stillTrusted() {
			return v.p, nil
		}
		// The external issuer no longer holds the key (its JWKS was
		// refreshed): verify again, which fails if the key is gone.
		c.cache.remove(raw, h)
	}
	if !match(raw) {
		return token.Presented{}, ErrSyntax
	}
	return c.verify(string(raw), h, now)
}

// verification is what the keyfunc chose for one verify. It travels with
// the claims golang-jwt decodes (parsed), so that the keyfunc is a plain
// function (no closure to allocate per token).
type verification struct {
	st  *state
	iss Issuer
	key *Key
}

// parsed is what golang-jwt decodes a payload into first: the fields of
// Claims, flat (encoding/json decodes a struct embedded one level deeper,
// or one with an UnmarshalJSON, measurably slower), and, where no decoding
// reaches, the verification state and the Claims handed on. One
// allocation. TestParsedMirrorsClaims keeps its fields those of Claims.
type parsed struct {
	gojwt.RegisteredClaims
	Scope string `json:"scope,omitempty"`
	Realm string `json:"realm,omitempty"`
	UID   *int64 `json:"uid,omitempty"`
	Type  string `json:"token_type,omitempty"`
	Name  string `json:"name,omitempty"`

	v verification
	c Claims
}

// claims returns the decoded claims as Claims.
func (p *parsed) claims() *Claims {
	p.c = Claims{RegisteredClaims: p.RegisteredClaims, Scope: p.Scope, Realm: p.Realm, UID: p.UID, Type: p.Type, Name: p.Name}
	return &p.c
}

// lenientParsed is the second try for a payload whose claims named like
// ours have other JSON types (an IdP's scope array, a string uid):
// Claims.UnmarshalJSON, if any, decides.
type lenientParsed struct {
	Claims
	v verification
}

// stateOf returns the unverified iss and the verification state of the
// claims golang-jwt is decoding.
func stateOf(c gojwt.Claims) (string, *verification) {
	switch pc := c.(type) {
	case *parsed:
		return pc.Issuer, &pc.v
	case *lenientParsed:
		return pc.Issuer, &pc.v
	}
	return "", nil
}

// keyfunc picks the key of a token for golang-jwt: the issuer by the
// (not yet verified) iss, then the key by kid, from memory only. No other
// header member is ever used: not jku, jwk, x5u or x5c (RFC 8725 section
// 3.10); a crit header is refused (RFC 7515 section 4.1.11: we understand
// no extension). The token's alg must be the key's pinned one (RFC 8725
// section 3.1), so an HS256 token cannot be checked with an RSA or Ed25519
// public key as its secret.
func keyfunc(t *gojwt.Token) (any, error) {
	iss, v := stateOf(t.Claims)
	if v == nil || v.st == nil {
		return nil, ErrClaims
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, ErrHeader
	}
	kid := ""
	if h, ok := t.Header["kid"]; ok {
		s, ok := h.(string)
		if !ok {
			return nil, ErrHeader
		}
		kid = s
	}
	v.iss = v.st.issuers[iss]
	if v.iss == nil {
		return nil, ErrIssuer
	}
	k, ok := v.iss.Key(kid)
	if !ok || k == nil {
		return nil, ErrUnknownKey
	}
	// Method is golang-jwt's method registered under the header's alg:
	// its Alg() is that alg.
	if t.Method == nil || t.Method.Alg() != k.alg {
		return nil, ErrHeader
	}
	v.key = k
	return k.verify, nil
}

// verify checks text in full with golang-jwt: the signature under the
// key the kid names (algorithm pinned), exp required, nbf and iat not in
// the future, with the leeway; then iss (the issuer the keyfunc chose), aud
// (present, non-empty, every value allowed) and the claims the issuer maps
// to a record. A token that passes enters the verified cache.
func (c *Codec) verify(text string, h uint64, now int64) (token.Presented, error) {
	st := c.st.Load()
	var pc gojwt.Claims = &parsed{v: verification{st: st}}
	tok, err := st.parser.ParseWithClaims(text, pc, keyfunc)
	if err != nil && errors.Is(err, gojwt.ErrTokenMalformed) && isTypeError(err) {
		pc = &lenientParsed{v: verification{st: st}}
		tok, err = st.parser.ParseWithClaims(text, pc, keyfunc)
	}
	var cl *Claims
	var v *verification
	switch pc := pc.(type) {
	case *parsed:
		cl, v = pc.claims(), &pc.v
	case *lenientParsed:
		cl, v = &pc.Claims, &pc.v
	}
	if err != nil || tok == nil || !tok.Valid {
		// Never accept on a partial error (CVE-2024-51744): any error
		// refuses; it is mapped to the one sentinel a caller sees.
		return token.Presented{}, mapError(err)
	}
	if v.iss == nil || v.key == nil || cl.Issuer != v.iss.Name() {
		return token.Presented{}, ErrIssuer
	}
	if !audienceAllowed(v.iss.Audiences(), cl.Audience) {
		return token.Presented{}, ErrAudience
	}
	if !inRange(cl.ExpiresAt) || !inRange(cl.NotBefore) || !inRange(cl.IssuedAt) {
		return token.Presented{}, fmt.Errorf("%w: a time claim lies before 1970 or after 2262", ErrClaims)
	}
	local := st.local != nil && v.iss == Issuer(st.local)
	if !local {
		if cl.ID == "" {
			return token.Presented{}, fmt.Errorf("%w: no jti (a token of a trusted issuer must be revocable)", ErrClaims)
		}
		if cl.Extra, err = allClaims(text); err != nil {
			return token.Presented{}, err
		}
	}
	var rec *token.Token
	var ent *verified
	if local {
		// The record, its Extra and the cache entry in one allocation.
		b := &localEntry{}
		k, err := token.ParseKey(cl.ID)
		if err != nil {
			return token.Presented{}, fmt.Errorf("%w: jti is not a token key", ErrClaims)
		}
		if err := fillRecord(cl, k, &b.tok, &b.ext); err != nil {
			return token.Presented{}, err
		}
		rec, ent = &b.tok, &b.ent
	} else {
		if rec, err = v.iss.Record(cl); err != nil {
			if errors.Is(err, token.ErrMalformed) {
				return token.Presented{}, err
			}
			return token.Presented{}, fmt.Errorf("%w: %w", ErrClaims, err)
		}
		if rec == nil {
			return token.Presented{}, ErrClaims
		}
		rec.Format = token.FormatJWT
		rec.Key = ExternalKey(cl.Issuer, cl.ID)
		ent = &verified{}
	}
	p := token.Presented{Key: rec.Key, Claims: rec, External: !local}
	lw := int64(c.cfg.Leeway)
	*ent = verified{p: p, key: v.key, iss: v.iss, local: local, notAfter: cl.ExpiresAt.UnixNano() + lw, notBefore: -1 << 63}
	if cl.NotBefore != nil {
		ent.notBefore = cl.NotBefore.UnixNano() - lw
	}
	if cl.IssuedAt != nil && cl.IssuedAt.UnixNano()-lw > ent.notBefore {
		ent.notBefore = cl.IssuedAt.UnixNano() - lw
	}
	if now < ent.notAfter && now >= ent.notBefore {
		c.cache.put(h, text, ent, st, &c.st)
	}
	return p, nil
}

// localEntry is a local token's cache entry with its record.
type localEntry struct {
	ent verified
	tok token.Token
	ext token.Extra
}

// isTypeError reports whether err says a JSON value had another type
// than the field it was decoded into.
func isTypeError(err error) bool {
	var te *json.UnmarshalTypeError
	return errors.As(err, &te)
}

// inRange reports whether d (if set) can be a token.Time: Unix
// nanoseconds in an int64, from 1970 on.
func inRange(d *gojwt.NumericDate) bool {
	return d == nil || (d.Unix() >= 0 && d.Unix() < maxUnix)
}

// maxUnix is the first second whose Unix nanoseconds overflow an int64
// (in April 2262).
const maxUnix = (1<<63 - 1) / int64(time.Second)

// allClaims decodes every claim of a verified text (for an external
// issuer's claim mapping).
func allClaims(text string) (map[string]any, error) {
	_, rest, _ := strings.Cut(text, ".")
	payload, _, _ := strings.Cut(rest, ".")
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, ErrSyntax
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, ErrSyntax
	}
	// encoding/json matches a struct's field names ignoring case, the last
	// one winning, so {"exp":1,"EXP":9999999999} would decode to an exp the
	// exact-name claims (required claims, claim mapping) never see: the two
	// views of one token must not disagree.
	for k := range m {
		for _, name := range claimNames {
			if k != name && strings.EqualFold(k, name) {
				return nil, fmt.Errorf("%w: claim %q differs from %q only in case", ErrClaims, k, name)
			}
		}
	}
	return m, nil
}

// claimNames are the claims Claims decodes, by their exact JSON names.
var claimNames = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "scope", "realm", "uid", "token_type", "name"}

// mapError translates golang-jwt's error to this package's sentinel. The
// signature is judged first: a token whose signature fails is a forgery,
// whatever else is wrong with it (CVE-2024-51744).
func mapError(err error) error {
	for _, ours := range []error{ErrHeader, ErrIssuer, ErrUnknownKey, ErrClaims} {
		if errors.Is(err, ours) {
			return ours
		}
	}
	switch {
	case err == nil:
		return ErrSignature // not valid, yet no error: never accept
	case errors.Is(err, gojwt.ErrTokenSignatureInvalid):
		return ErrSignature
	case errors.Is(err, gojwt.ErrTokenMalformed):
		return ErrSyntax
	case errors.Is(err, gojwt.ErrTokenUnverifiable):
		return ErrHeader
	case errors.Is(err, gojwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, gojwt.ErrTokenNotValidYet), errors.Is(err, gojwt.ErrTokenUsedBeforeIssued):
		return ErrNotYetValid
	case errors.Is(err, gojwt.ErrTokenInvalidIssuer):
		return ErrIssuer
	case errors.Is(err, gojwt.ErrTokenInvalidAudience):
		return ErrAudience
	}
	return ErrClaims
}

// Verify implements token.Codec: t is a JWT record and p names it (the
// signature was verified by Parse).
func (c *Codec) Verify(p token.Presented, t *token.Token) bool {
	return t != nil && t.Format == token.FormatJWT && t.Key == p.Key && !p.Key.IsZero()
}

// Sum implements token.Codec: a JWT has no secret.
func (c *Codec) Sum(token.Presented) token.Hash { return token.Hash{} }

// Mint implements token.Codec: a JWT has no secret.
func (c *Codec) Mint(token.Key) (string, token.Hash) { return "", token.Hash{} }
