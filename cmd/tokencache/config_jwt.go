package main

import (
	"fmt"
	"net/url"
	"os"
	"slices"

	"github.com/tokencache/tokencache/token/jwt"
)

// Limits of tokens.jwt that the file check applies before the jwt package
// sees the values (it checks them again: one rule, two places to meet it).
const (
	maxJWTLeeway       = jwt.MaxLeeway
	maxTrustedIssuers  = 64
	anyAudience        = "*"
	maxConfigAudiences = 64
)

// checkJWT checks tokens.format and tokens.jwt.*.
func (c *Config) checkJWT(ck *checker) {
	t := &c.Tokens
	j := &t.JWT
	ck.oneOf("tokens.format", t.Format, "opaque", "jwt")
	if t.Format == "jwt" && j.KeysFile == "" {
		ck.errorf("tokens.format", "jwt needs signing keys: set tokens.jwt.keys_file (tokencache jwt keygen writes one)")
	}
	if j.KeysFile != "" {
		// A node with tokens.jwt.trusted alone is validate-only: it has no
		// local issuer, so its name matters only to a node that signs.
		if j.Issuer == "" {
			ck.errorf("tokens.jwt.issuer", "is required with tokens.jwt.keys_file (the iss of the JWTs this cluster signs)")
		}
		c.checkKeysFile(ck)
	}
	checkAudiences(ck, "tokens.jwt.audiences", j.Audiences)
	if j.Leeway < 0 || j.Leeway > maxJWTLeeway {
		ck.errorf("tokens.jwt.leeway", "must be from 0s to %s, got %s", formatDuration(maxJWTLeeway), formatDuration(j.Leeway))
	}
	ck.positiveInt("tokens.jwt.verified_cache", j.VerifiedCache)
	if len(j.Trusted) > maxTrustedIssuers {
		ck.errorf("tokens.jwt.trusted", "at most %d issuers, got %d", maxTrustedIssuers, len(j.Trusted))
	}
	seen := make(map[string]int)
	for i, ti := range j.Trusted {
		key := fmt.Sprintf("tokens.jwt.trusted[%d]", i)
		switch {
		case ti.Issuer == "":
			ck.errorf(key+".issuer", "is required (the iss claim of the issuer's tokens)")
		case ti.Issuer == j.Issuer && j.KeysFile != "":
			ck.errorf(key+".issuer", "%q is this cluster's own issuer (tokens.jwt.issuer)", ti.Issuer)
		default:
			if prev, dup := seen[ti.Issuer]; dup {
				ck.errorf(key+".issuer", "%q is already trusted by tokens.jwt.trusted[%d]", ti.Issuer, prev)
			}
			seen[ti.Issuer] = i
		}
		switch {
		case ti.JWKSFile == "" && ti.JWKSURL == "":
			ck.errorf(key, "needs jwks_file or jwks_url (where the issuer's public keys are)")
		case ti.JWKSFile != "" && ti.JWKSURL != "":
			ck.errorf(key, "has both jwks_file and jwks_url; name exactly one")
		case ti.JWKSFile != "":
			if fi, err := os.Stat(ti.JWKSFile); err != nil {
				ck.errorf(key+".jwks_file", "cannot read %s: %v", ti.JWKSFile, unwrapPathError(err))
			} else if !fi.Mode().IsRegular() {
				ck.errorf(key+".jwks_file", "%s is not a regular file", ti.JWKSFile)
			}
		default:
			if u, err := url.Parse(ti.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				ck.errorf(key+".jwks_url", "must be an https URL (http only on loopback)")
			}
		}
		if ti.Refresh < 0 {
			ck.errorf(key+".refresh", "must not be negative, got %s", formatDuration(ti.Refresh))
		}
		if len(ti.Audiences) == 0 {
			ck.errorf(key+".audiences", "is required: list the aud values to accept, or \"*\" for any")
		} else {
			checkAudiences(ck, key+".audiences", ti.Audiences)
		}
		for n, rc := range ti.RequiredClaims {
			if rc == "" {
				ck.errorf(fmt.Sprintf("%s.required_claims[%d]", key, n), "is empty")
			}
		}
	}
}

// checkAudiences checks an aud allow-list: printable ASCII words, "*"
// alone for any.
func checkAudiences(ck *checker, key string, list []string) {
	if len(list) == 0 {
		ck.errorf(key, "must name at least one audience, or \"*\" for any")
		return
	}
	if len(list) > maxConfigAudiences {
		ck.errorf(key, "at most %d audiences, got %d", maxConfigAudiences, len(list))
	}
	for i, a := range list {
		if a == anyAudience {
			if len(list) > 1 {
				ck.errorf(key, "\"*\" (any audience) must be the only value")
			}
			continue
		}
		if a == "" || len(a) > 1024 || slices.ContainsFunc([]byte(a), func(b byte) bool { return b <= ' ' || b >= 0x7f }) {
			ck.errorf(fmt.Sprintf("%s[%d]", key, i), "%q must be 1 to 1024 printable ASCII characters without spaces", a)
		}
	}
}

// checkKeysFile loads tokens.jwt.keys_file as serve does at start (and at
// every reload): a file serve would refuse is refused here.
func (c *Config) checkKeysFile(ck *checker) {
	path := c.Tokens.JWT.KeysFile
	if _, err := os.Stat(path); err != nil {
		ck.errorf("tokens.jwt.keys_file", "cannot read %s: %v (tokencache jwt keygen --out %s writes one)", path, unwrapPathError(err), path)
		return
	}
	if _, err := jwt.LoadKeySet(path); err != nil {
		ck.errorf("tokens.jwt.keys_file", "%v", err) // never quotes key material
	}
}

// unwrapPathError returns the reason of a *os.PathError without repeating
// the path.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
