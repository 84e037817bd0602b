package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/token/jwt"
)

// jwtFormat is a node's JWT format (tokens.jwt): the codec, and the trusted
// external issuers whose JWKS refresh it runs. nil when the format is off.
type jwtFormat struct {
	codec   *jwt.Codec
	trusted []*jwt.Trusted
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
	f := &jwtFormat{}
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
	for _, t := range f.trusted {
		t.Close()
	}
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
