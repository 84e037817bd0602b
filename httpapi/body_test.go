package httpapi

import (
	"strings"
	"testing"
)

// TestBodyMembersExactlyOnce: a request body is read with case-sensitive
// member names, each at most once per object, and as valid UTF-8: anything
// else is a 400 that names the problem, and reaches no write. (A filter in
// front of the API that reads "scopes" must see what the API acts on.)
func TestBodyMembersExactlyOnce(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	key := "AAAAAAAAAAAAAAAAAAAAAQ"
	for _, tc := range []struct {
		name, method, path, body, want string
	}{
		{"case-variant duplicate", "POST", "/v1/tokens", `{"username":"bob","scopes":["read"],"Scopes":["admin"]}`, `"Scopes"`},
		{"exact duplicate", "POST", "/v1/tokens", `{"username":"bob","username":"mallory"}`, `"username"`},
		{"duplicate through an escape", "POST", "/v1/tokens", `{"username":"bob","user\u006eame":"mallory"}`, `"username"`},
		{"case variant alone", "POST", "/v1/tokens", `{"Username":"bob"}`, `"Username"`},
		{"Kelvin sign variant", "POST", "/v1/tokens", "{\"username\":\"bob\",\"scopes\":[],\"\u212aey\":1}", "\u212aey"},
		{"long s variant", "POST", "/v1/tokens", "{\"username\":\"bob\",\"\u017fcopes\":[\"admin\"]}", "\u017fcopes"},
		{"duplicate credential", "POST", "/v1/tokens", `{"username":"bob","credentials":{"pw":"a","pw":"b"}}`, `"pw"`},
		{"case-variant credential", "POST", "/v1/tokens", `{"username":"bob","credentials":{"pw":"a","PW":"b"}}`, `"PW"`},
		{"invalid UTF-8 in username", "POST", "/v1/tokens", "{\"username\":\"b\xffob\"}", "UTF-8"},
		{"invalid UTF-8 in name", "POST", "/v1/tokens", "{\"username\":\"bob\",\"name\":\"lap\xc3top\"}", "UTF-8"},
		{"lone surrogate escape", "POST", "/v1/tokens", `{"username":"bob\ud800"}`, "UTF-16"},
		{"modify duplicate", "PATCH", "/v1/tokens/" + key, `{"scopes":["read"],"scopes":["admin"]}`, `"scopes"`},
		{"modify case variant", "PATCH", "/v1/tokens/" + key, `{"Name":"x"}`, `"Name"`},
		{"delegate duplicate", "POST", "/v1/tokens/" + key + "/internal", `{"parent_token":"x","service":"a","service":"b"}`, `"service"`},
	} {
		r := ts.do(t, req{method: tc.method, path: tc.path, admin: true, contentType: "application/json", body: tc.body})
		wantError(t, tc.name, r, 400, "invalid_request")
		if !strings.Contains(r.body, tc.want) && !strings.Contains(r.json(t)["message"].(string), tc.want) {
			t.Errorf("%s: answer %s, want a message naming %s", tc.name, r.body, tc.want)
		}
	}
	wantNoWrites(t, "bodies with duplicate or case-variant members", f)
}

// TestBodyScannerAcceptsWhatIsValid keeps valid bodies working, escapes and
// non-ASCII text included.
func TestBodyScannerAcceptsWhatIsValid(t *testing.T) {
	for _, body := range []string{
		`{"username":"bob","scopes":["read","write"],"name":"caf\u00e9 \ud83d\ude00"}`,
		"{\"username\":\"bjørn\",\"name\":\"ноутбук 😀\"}",
		`{"username":"bob","credentials":{"a":"1","b":"2"},"uid":1,"no_expire":true}`,
		` {"username":"bob","name":"say \"hi\"\\\/\b\f\n\r\t"} `,
	} {
		if err := checkJSONBody([]byte(body)); err != nil {
			t.Errorf("checkJSONBody(%s) = %v, want nil", body, err)
		}
	}
}

// TestBodyNestingIsBounded: a body nested deeper than maxJSONDepth is a 400
// that says so, answered before the scanner goes deeper (each level costs
// the scanner a stack frame of about 1 KB: an 82 KB body of {"":{"":... was
// 16 MiB of goroutine stack), and reaches no write. maxJSONDepth levels are
// still scanned.
func TestBodyNestingIsBounded(t *testing.T) {
	f := newFake()
	ts := mustServer(t, f, nil)
	for _, tc := range []struct{ name, body string }{
		{"objects", `{"username":"bob","credentials":` + strings.Repeat(`{"":`, 700) + `1` + strings.Repeat(`}`, 700) + `}`},
		{"arrays", `{"username":"bob","scopes":` + strings.Repeat(`[`, 1900) + strings.Repeat(`]`, 1900) + `}`},
		{"one level too deep", strings.Repeat(`{"a":`, maxJSONDepth) + `{}` + strings.Repeat(`}`, maxJSONDepth)},
	} {
		r := ts.do(t, req{method: "POST", path: "/v1/tokens", admin: true, contentType: "application/json", body: tc.body})
		wantError(t, tc.name, r, 400, "invalid_request")
		if msg, _ := r.json(t)["message"].(string); !strings.Contains(msg, "nested deeper than 64 levels") {
			t.Errorf("%s: message %q, want it to say the body is nested deeper than 64 levels", tc.name, msg)
		}
	}
	wantNoWrites(t, "bodies nested too deep", f)

	deepest := strings.Repeat(`{"a":`, maxJSONDepth-1) + `{}` + strings.Repeat(`}`, maxJSONDepth-1)
	if err := checkJSONBody([]byte(deepest)); err != nil {
		t.Errorf("checkJSONBody(%d levels) = %v, want nil", maxJSONDepth, err)
	}
	deepest = strings.Repeat(`[`, maxJSONDepth) + strings.Repeat(`]`, maxJSONDepth)
	if err := checkJSONBody([]byte(deepest)); err != nil {
		t.Errorf("checkJSONBody(%d levels of arrays) = %v, want nil", maxJSONDepth, err)
	}
}
