package main

import "testing"

// tokens.max_lifetime -1 lifts the limit (tokens may never expire): config
// check and serve accept it, and the token service gets it as its own "no
// limit" value.
func TestMaxLifetimeNoLimit(t *testing.T) {
	c := Default()
	c.Tokens.MaxLifetime = -1
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate(max_lifetime -1) = %v, want nil", err)
	}
	tc := tokensConfig(c)
	if err := tc.Validate(); err != nil {
		t.Fatalf("tokens config of max_lifetime -1: Validate() = %v, want nil", err)
	}
	c.Tokens.MaxLifetime = -2
	if err := c.Validate(); err == nil {
		t.Error("Validate(max_lifetime -2ns) = nil, want an error")
	}
}
