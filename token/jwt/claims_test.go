package jwt

import (
	"reflect"
	"slices"
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

// parsed, what golang-jwt decodes into, has exactly the JSON fields of
// Claims: a claim added to one and not the other would be lost.
func TestParsedMirrorsClaims(t *testing.T) {
	fields := func(v any) []string {
		var out []string
		walk := func(rt reflect.Type) {
			for i := range rt.NumField() {
				f := rt.Field(i)
				switch {
				case f.Anonymous:
					out = append(out, "embedded "+f.Type.String())
				case f.IsExported() && f.Tag.Get("json") != "-":
					out = append(out, f.Name+" "+f.Type.String()+" "+f.Tag.Get("json"))
				}
			}
		}
		walk(reflect.TypeOf(v))
		return out
	}
	got, want := fields(parsed{}), fields(Claims{})
	if !slices.Equal(got, want) {
		t.Errorf("parsed fields %v, Claims fields %v", got, want)
	}
	p := &parsed{Scope: "a", Realm: "r", UID: new(int64), Type: "user", Name: "n"}
	p.Subject = "s"
	c := p.claims()
	if c.Subject != "s" || c.Scope != "a" || c.Realm != "r" || c.UID != p.UID || c.Type != "user" || c.Name != "n" {
		t.Errorf("claims() = %+v, want the fields of %+v", c, p)
	}
}
