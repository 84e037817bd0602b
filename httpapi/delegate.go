package httpapi

import (
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// POST /v1/tokens/{key}/internal and …/notebook: hand out a delegated child
// of the parent token {key}, reusing one that fits (200) or minting one
// (201). The caller proves possession of the parent with its full text in
// parent_token, whose key must be the path's (400 otherwise).

// internalBody is POST /v1/tokens/{key}/internal.
type internalBody struct {
	ParentToken  string   `json:"parent_token"`
	Service      string   `json:"service"`
	Scopes       []string `json:"scopes"`
	MinExpiresIn *int64   `json:"min_expires_in"` // seconds a reused child must still live (default 0: valid now)
	ExpiresIn    *int64   `json:"expires_in"`     // lifetime of a new child (default: the parent's)
}

// notebookBody is POST /v1/tokens/{key}/notebook.
type notebookBody struct {
	ParentToken  string `json:"parent_token"`
	MinExpiresIn *int64 `json:"min_expires_in"`
	ExpiresIn    *int64 `json:"expires_in"`
}

func (s *Server) handleDelegateInternal(ctx *fasthttp.RequestCtx) {
	const route = "/v1/tokens/{key}/internal"
	k, ok := pathKey(ctx)
	if !ok {
		return
	}
	var body internalBody
	if !decodeJSON(ctx, &body) {
		return
	}
	d := token.Delegation{Type: token.TypeInternal, Service: body.Service}
	err := token.ValidText("service", body.Service, token.MaxServiceLen, true)
	if err == nil {
		d.Scopes, err = token.NewScopes(body.Scopes)
	}
	if err != nil {
		s.fail(ctx, route, err)
		return
	}
	s.delegate(ctx, route, k, body.ParentToken, d, body.MinExpiresIn, body.ExpiresIn)
}

func (s *Server) handleDelegateNotebook(ctx *fasthttp.RequestCtx) {
	const route = "/v1/tokens/{key}/notebook"
	k, ok := pathKey(ctx)
	if !ok {
		return
	}
	var body notebookBody
	if !decodeJSON(ctx, &body) {
		return
	}
	d := token.Delegation{Type: token.TypeNotebook}
	s.delegate(ctx, route, k, body.ParentToken, d, body.MinExpiresIn, body.ExpiresIn)
}

// delegate checks the common part of both requests and calls the service.
func (s *Server) delegate(ctx *fasthttp.RequestCtx, route string, k token.Key, parent string,
	d token.Delegation, minExpiresIn, expiresIn *int64) {
	req, err := s.delegateRequest(k, parent, d, minExpiresIn, expiresIn)
	if err != nil {
		s.fail(ctx, route, err)
		return
	}
	rctx, cancel := s.requestContext()
	defer cancel()
	iss, err := s.svc.Delegate(rctx, req)
	if err != nil {
		s.fail(ctx, route, err)
		return
	}
	if iss.Record == nil {
		s.fail(ctx, route, errNoRecord)
		return
	}
	status := fasthttp.StatusCreated
	if iss.Reused {
		status = fasthttp.StatusOK
	}
	writeIssued(ctx, status, iss)
}

func (s *Server) delegateRequest(k token.Key, parent string, d token.Delegation, minExpiresIn, expiresIn *int64) (tokens.DelegateRequest, error) {
	req := tokens.DelegateRequest{ParentToken: parent, Delegation: d}
	if parent == "" {
		return req, fmt.Errorf("%w: parent_token is required", token.ErrInvalid)
	}
	pk, ok := tokenKey(s.formats, parent)
	if !ok {
		return req, fmt.Errorf("%w: parent_token is not a token", token.ErrInvalid)
	}
	if pk != k {
		return req, fmt.Errorf("%w: parent_token is not the token named by the path", token.ErrInvalid)
	}
	now := s.now()
	var minLife time.Duration
	if minExpiresIn != nil {
		var err error
		if minLife, err = lifetime("min_expires_in", *minExpiresIn, true, now); err != nil {
			return req, err
		}
	}
	if expiresIn != nil {
		life, err := lifetime("expires_in", *expiresIn, false, now)
		if err != nil {
			return req, err
		}
		if life < minLife {
			return req, fmt.Errorf("%w: expires_in must be at least min_expires_in", token.ErrInvalid)
		}
		req.ExpiresIn = life
	}
	req.Delegation.MinExpires = token.At(now.Add(minLife))
	return req, nil
}

// tokenKey returns the key of a token's text in one of formats (an opaque
// token's key). It checks what the text proves by itself; the service checks
// the token against its record. A JWT is not a token until a JWT format is
// registered: it is refused here like any other text, unread.
func tokenKey(formats *token.Formats, text string) (token.Key, bool) {
	if len(text) > maxTokenLen {
		return token.Key{}, false
	}
	_, p, err := formats.Parse([]byte(text))
	return p.Key, err == nil
}
