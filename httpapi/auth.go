package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"

	"github.com/valyala/fasthttp"
)

// credStatus is what a request says about its bearer token.
type credStatus uint8

const (
	credOK        credStatus = iota // one well-formed bearer token
	credMissing                     // no Authorization header (and no cookie)
	credMalformed                   // present but not exactly "Bearer <token>"
)

// bearer reads the bearer token of a request: exactly one Authorization
// header of the form "Bearer <token>" (scheme case-insensitive, one space,
// an RFC 6750 b64token). Anything else (an empty header, no scheme, another
// scheme, extra spaces, two tokens, two headers, control characters) is
// credMalformed, so that nothing odd ever reaches a lookup. The token aliases
// the request.
func bearer(h *fasthttp.RequestHeader) ([]byte, credStatus) {
	vals := h.PeekAll(fasthttp.HeaderAuthorization)
	switch len(vals) {
	case 0:
		return nil, credMissing
	case 1:
		return parseBearer(vals[0])
	default:
		return nil, credMalformed
	}
}

// parseBearer parses one Authorization header value.
func parseBearer(v []byte) ([]byte, credStatus) {
	const scheme = "bearer"
	if len(v) < len(scheme)+2 || v[len(scheme)] != ' ' {
		return nil, credMalformed
	}
	for i := 0; i < len(scheme); i++ {
		if v[i]|0x20 != scheme[i] { // ASCII lower-case; scheme has letters only
			return nil, credMalformed
		}
	}
	tok := v[len(scheme)+1:]
	if !validBearer(tok) {
		return nil, credMalformed
	}
	return tok, credOK
}

// validBearer reports whether b is an RFC 6750 b64token of at most
// maxTokenLen bytes: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" )
// *"=". Opaque tokens and JWTs both fit; spaces, commas, quotes, control
// and non-ASCII bytes do not.
func validBearer(b []byte) bool {
	if len(b) == 0 || len(b) > maxTokenLen {
		return false
	}
	i := 0
	for i < len(b) && b64tokenChar[b[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(b); i++ {
		if b[i] != '=' {
			return false
		}
	}
	return true
}

// b64tokenChar marks the bytes of an RFC 6750 b64token (before padding).
var b64tokenChar = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
	}
	return t
}()

// adminDigest is what the admin token is compared as: comparing fixed-size
// digests in constant time leaks neither the token nor its length.
func adminDigest(tok []byte) [sha256.Size]byte { return sha256.Sum256(tok) }

// checkAdmin answers 401 and returns false unless the request carries the
// admin token.
func (s *Server) checkAdmin(ctx *fasthttp.RequestCtx) bool {
	tok, st := bearer(&ctx.Request.Header)
	if st == credOK {
		got := adminDigest(tok)
		if subtle.ConstantTimeCompare(got[:], s.adminSum[:]) == 1 {
			return true
		}
	}
	msg := "this endpoint needs Authorization: Bearer <admin token>"
	challenge := `Bearer realm="tokencache admin"`
	if st != credMissing {
		msg = "the admin token is missing or wrong"
		challenge = `Bearer realm="tokencache admin", error="invalid_token"`
	}
	ctx.Response.Header.SetCanonical(hdrWWWAuthenticate, []byte(challenge))
	writeError(ctx, fasthttp.StatusUnauthorized, "unauthorized", msg)
	return false
}
