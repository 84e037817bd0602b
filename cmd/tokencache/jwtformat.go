package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/token/jwt"
)

// jwtFormat is a node's JWT format (tokens.jwt): the codec, and the trusted
// external issuers whose JWKS refresh it runs. nil when the format is off.
type jwtFormat struct {
	codec *jwt.Codec
	log   *slog.Logger

	// mu guards the fields below and serialises start, close and
	// reloadTrusted.
	mu      sync.Mutex
	trusted []*jwt.Trusted
	ctx     context.Context // of start: where a reload starts new refreshes; nil before
	closed  bool
}

// jwtConfig maps tokens.jwt onto the codec's Config.
func jwtConfig(cfg *Config) jwt.Config {
	c := jwt.DefaultConfig()
	c.Issuer = cfg.Tokens.JWT.Issuer
	c.Audiences = cfg.Tokens.JWT.Audiences
	c.Leeway = cfg.Tokens.JWT.Leeway
	c.CacheSize = cfg.Tokens.JWT.VerifiedCache
	return c
}

// trustedConfig maps one entry of tokens.jwt.trusted.
func trustedConfig(t TrustedIssuer) jwt.TrustedConfig {
	return jwt.TrustedConfig{
		Issuer: t.Issuer, JWKSFile: t.JWKSFile, JWKSURL: t.JWKSURL, Refresh: t.Refresh,
		Audiences: t.Audiences, RequiredClaims: t.RequiredClaims,
		UsernameClaim: t.UsernameClaim, ScopesClaim: t.ScopesClaim,
	}
}

// newJWTFormat builds the JWT format of cfg: it loads the keys file, if
// any (without one the node is validate-only, see jwt.New), and reads the
// trusted issuers' JWKS files (URLs are fetched once Start runs). nil, nil
// when the format is off. It starts nothing.
func newJWTFormat(cfg *Config, log *slog.Logger) (*jwtFormat, error) {
	j := &cfg.Tokens.JWT
	if !j.Enabled() {
		return nil, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Without a keys file the node is validate-only: the codec has no
	// local issuer and mints nothing (tokens.jwt.trusted alone).
	var keys *jwt.KeySet
	if j.KeysFile != "" {
		var err error
		if keys, err = jwt.LoadKeySet(j.KeysFile); err != nil {
			return nil, fmt.Errorf("cannot set up JWTs: %w", err)
		}
	}
	var err error
	f := &jwtFormat{log: log}
	issuers := make([]jwt.Issuer, 0, len(j.Trusted))
	for _, t := range j.Trusted {
		tr, err := jwt.NewTrusted(trustedConfig(t), jwt.WithLogger(log))
		if err != nil {
			return nil, fmt.Errorf("cannot set up JWTs: %w", err)
		}
		f.trusted = append(f.trusted, tr)
		issuers = append(issuers, tr)
	}
	if f.codec, err = jwt.New(jwtConfig(cfg), keys, issuers...); err != nil {
		return nil, fmt.Errorf("cannot set up JWTs: %w", err)
	}
	return f, nil
}

// start starts the background JWKS refresh of the trusted issuers.
func (f *jwtFormat) start(ctx context.Context) error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ctx = ctx
	for _, t := range f.trusted {
		if err := t.Start(ctx); err != nil {
			return fmt.Errorf("cannot start the JWKS refresh of %s: %w", t.Name(), err)
		}
	}
	return nil
}

// close stops the refreshes. Safe on nil and twice.
func (f *jwtFormat) close() {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for _, t := range f.trusted {
		t.Close()
	}
}

// trustedIssuers returns the trusted issuers in use.
func (f *jwtFormat) trustedIssuers() []*jwt.Trusted {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.trusted)
}

// trustedChange is what reloadTrusted did, by issuer name.
type trustedChange struct {
	added, removed, changed, kept []string
}

func (c trustedChange) none() bool {
	return len(c.added) == 0 && len(c.removed) == 0 && len(c.changed) == 0
}

// reloadTrusted replaces the trusted issuers by list (tokens.jwt.trusted
// as the configuration now reads; the caller validated it as start-up
// does). An entry whose settings did not change keeps its running issuer
// and the keys it holds; a new or changed one is built (a JWKS file is read
// now), its refresh started, and swapped into the codec with the others; a
// removed one is stopped. Any error (a JWKS file that does not load, an
// issuer the codec refuses, an empty list on a validate-only node) leaves
// every issuer in use as it was. The codec forgets the external tokens it
// had verified, so a token of a removed issuer is refused at once.
func (f *jwtFormat) reloadTrusted(list []TrustedIssuer) (trustedChange, error) {
	var ch trustedChange
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ch, errors.New("the node is stopping")
	}
	old := make(map[string]*jwt.Trusted, len(f.trusted))
	for _, t := range f.trusted {
		old[t.Name()] = t
	}
	next := make([]*jwt.Trusted, 0, len(list))
	var fresh []*jwt.Trusted
	fail := func(err error) (trustedChange, error) {
		for _, t := range fresh {
			t.Close()
		}
		return trustedChange{}, err
	}
	for _, ti := range list {
		tc := trustedConfig(ti)
		prev, had := old[ti.Issuer]
		if had && prev.Config().Equal(tc) {
			next = append(next, prev)
			ch.kept = append(ch.kept, ti.Issuer)
			continue
		}
		opts := []jwt.TrustedOption{jwt.WithLogger(f.log)}
		if had {
			// The same JWKS URL: keep verifying with its last keys until
			// the new issuer's first fetch.
			opts = append(opts, jwt.WithKeysOf(prev))
		}
		t, err := jwt.NewTrusted(tc, opts...)
		if err != nil {
			return fail(err)
		}
		fresh = append(fresh, t)
		if f.ctx != nil {
			if err := t.Start(f.ctx); err != nil {
				return fail(fmt.Errorf("cannot start the JWKS refresh of %s: %w", t.Name(), err))
			}
		}
		next = append(next, t)
		if had {
			ch.changed = append(ch.changed, ti.Issuer)
		} else {
			ch.added = append(ch.added, ti.Issuer)
		}
	}
	if len(fresh) == 0 && len(next) == len(f.trusted) {
		return ch, nil // the same issuers, each unchanged
	}
	issuers := make([]jwt.Issuer, len(next))
	for i, t := range next {
		issuers[i] = t
	}
	if err := f.codec.SetTrusted(issuers...); err != nil {
		return fail(err)
	}
	for _, t := range f.trusted {
		if !slices.Contains(next, t) {
			t.Close()
			if !slices.Contains(ch.changed, t.Name()) {
				ch.removed = append(ch.removed, t.Name())
			}
		}
	}
	f.trusted = next
	return ch, nil
}

// signs reports whether the node has JWT signing keys (tokens.jwt.keys_file):
// false without a format and on a validate-only node.
func (f *jwtFormat) signs() bool { return f != nil && f.codec.KeySet() != nil }

// digest is the digest of the local keys ("" without a format or keys:
// what the cluster announces for a node without keys).
func (f *jwtFormat) digest() string {
	if !f.signs() {
		return ""
	}
	return f.codec.KeySet().Digest()
}

// jwks returns the current JWK set of the local keys (nil without).
func (f *jwtFormat) jwks() []byte {
	if !f.signs() {
		return nil
	}
	return f.codec.KeySet().JWKS()
}

// issueFormat parses tokens.format (Validate checked it).
func issueFormat(cfg *Config) token.Format {
	f, err := token.ParseFormat(strings.TrimSpace(cfg.Tokens.Format))
	if err != nil {
		return token.FormatOpaque
	}
	return f
}
