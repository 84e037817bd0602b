package persist

import (
	"testing"

	"github.com/tokencache/tokencache/token"
)

func TestCanonicalScopes(t *testing.T) {
	for s, want := range map[string]bool{
		"": true, "a": true, "a b": true, "a b c": true, "admin:token read:all": true,
		"b a": false, "a a": false, "a  b": false, " a": false, "a ": false, "a b a": false,
	} {
		if got := canonicalScopes(s); got != want {
			t.Errorf("canonicalScopes(%q) = %v, want %v", s, got, want)
		}
		// It agrees with the token package wherever that one accepts s.
		if parsed, err := token.ParseScopes(s); err == nil && want != (string(parsed) == s) {
			t.Errorf("canonicalScopes(%q) = %v, but ParseScopes gives %q", s, want, parsed)
		}
	}
}
