package token

import (
	"fmt"
	"slices"
	"strings"
)

// Scope limits.
const (
	MaxScopes   = 64
	MaxScopeLen = 128
)

// Scopes is a sorted set of scopes, kept as one space-separated string: small
// in memory, and already in the form of the X-Token-Scopes header and of the
// RFC 7662 "scope" member. The zero value is the empty set.
type Scopes string

// NewScopes validates list and returns it as a set. Each scope is an RFC 6749
// scope-token (printable ASCII without space, '"' or '\'), at most
// MaxScopeLen bytes; at most MaxScopes of them; no duplicates.
func NewScopes(list []string) (Scopes, error) {
	if len(list) > MaxScopes {
		return "", fmt.Errorf("%w: at most %d scopes, got %d", ErrInvalid, MaxScopes, len(list))
	}
	for _, s := range list {
		if err := ValidScope(s); err != nil {
			return "", err
		}
	}
	sorted := slices.Clone(list)
	slices.Sort(sorted)
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return "", fmt.Errorf("%w: duplicate scope %q", ErrInvalid, sorted[i])
		}
	}
	return Scopes(strings.Join(sorted, " ")), nil
}

// ParseScopes parses a space-separated scope string (RFC 6749 form).
func ParseScopes(s string) (Scopes, error) {
	if s == "" {
		return "", nil
	}
	return NewScopes(strings.Split(s, " "))
}

// ValidScope reports whether s is a valid scope-token.
func ValidScope(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty scope", ErrInvalid)
	}
	if len(s) > MaxScopeLen {
		return fmt.Errorf("%w: scope longer than %d bytes", ErrInvalid, MaxScopeLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return fmt.Errorf("%w: scope %q has a character outside RFC 6749 scope-token", ErrInvalid, s)
		}
	}
	return nil
}

// List returns the scopes as a new slice (nil for the empty set).
func (s Scopes) List() []string {
	if s == "" {
		return nil
	}
	return strings.Split(string(s), " ")
}

// Len returns the number of scopes.
func (s Scopes) Len() int {
	if s == "" {
		return 0
	}
	return strings.Count(string(s), " ") + 1
}

// Has reports whether scope is in the set. It does not allocate.
func Has[S string | []byte](s Scopes, scope S) bool {
	if len(scope) == 0 {
		return false
	}
	rest := string(s)
	for len(rest) > 0 {
		i := strings.IndexByte(rest, ' ')
		var cur string
		if i < 0 {
			cur, rest = rest, ""
		} else {
			cur, rest = rest[:i], rest[i+1:]
		}
		if len(cur) == len(scope) && cur == string(scope) {
			return true
		}
	}
	return false
}

// Has reports whether scope is in the set.
func (s Scopes) Has(scope string) bool { return Has(s, scope) }

// Contains reports whether every scope of o is in s. It does not allocate
// (validation calls it for every token with a parent).
func (s Scopes) Contains(o Scopes) bool {
	rest := string(o)
	for len(rest) > 0 {
		cur := rest
		if i := strings.IndexByte(rest, ' '); i >= 0 {
			cur, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		if !Has(s, cur) {
			return false
		}
	}
	return true
}

// Intersect returns the scopes that are in both s and o.
func (s Scopes) Intersect(o Scopes) Scopes {
	if o.Contains(s) {
		return s
	}
	var out []string
	s.Each(func(sc string) {
		if Has(o, sc) {
			out = append(out, sc)
		}
	})
	return Scopes(strings.Join(out, " "))
}

// Each calls f for each scope in order, without allocating.
func (s Scopes) Each(f func(scope string)) {
	rest := string(s)
	for len(rest) > 0 {
		i := strings.IndexByte(rest, ' ')
		if i < 0 {
			f(rest)
			return
		}
		f(rest[:i])
		rest = rest[i+1:]
	}
}
