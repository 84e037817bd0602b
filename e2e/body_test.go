package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestRequestBodiesAreReadAsWritten sends the bodies of issue 9 scenario 11
// to a real node: duplicate and case-variant members, invalid UTF-8, and
// usernames with characters that would travel into X-Token-User. Each must
// be refused with 400 naming the problem, and issue nothing.
func TestRequestBodiesAreReadAsWritten(t *testing.T) {
	n := startNode(t, "", nil)
	admin := n.adminToken()
	for _, tc := range []struct{ name, body, want string }{
		{"scopes twice in two cases", `{"username":"bob","scopes":["read"],"Scopes":["admin"]}`, `Scopes`},
		{"username twice", `{"username":"bob","username":"mallory"}`, `username`},
		{"invalid UTF-8 username", "{\"username\":\"b\xffob\"}", "UTF-8"},
		{"invalid UTF-8 name", "{\"username\":\"bob\",\"name\":\"lap\xfftop\"}", "UTF-8"},
		{"comma in username", `{"username":"bob,admin"}`, "username"},
		{"bidi control in username", `{"username":"bob\u202enimda"}`, "username"},
		{"control character in username", `{"username":"bob\u0007"}`, "username"},
		{"space in username", `{"username":"bob admin"}`, "username"},
	} {
		req, _ := http.NewRequest("POST", n.addr+"/v1/tokens", strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var out struct{ Error, Message string }
		json.Unmarshal(raw, &out)
		if resp.StatusCode != 400 || out.Error != "invalid_request" || !strings.Contains(out.Message, tc.want) {
			t.Errorf("%s: POST /v1/tokens = %d %s, want 400 invalid_request naming %s", tc.name, resp.StatusCode, raw, tc.want)
		}
	}
	var list struct {
		Tokens []json.RawMessage `json:"tokens"`
	}
	for _, u := range []string{"bob", "mallory"} {
		if code, _ := n.call("GET", "/v1/tokens?username="+u, admin, nil, &list); code != 200 || len(list.Tokens) != 0 {
			t.Errorf("GET /v1/tokens?username=%s = %d with %d tokens, want 200 and none issued", u, code, len(list.Tokens))
		}
	}
	// A valid non-ASCII username still works, and reaches the header as sent.
	tok := n.issue(admin, map[string]any{"username": "bjørn.olsen", "scopes": []string{"read"}})
	req, _ := http.NewRequest("GET", n.addr+"/v1/validate", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Token-User") != "bjørn.olsen" {
		t.Errorf("validate = %d with X-Token-User %q, want 200 and bjørn.olsen", resp.StatusCode, resp.Header.Get("X-Token-User"))
	}
}
