package jwt

import (
	"errors"
	"fmt"

	"github.com/tokencache/tokencache/token"
)

// Errors returned by this package. Callers compare with errors.Is. Every
// error of Parse wraps token.ErrMalformed (a caller answers "malformed")
// and one of the more precise sentinels below; no error text ever quotes a
// token or key material.
var (
	// ErrKeySet means a key, a key set or a JWK set is unusable: a bad PEM
	// block or JWK, an unknown algorithm, a key that does not fit its
	// algorithm, a weak key, duplicate kids, not exactly one active key.
	ErrKeySet = errors.New("invalid JWT key set")
	// ErrConfig means a Config breaks a rule.
	ErrConfig = errors.New("invalid JWT configuration")
	// ErrNoSigningKey means a token cannot be minted: the codec is
	// validate-only (built without keys, tokens.jwt.keys_file unset). It
	// wraps token.ErrInvalid, as asking a node without JWTs for one does.
	ErrNoSigningKey = fmt.Errorf("%w: this node has no JWT signing key (tokens.jwt.keys_file); it only validates the JWTs of tokens.jwt.trusted", token.ErrInvalid)

	// ErrSyntax means the text is not a compact JWS of acceptable size.
	ErrSyntax = fmt.Errorf("%w: not a JWT", token.ErrMalformed)
	// ErrHeader means the JOSE header is refused (a crit member, a kid
	// missing, an alg that is not the pinned one of the key it names).
	ErrHeader = fmt.Errorf("%w: JWT header refused", token.ErrMalformed)
	// ErrUnknownKey means the kid names no key of the token's issuer.
	ErrUnknownKey = fmt.Errorf("%w: JWT signed with an unknown key", token.ErrMalformed)
	// ErrIssuer means the iss claim names no issuer this server trusts.
	ErrIssuer = fmt.Errorf("%w: JWT from an untrusted issuer", token.ErrMalformed)
	// ErrSignature means the signature does not verify under the key the
	// header names.
	ErrSignature = fmt.Errorf("%w: JWT signature does not verify", token.ErrMalformed)
	// ErrExpired means exp has passed (beyond the leeway) on a token whose
	// signature verified: it wraps token.ErrExpired, so validation answers
	// "expired". A bad signature is ErrSignature whatever exp says.
	ErrExpired = fmt.Errorf("%w: JWT exp has passed", token.ErrExpired)
	// ErrNotYetValid means nbf (or iat) lies in the future beyond the leeway.
	ErrNotYetValid = fmt.Errorf("%w: JWT is not valid yet", token.ErrMalformed)
	// ErrAudience means aud is missing or empty, holds an empty value, or
	// names no audience the issuer's allow-list holds.
	ErrAudience = fmt.Errorf("%w: JWT audience not allowed", token.ErrMalformed)
	// ErrClaims means a claim is missing or malformed (exp missing, a jti
	// that is not a token key, a bad scope, ...).
	ErrClaims = fmt.Errorf("%w: JWT claims refused", token.ErrMalformed)
)
