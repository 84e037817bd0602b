// Package token is the token model of tokencache: the formats of a token's
// text, the record kept for it, the states a lookup can answer, and the rules
// that derive a state from the times carried in a record (expiry, retention,
// idle timeout, revocation).
//
// A format is a Codec (parse, mint, verify; codec.go) and the set a server
// accepts is a Formats. Opaque (<prefix>_<key>.<secret>, opaque.go) is the
// first and, so far, only codec. A signed JWT format is one more Codec,
// registered in the daemon's list of formats (cmd/tokencache, tokenFormats);
// one that needs a library beyond the standard library lives in a package of
// its own, so that this one stays pure.
//
// The package is pure: it depends on the standard library only, reads no
// clock (callers pass "now"), and does no I/O. Everything in it is safe for
// concurrent use unless a type says otherwise; a *Token held by the cache is
// immutable, and writers replace it rather than change it.
package token
