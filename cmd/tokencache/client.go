package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// client talks to a tokencache node's HTTP API (DESIGN §5).
type client struct {
	base string // "http://127.0.0.1:8080", no trailing slash
	http *http.Client
	// adminToken returns the admin bearer token; it is only called for admin
	// calls, so that validate works without one.
	adminToken func() (string, error)
}

// maxResponseBytes bounds what the client reads from one response.
const maxResponseBytes = 16 << 20

// apiError is an error answer of the API: {"error": code, "message": …}.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// normalizeAddr accepts host:port or a URL.
func normalizeAddr(addr string) string {
	addr = strings.TrimRight(strings.TrimSpace(addr), "/")
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return addr
}

// adminTokenSource returns the admin token: the flag, else
// TOKENCACHE_ADMIN_TOKEN, else the file <dataDir>/admin.token.
func adminTokenSource(flag, envValue, dataDir string) func() (string, error) {
	return func() (string, error) {
		if flag != "" {
			return flag, nil
		}
		if envValue != "" {
			return envValue, nil
		}
		path := filepath.Join(dataDir, "admin.token")
		b, err := os.ReadFile(path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return "", fmt.Errorf("no admin token: pass --admin-token, set TOKENCACHE_ADMIN_TOKEN, or point --data-dir at the node's data directory (%s does not exist)", path)
			}
			return "", fmt.Errorf("cannot read admin token: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("admin token file %s is empty", path)
		}
		return tok, nil
	}
}

// response is a raw answer.
type response struct {
	status int
	body   []byte
}

// do sends one request: body is sent as JSON, or form-encoded when it is
// url.Values. Answers with a status in ok are returned as is; any other
// answer becomes an *apiError.
func (c *client) do(ctx context.Context, method, path string, query url.Values, body any, header http.Header, admin bool, ok ...int) (*response, error) {
	var rd io.Reader
	contentType := "application/json"
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, contentType = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		j, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("cannot encode request: %w", err)
		}
		rd = bytes.NewReader(j)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("cannot build request: %w", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "tokencache-cli/"+version)
	if admin {
		tok, err := c.adminToken()
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is said below, without the query
		}
		return nil, fmt.Errorf("cannot reach tokencache at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("cannot read the answer of %s %s: %w", method, path, err)
	}
	for _, s := range ok {
		if resp.StatusCode == s {
			return &response{status: resp.StatusCode, body: b}, nil
		}
	}
	return nil, decodeAPIError(resp.StatusCode, b)
}

func decodeAPIError(status int, body []byte) *apiError {
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return &apiError{Status: status, Code: e.Error, Message: e.Message}
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &apiError{Status: status, Code: "http_" + strconv.Itoa(status), Message: msg}
}

// issueRequest is the body of POST /v1/tokens.
type issueRequest struct {
	Username  string   `json:"username"`
	Realm     string   `json:"realm,omitempty"`
	UID       *int64   `json:"uid,omitempty"`
	Type      string   `json:"type,omitempty"`
	Name      string   `json:"name,omitempty"`
	Scopes    []string `json:"scopes,omitempty"`
	ExpiresIn *int64   `json:"expires_in,omitempty"`
	NoExpire  bool     `json:"no_expire,omitempty"`
	Parent    string   `json:"parent,omitempty"`
	Service   string   `json:"service,omitempty"`
	Format    string   `json:"format,omitempty"`
	Audience  []string `json:"audience,omitempty"`
}

// object is a JSON object of an answer, kept generic so that fields added
// to the API show up without a client change.
type object map[string]any

// issue creates a token; the answer holds "token" (its text) and "key".
func (c *client) issue(ctx context.Context, req issueRequest, idempotencyKey string) (object, error) {
	h := http.Header{}
	if idempotencyKey != "" {
		h.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/tokens", nil, req, h, true, http.StatusCreated, http.StatusOK)
	if err != nil {
		return nil, err
	}
	return decodeObject(resp.body)
}

// validate asks whether tok is valid with every scope. The token travels
// only in the Authorization header. 200, 401 and 403 are answers; valid is
// true only for 200 with "active": true.
func (c *client) validate(ctx context.Context, tok string, scopes []string) (answer object, valid bool, err error) {
	q := url.Values{}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	h := http.Header{"Authorization": {"Bearer " + tok}}
	resp, err := c.do(ctx, http.MethodGet, "/v1/validate", q, nil, h, false, http.StatusOK, http.StatusUnauthorized, http.StatusForbidden)
	if err != nil {
		return nil, false, err
	}
	answer, err = decodeObject(resp.body)
	if err != nil {
		return nil, false, err
	}
	if _, ok := answer["active"]; !ok {
		answer["active"] = false
	}
	active, _ := answer["active"].(bool)
	return answer, resp.status == http.StatusOK && active, nil
}

// revoke revokes key and its descendants and returns every revoked key.
func (c *client) revoke(ctx context.Context, key string) (object, error) {
	resp, err := c.do(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(key), nil, nil, nil, true, http.StatusOK)
	if err != nil {
		return nil, err
	}
	return decodeObject(resp.body)
}

// revokeText revokes a token by its text through POST /v1/revoke (RFC
// 7009): an opaque token or a JWT, of this cluster or of a trusted issuer.
// The text travels only in the form body. An unknown token is not an error
// (RFC 7009 answers 200).
func (c *client) revokeText(ctx context.Context, tok string) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/revoke", nil, url.Values{"token": {tok}}, nil, false, http.StatusOK)
	return err
}

// info returns a token's record (never its secret).
func (c *client) info(ctx context.Context, key string) (object, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/tokens/"+url.PathEscape(key), nil, nil, nil, true, http.StatusOK)
	if err != nil {
		return nil, err
	}
	return decodeObject(resp.body)
}

// list returns tokens matching the filters (limit 0 = the server's default).
// It accepts a bare JSON array or an object with a "tokens" array.
func (c *client) list(ctx context.Context, username, typ string, limit int) ([]object, error) {
	q := url.Values{}
	if username != "" {
		q.Set("username", username)
	}
	if typ != "" {
		q.Set("type", typ)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	resp, err := c.do(ctx, http.MethodGet, "/v1/tokens", q, nil, nil, true, http.StatusOK)
	if err != nil {
		return nil, err
	}
	var list []object
	if err := unmarshalJSON(resp.body, &list); err == nil {
		return list, nil
	}
	var wrapped struct {
		Tokens []object `json:"tokens"`
	}
	if err := unmarshalJSON(resp.body, &wrapped); err != nil {
		return nil, fmt.Errorf("cannot decode the token list: %w", err)
	}
	return wrapped.Tokens, nil
}

func decodeObject(b []byte) (object, error) {
	var o object
	if err := unmarshalJSON(b, &o); err != nil || o == nil {
		return nil, fmt.Errorf("cannot decode the answer: not a JSON object")
	}
	return o, nil
}

// unmarshalJSON decodes keeping numbers as json.Number (a uid of 1000000
// must not print as 1e+06).
func unmarshalJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// newHTTPClient returns the client's HTTP client.
func newHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout}
}
