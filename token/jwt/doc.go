// Package jwt is the signed-JWT token format (token.FormatJWT): the local
// issuer's keys (KeySet, read from tokens.jwt.keys_file as PEM blocks or a
// JWK set), the Codec that signs and verifies compact JWS tokens with them
// (and with the keys of trusted external issuers), and the cache of
// verified token texts. Verification is golang-jwt's (v5), configured and
// wrapped to follow RFC 8725 (JWT Best Current Practices):
//
//   - Algorithm verification (RFC 8725 section 3.1): every key carries one
//     algorithm (EdDSA, ES256, RS256 or HS256), fixed when it is loaded.
//     The parser accepts only those four (never "none", in any spelling),
//     and the key function refuses a token whose alg is not the pinned
//     algorithm of the key its kid names, so an HS256 token cannot be
//     checked with an RSA or Ed25519 public key as the HMAC secret.
//   - Appropriate algorithms and key strength (sections 3.2 and 3.5): RSA
//     keys of at least 2048 bits, EC keys on P-256 only, HS256 secrets of at
//     least 32 bytes; GenerateKey draws from crypto/rand.
//   - Validate all cryptographic operations (section 3.3): any error from
//     golang-jwt refuses the token, and a signature failure is reported as
//     such even when the token is also expired (CVE-2024-51744).
//   - Validate cryptographic inputs (section 3.4): EC points and RSA
//     private keys are checked when they are loaded.
//   - Issuer (section 3.8): iss picks the issuer; a token of an issuer not
//     configured is refused. Its kid is looked up only among that issuer's
//     keys.
//   - Audience (section 3.9): aud must be present and non-empty, with no
//     empty value, and, whether aud is a string or an array
//     (CVE-2020-26160), one of its values must be in the issuer's
//     allow-list (RFC 7519 section 4.1.3; "*" accepts any value). A token
//     is minted only for allowed audiences.
//   - Do not trust received claims (section 3.10): the kid is only a key
//     of an in-memory map (a kid such as "../x" simply names no key); the
//     jku, jwk, x5u and x5c header members are never used, and a token
//     with a crit member is refused (no extension is understood).
//   - Explicit typing (section 3.11): tokens are signed with typ "JWT"
//     and a kid; typ is not required of external issuers' tokens.
//   - Times: exp is required; exp, nbf and iat are checked with a small
//     leeway (Config.Leeway, at most 5 minutes) against the injected clock.
//   - Local tokens: jti must be a token key (the key of the token's record,
//     so that it is revocable); a token of a trusted external issuer must
//     carry a jti and is known here under ExternalKey(iss, jti).
//
// Parsing cost is bounded before golang-jwt sees a text (CVE-2025-30204):
// Match accepts at most MaxTokenLen bytes of three non-empty segments (two
// dots, counted vectorised, no allocation); golang-jwt then decodes them as
// strict base64url (canonical, so a token has exactly one text).
//
// A text verified once enters the verified-token cache, keyed by the whole
// text: a variant with one character changed misses and is verified in
// full. A hit re-checks exp and nbf (with the leeway) and allocates
// nothing. The cache is bounded (Config.CacheSize); a key set reload
// (SetKeys) drops the entries verified by keys that are gone or changed,
// and SetTrusted drops those of external issuers.
//
// A codec built without keys (New with a nil KeySet) is validate-only: a
// node that only answers for an external identity provider's tokens
// (tokens.jwt.trusted without tokens.jwt.keys_file). It has no local
// issuer, so no token of its own verifies, and minting answers
// ErrNoSigningKey (CheckMint tells before anything is written).
//
// Claims written and read: iss, sub (username), aud, exp, nbf, iat, jti
// (the token key), and scope (space-separated), realm, uid, token_type
// and name when set.
package jwt
