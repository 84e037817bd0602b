package httpapi

import (
	"strconv"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/tokencache/tokencache/token"
)

// Responses are JSON appended by hand into the response's own (pooled) body
// buffer: no reflection, no intermediate buffers, no allocation on the hot
// path. Request bodies are decoded with encoding/json (body.go).

var (
	contentTypeJSON = []byte("application/json")
	hdrCacheControl = []byte("Cache-Control")
	valNoStore      = []byte("no-store")
)

// beginBody returns the response body buffer emptied, for appending; the
// caller must hand it back with endBody. It reuses the buffer fasthttp pools
// for the response, so steady-state responses allocate nothing.
func beginBody(ctx *fasthttp.RequestCtx) []byte {
	return ctx.Response.SwapBody(nil)[:0]
}

// endBody makes b the response body, as JSON that must not be cached.
func endBody(ctx *fasthttp.RequestCtx, b []byte) {
	ctx.Response.SwapBody(b)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.Header.SetCanonical(hdrCacheControl, valNoStore)
}

// writeError answers status with {"error":code,"message":message}.
func writeError(ctx *fasthttp.RequestCtx, status int, code, message string) {
	ctx.SetStatusCode(status)
	b := beginBody(ctx)
	b = append(b, `{"error":`...)
	b = appendString(b, code)
	b = append(b, `,"message":`...)
	b = appendString(b, message)
	b = append(b, '}')
	endBody(ctx, b)
}

// WriteError answers status with the error envelope
// {"error":code,"message":message} and the headers of every JSON answer,
// for handlers registered with Server.Handle.
func WriteError(ctx *fasthttp.RequestCtx, status int, code, message string) {
	writeError(ctx, status, code, message)
}

// WriteJSON answers status with body, an encoded JSON value, and the
// headers of every JSON answer, for handlers registered with Server.Handle.
func WriteJSON(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.SetStatusCode(status)
	endBody(ctx, append(beginBody(ctx), body...))
}

// writeRaw answers status with a fixed JSON body.
func writeRaw(ctx *fasthttp.RequestCtx, status int, body string) {
	ctx.SetStatusCode(status)
	b := beginBody(ctx)
	b = append(b, body...)
	endBody(ctx, b)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Like encoding/json it escapes
// quotes, backslashes, control characters, U+2028 and U+2029, and replaces
// invalid UTF-8 with U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendKey appends a key as a JSON string (base64url needs no escaping).
func appendKey(b []byte, k token.Key) []byte {
	b = append(b, '"')
	b, _ = k.AppendText(b)
	return append(b, '"')
}

// appendTime appends t as an RFC 3339 JSON string, or null when unset.
func appendTime(b []byte, t token.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.AppendRFC3339(b)
	return append(b, '"')
}

// appendScopes appends a scope set as a JSON array ([] when empty). Scopes
// are validated scope-tokens, but a record is escaped like any string all
// the same: it may come from a store.
func appendScopes(b []byte, s token.Scopes) []byte {
	b = append(b, '[')
	rest := string(s)
	for first := true; rest != ""; first = false {
		if !first {
			b = append(b, ',')
		}
		i := 0
		for i < len(rest) && rest[i] != ' ' {
			i++
		}
		b = appendString(b, rest[:i])
		if i == len(rest) {
			break
		}
		rest = rest[i+1:]
	}
	return append(b, ']')
}

// infoForm selects the optional members of a token's JSON form.
type infoForm struct {
	state    token.State
	hasState bool // add "state"
	audit    bool // always add "parent" (null when none): the audit listing
}

// appendTokenFields appends the members of a token's public JSON form,
// without the enclosing braces, so that callers can add members (the issue
// answer adds "token"). It is the one place that decides what of a token is
// shown: never the secret hash, the credentials or the sealed secret, only
// whether credentials exist.
//
//	key, username, realm, uid (omitted when none), type, format,
//	name, service, client_id, parent (omitted when empty),
//	scopes ([] when none), created, expires (null = never),
//	last_used, revoked_at (null when unset), state (when known),
//	has_credentials
func appendTokenFields(b []byte, t *token.Token, f infoForm) []byte {
	b = append(b, `"key":`...)
	b = appendKey(b, t.Key)
	b = append(b, `,"username":`...)
	b = appendString(b, t.Username)
	b = append(b, `,"realm":`...)
	b = appendString(b, t.Realm)
	if t.HasUID {
		b = append(b, `,"uid":`...)
		b = strconv.AppendInt(b, t.UID, 10)
	}
	b = append(b, `,"type":`...)
	b = appendString(b, t.Type.String())
	b = append(b, `,"format":`...)
	b = appendString(b, t.Format.String())
	if n := t.Name(); n != "" {
		b = append(b, `,"name":`...)
		b = appendString(b, n)
	}
	if sv := t.Service(); sv != "" {
		b = append(b, `,"service":`...)
		b = appendString(b, sv)
	}
	if c := t.ClientID(); c != "" {
		b = append(b, `,"client_id":`...)
		b = appendString(b, c)
	}
	if p := t.Parent(); !p.IsZero() {
		b = append(b, `,"parent":`...)
		b = appendKey(b, p)
	} else if f.audit {
		b = append(b, `,"parent":null`...)
	}
	b = append(b, `,"scopes":`...)
	b = appendScopes(b, t.Scopes)
	if t.Ext != nil && t.Ext.Audience != "" {
		b = append(b, `,"audience":`...)
		b = appendScopes(b, token.Scopes(t.Ext.Audience)) // a space-separated list too
	}
	b = append(b, `,"created":`...)
	b = appendTime(b, t.Created)
	b = append(b, `,"expires":`...)
	b = appendTime(b, t.Expires)
	b = append(b, `,"last_used":`...)
	b = appendTime(b, t.LastUsed)
	b = append(b, `,"revoked_at":`...)
	b = appendTime(b, t.RevokedAt)
	if f.hasState {
		b = append(b, `,"state":`...)
		b = appendString(b, f.state.String())
	}
	b = append(b, `,"has_credentials":`...)
	b = strconv.AppendBool(b, t.Ext != nil && len(t.Ext.Credentials) > 0)
	return b
}

// appendTokenList appends {"<name>":[token, …]}.
func appendTokenList(b []byte, name string, list []*token.Token, f infoForm) []byte {
	b = append(b, '{')
	b = appendString(b, name)
	b = append(b, ":["...)
	for i, t := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = appendTokenFields(b, t, f)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// writeTokenList answers 200 with {"<name>":[token, …]}.
func writeTokenList(ctx *fasthttp.RequestCtx, name string, list []*token.Token, f infoForm) {
	ctx.SetStatusCode(fasthttp.StatusOK)
	endBody(ctx, appendTokenList(beginBody(ctx), name, list, f))
}
