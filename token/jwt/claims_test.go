package jwt

import (
	"testing"

	"github.com/tokencache/tokencache/token"
)

func TestCanonicalScopes(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"", true}, {"a", true}, {"a b c", true}, {"a:b read", true},
		{"b a", false}, {"a a", false}, {"a  b", false}, {" a", false}, {"a ", false}, {"a\"", false},
	}
	for _, tt := range tests {
		got, ok := canonicalScopes(tt.in)
		if ok != tt.want || (ok && string(got) != tt.in) {
			t.Errorf("canonicalScopes(%q) = %q, %v; want ok %v", tt.in, got, ok, tt.want)
		}
	}
	// A non-canonical but valid scope claim is still accepted, in canonical form.
	rec, err := recordOf(&Claims{Scope: "write read"}, token.NewKey())
	if err == nil {
		t.Errorf("recordOf(no sub) = %v, want refused", rec)
	}
	c := &Claims{Scope: "write read"}
	c.Subject = "bob"
	if rec, err = recordOf(c, token.NewKey()); err != nil || rec.Scopes != "read write" {
		t.Errorf("recordOf(scope \"write read\") = %v, %v; want scopes \"read write\"", rec, err)
	}
}
