// Package token is the token model of tokencache: the wire format of a token
// (<prefix>_<key>.<secret>), the record kept for it, the states a lookup can
// answer, and the rules that derive a state from the times carried in a record
// (expiry, retention, idle timeout, revocation).
//
// The package is pure: it depends on the standard library only, reads no
// clock (callers pass "now"), and does no I/O. Everything in it is safe for
// concurrent use unless a type says otherwise; a *Token held by the cache is
// immutable, and writers replace it rather than change it.
package token
