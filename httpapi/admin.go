package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// The admin endpoints. The admin token is checked (wrap) before any of
// these run; each then checks its whole input before it calls the service,
// so that bad input changes nothing.

const (
	routeTokens   = "/v1/tokens"
	routeTokenKey = "/v1/tokens/{key}"
)

// issueBody is POST /v1/tokens.
type issueBody struct {
	Username    string            `json:"username"`
	Realm       string            `json:"realm"`
	UID         *int64            `json:"uid"`
	Type        string            `json:"type"`
	Name        string            `json:"name"`
	Scopes      []string          `json:"scopes"`
	ExpiresIn   *int64            `json:"expires_in"` // seconds
	NoExpire    bool              `json:"no_expire"`
	Parent      string            `json:"parent"` // key
	Service     string            `json:"service"`
	ClientID    string            `json:"client_id"`
	Format      string            `json:"format"`
	Audience    audienceList      `json:"audience"`
	Credentials map[string]string `json:"credentials"`
}

// maxAudiences bounds the audience of one issue request.
const maxAudiences = 16

// audienceList is the "audience" of an issue request: one string or a list
// of them (as the aud claim is).
type audienceList []string

// UnmarshalJSON implements json.Unmarshaler.
func (a *audienceList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audienceList{one}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("%w: audience must be a string or a list of strings", token.ErrInvalid)
	}
	*a = list
	return nil
}

// audience checks the syntax of an audience list and returns it space
// separated (token.Extra.Audience); whether the audience is allowed is the
// token service's decision (tokens.jwt.audiences).
func (a audienceList) audience() (string, error) {
	if len(a) > maxAudiences {
		return "", fmt.Errorf("%w: audience: at most %d values", token.ErrInvalid, maxAudiences)
	}
	for _, v := range a {
		// An audience is an RFC 7519 StringOrURI; here, like a scope, one
		// word of printable ASCII, so that the list can be kept space
		// separated.
		if err := token.ValidScope(v); err != nil {
			return "", fmt.Errorf("%w: audience %q must be 1 to %d printable ASCII characters without space, '\"' or '\\'", token.ErrInvalid, v, token.MaxScopeLen)
		}
	}
	return strings.Join(a, " "), nil
}

// request checks b and turns it into an IssueRequest; a body without a
// format gets defaultFormat (tokens.format).
func (b *issueBody) request(defaultFormat token.Format, now time.Time) (tokens.IssueRequest, error) {
	req := tokens.IssueRequest{
		Username: b.Username, Realm: b.Realm, Name: b.Name,
		Service: b.Service, ClientID: b.ClientID,
		NoExpire: b.NoExpire, Credentials: b.Credentials,
	}
	if err := token.ValidUsername(b.Username); err != nil {
		return req, err
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"realm", b.Realm, token.MaxRealmLen}, {"name", b.Name, token.MaxNameLen},
		{"service", b.Service, token.MaxServiceLen}, {"client_id", b.ClientID, token.MaxClientIDLen},
	} {
		if err := token.ValidText(f.name, f.v, f.max, false); err != nil {
			return req, err
		}
	}
	if b.UID != nil {
		if *b.UID < 0 {
			return req, fmt.Errorf("%w: uid must not be negative", token.ErrInvalid)
		}
		req.UID, req.HasUID = *b.UID, true
	}
	var err error
	if b.Type != "" {
		if req.Type, err = token.ParseType(b.Type); err != nil {
			return req, err
		}
	}
	req.Format = defaultFormat
	if b.Format != "" {
		if req.Format, err = token.ParseFormat(b.Format); err != nil {
			return req, err
		}
	}
	if req.Audience, err = b.Audience.audience(); err != nil {
		return req, err
	}
	if req.Audience != "" && req.Format != token.FormatJWT {
		return req, fmt.Errorf("%w: audience is for JWTs (format jwt); a %s token has none", token.ErrInvalid, req.Format)
	}
	if req.Scopes, err = token.NewScopes(b.Scopes); err != nil {
		return req, err
	}
	if b.ExpiresIn != nil {
		if b.NoExpire {
			return req, fmt.Errorf("%w: no_expire and expires_in cannot be combined", token.ErrInvalid)
		}
		if req.ExpiresIn, err = lifetime("expires_in", *b.ExpiresIn, false, now); err != nil {
			return req, err
		}
	}
	if b.Parent != "" {
		if req.Parent, err = token.ParseKey(b.Parent); err != nil {
			return req, fmt.Errorf("%w: parent: not a token key (22 base64url characters, not all zero)", token.ErrInvalid)
		}
	}
	for k := range b.Credentials {
		if k == "" {
			return req, fmt.Errorf("%w: credentials: names must not be empty", token.ErrInvalid)
		}
	}
	return req, nil
}

// lifetime checks the syntax of a lifetime in seconds: positive (or zero
// when allowed), and ending within what a token.Time holds (maxTime). How
// long a token may live is the token service's to judge
// (tokens.max_lifetime, tokens.LifetimeCeiling).
func lifetime(field string, sec int64, zeroOK bool, now time.Time) (time.Duration, error) {
	if sec < 0 || (sec == 0 && !zeroOK) {
		if zeroOK {
			return 0, fmt.Errorf("%w: %s must not be negative", token.ErrInvalid, field)
		}
		return 0, fmt.Errorf("%w: %s must be a positive number of seconds", token.ErrInvalid, field)
	}
	if sec > int64(maxTime.Sub(now)/time.Second) {
		return 0, fmt.Errorf("%w: %s is too large: it must end before %d; use no_expire for tokens that never expire", token.ErrInvalid, field, maxTime.Year())
	}
	return time.Duration(sec) * time.Second, nil
}

// checkIdempotencyKey answers 400 unless the Idempotency-Key header is
// absent or 1 to 255 visible ASCII characters.
func checkIdempotencyKey(ctx *fasthttp.RequestCtx) (string, bool) {
	vals := ctx.Request.Header.PeekAll("Idempotency-Key")
	if len(vals) == 0 {
		return "", true
	}
	v := vals[0]
	ok := len(vals) == 1 && len(v) > 0 && len(v) <= tokens.MaxIdempotencyKeyLen
	for _, c := range v {
		if c < 0x21 || c > 0x7e {
			ok = false
		}
	}
	if !ok {
		writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest,
			fmt.Sprintf("Idempotency-Key must be one header of 1 to %d visible ASCII characters", tokens.MaxIdempotencyKeyLen))
		return "", false
	}
	return string(v), true
}

func (s *Server) handleIssue(ctx *fasthttp.RequestCtx) {
	idem, ok := checkIdempotencyKey(ctx)
	if !ok {
		return
	}
	var body issueBody
	if !decodeJSON(ctx, &body) {
		return
	}
	req, err := body.request(s.cfg.IssueFormat, s.now())
	if err != nil {
		s.fail(ctx, routeTokens, err)
		return
	}
	req.IdempotencyKey = idem
	rctx, cancel := s.requestContext()
	defer cancel()
	iss, err := s.svc.Issue(rctx, req)
	if err != nil {
		s.fail(ctx, routeTokens, err)
		return
	}
	if iss.Record == nil {
		s.fail(ctx, routeTokens, errNoRecord)
		return
	}
	if iss.Reused {
		ctx.Response.Header.Set("Idempotent-Replayed", "true")
	}
	writeIssued(ctx, fasthttp.StatusCreated, iss)
}

// errNoRecord is logged when the service hands back an Issued without a
// record (a bug): the caller gets 500.
var errNoRecord = errors.New("token service returned no record for an issued token")

// writeIssued answers {"token":"<full text>", …token…}: the one time a
// token's text is shown.
func writeIssued(ctx *fasthttp.RequestCtx, status int, iss tokens.Issued) {
	if status == fasthttp.StatusCreated {
		loc, _ := iss.Record.Key.AppendText([]byte(routeTokens + "/"))
		ctx.Response.Header.SetBytesV(fasthttp.HeaderLocation, loc)
	}
	ctx.SetStatusCode(status)
	b := beginBody(ctx)
	b = append(b, `{"token":`...)
	b = appendString(b, iss.Token)
	b = append(b, ',')
	b = appendTokenFields(b, iss.Record, infoForm{})
	b = append(b, '}')
	endBody(ctx, b)
}

// pathKey reads the {key} of the path; it answers 400 for a bad key.
func pathKey(ctx *fasthttp.RequestCtx) (token.Key, bool) {
	s, _ := ctx.UserValue("key").(string)
	k, err := token.ParseKey(s)
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest, "the path must name a token key: 22 base64url characters")
		return token.Key{}, false
	}
	return k, true
}

// barrier honours ?consistency=consistent (a linearizable read) before a
// read; it answers 400 or 503 and returns false when it cannot.
func (s *Server) barrier(rctx context.Context, ctx *fasthttp.RequestCtx, route string) bool {
	consistent, ok := parseConsistency(ctx.QueryArgs().Peek("consistency"))
	if !ok {
		writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest, msgBadConsistency)
		return false
	}
	if consistent {
		if err := s.svc.Consistent(rctx); err != nil {
			s.fail(ctx, route, err)
			return false
		}
	}
	return true
}

func (s *Server) handleInfo(ctx *fasthttp.RequestCtx) {
	k, ok := pathKey(ctx)
	if !ok {
		return
	}
	rctx, cancel := s.requestContext()
	defer cancel()
	if !s.barrier(rctx, ctx, routeTokenKey) {
		return
	}
	t, st, err := s.svc.Info(rctx, k)
	if err != nil {
		s.fail(ctx, routeTokenKey, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	b := append(beginBody(ctx), '{')
	b = appendTokenFields(b, t, infoForm{state: st, hasState: true})
	endBody(ctx, append(b, '}'))
}

// modifyBody is PATCH /v1/tokens/{key}; absent members are kept.
type modifyBody struct {
	Name     *string   `json:"name"`
	Scopes   *[]string `json:"scopes"`
	Expires  *string   `json:"expires"` // RFC 3339
	NoExpire bool      `json:"no_expire"`
}

func (b *modifyBody) request(k token.Key, now time.Time) (tokens.ModifyRequest, error) {
	req := tokens.ModifyRequest{Key: k, Name: b.Name, NoExpire: b.NoExpire}
	if b.Name == nil && b.Scopes == nil && b.Expires == nil && !b.NoExpire {
		return req, fmt.Errorf("%w: nothing to change: give name, scopes, expires or no_expire", token.ErrInvalid)
	}
	if b.Name != nil {
		if err := token.ValidText("name", *b.Name, token.MaxNameLen, false); err != nil {
			return req, err
		}
	}
	if b.Scopes != nil {
		sc, err := token.NewScopes(*b.Scopes)
		if err != nil {
			return req, err
		}
		req.Scopes = &sc
	}
	if b.Expires != nil {
		if b.NoExpire {
			return req, fmt.Errorf("%w: no_expire and expires cannot be combined", token.ErrInvalid)
		}
		t, err := time.Parse(time.RFC3339Nano, *b.Expires)
		if err != nil {
			return req, fmt.Errorf("%w: expires must be an RFC 3339 time such as 2030-01-02T15:04:05Z", token.ErrInvalid)
		}
		if t.Unix() <= 0 || t.After(maxTime) {
			return req, fmt.Errorf("%w: expires must be after 1970 and before %d", token.ErrInvalid, maxTime.Year())
		}
		t = t.UTC()
		req.Expires = &t
	}
	return req, nil
}

func (s *Server) handleModify(ctx *fasthttp.RequestCtx) {
	k, ok := pathKey(ctx)
	if !ok {
		return
	}
	var body modifyBody
	if !decodeJSON(ctx, &body) {
		return
	}
	req, err := body.request(k, s.now())
	if err != nil {
		s.fail(ctx, routeTokenKey, err)
		return
	}
	rctx, cancel := s.requestContext()
	defer cancel()
	t, err := s.svc.Modify(rctx, req)
	if err != nil {
		s.fail(ctx, routeTokenKey, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	b := append(beginBody(ctx), '{')
	b = appendTokenFields(b, t, infoForm{})
	endBody(ctx, append(b, '}'))
}

func (s *Server) handleRevokeKey(ctx *fasthttp.RequestCtx) {
	k, ok := pathKey(ctx)
	if !ok {
		return
	}
	rctx, cancel := s.requestContext()
	defer cancel()
	keys, err := s.svc.Revoke(rctx, k)
	if err != nil {
		s.fail(ctx, routeTokenKey, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	b := append(beginBody(ctx), `{"revoked":[`...)
	for i, rk := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendKey(b, rk)
	}
	endBody(ctx, append(b, "]}"...))
}

// listParams are the query parameters GET /v1/tokens accepts; any other is
// a 400, so that a typo ("usrname=") cannot list every token.
var listParams = map[string]bool{"username": true, "type": true, "limit": true, "with_parents": true, "consistency": true}

func (s *Server) handleList(ctx *fasthttp.RequestCtx) {
	args := ctx.QueryArgs()
	// No limit (0) is the service's default; the service also caps it.
	var q tokens.ListQuery
	audit := false
	for k := range args.All() {
		if !listParams[string(k)] {
			writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest,
				fmt.Sprintf("unknown parameter %q (want username, type, limit, with_parents or consistency)", k))
			return
		}
	}
	if v := args.Peek("username"); len(v) > 0 {
		q.Username = string(v)
		if err := token.ValidText("username", q.Username, token.MaxUsernameLen, false); err != nil {
			s.fail(ctx, routeTokens, err)
			return
		}
	}
	if v := args.Peek("type"); len(v) > 0 {
		t, err := token.ParseType(string(v))
		if err != nil {
			s.fail(ctx, routeTokens, err)
			return
		}
		q.Type = t
	}
	if args.Has("limit") {
		n, err := strconv.Atoi(string(args.Peek("limit")))
		if err != nil || n < 1 {
			writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest, "limit must be a positive integer")
			return
		}
		q.Limit = n
	}
	if args.Has("with_parents") {
		var ok bool
		if audit, ok = parseBool(args.Peek("with_parents")); !ok {
			writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest, "with_parents must be true or false")
			return
		}
	}
	rctx, cancel := s.requestContext()
	defer cancel()
	if !s.barrier(rctx, ctx, routeTokens) {
		return
	}
	list, err := s.svc.List(rctx, q)
	if err != nil {
		s.fail(ctx, routeTokens, err)
		return
	}
	writeTokenList(ctx, "tokens", list, infoForm{audit: audit})
}

func (s *Server) handleChildren(ctx *fasthttp.RequestCtx) {
	const route = "/v1/tokens/{key}/children"
	k, ok := pathKey(ctx)
	if !ok {
		return
	}
	rctx, cancel := s.requestContext()
	defer cancel()
	if !s.barrier(rctx, ctx, route) {
		return
	}
	list, err := s.svc.Children(rctx, k)
	if err != nil {
		s.fail(ctx, route, err)
		return
	}
	writeTokenList(ctx, "children", list, infoForm{})
}

func (s *Server) handleStats(ctx *fasthttp.RequestCtx) {
	rctx, cancel := s.requestContext()
	defer cancel()
	st, err := s.svc.Stats(rctx)
	if err != nil {
		s.fail(ctx, "/v1/stats", err)
		return
	}
	// encoding/json cannot write NaN or ±Inf (a hit rate before any
	// lookup is 0/0).
	for _, f := range []*float64{&st.CacheHitRate, &st.PersistLagSeconds} {
		if math.IsNaN(*f) || math.IsInf(*f, 0) {
			*f = 0
		}
	}
	writeJSONValue(ctx, fasthttp.StatusOK, st)
}

func (s *Server) handleOrphaned(ctx *fasthttp.RequestCtx) {
	rctx, cancel := s.requestContext()
	defer cancel()
	list, err := s.svc.Orphaned(rctx)
	if err != nil {
		s.fail(ctx, "/v1/admin/orphaned", err)
		return
	}
	writeTokenList(ctx, "orphaned", list, infoForm{audit: true})
}

func (s *Server) handlePurge(ctx *fasthttp.RequestCtx) {
	const route = "/v1/admin/purge"
	includeExpired := false
	if args := ctx.QueryArgs(); args.Has("include_expired") {
		var ok bool
		if includeExpired, ok = parseBool(args.Peek("include_expired")); !ok {
			writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest, "include_expired must be true or false")
			return
		}
	}
	rctx, cancel := s.requestContext()
	defer cancel()
	list, err := s.svc.Purge(rctx, includeExpired)
	if err != nil {
		s.fail(ctx, route, err)
		return
	}
	writeTokenList(ctx, "purged", list, infoForm{})
}

// parseBool reads a boolean query parameter: true/false/1/0 ("" = true, for
// a bare ?with_parents).
func parseBool(v []byte) (val, ok bool) {
	switch string(v) {
	case "", "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

// writeJSONValue answers status with v encoded by encoding/json (for
// answers off the hot path whose shape is a Go struct).
func writeJSONValue(ctx *fasthttp.RequestCtx, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeError(ctx, fasthttp.StatusInternalServerError, codeInternal, "internal error")
		return
	}
	ctx.SetStatusCode(status)
	endBody(ctx, append(beginBody(ctx), data...))
}
