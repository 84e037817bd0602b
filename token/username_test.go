package token

import (
	"errors"
	"strings"
	"testing"
)

func TestValidUsername(t *testing.T) {
	for _, ok := range []string{"alice", "Bob", "bob.smith", "bob_smith", "bob-smith", "bob@example.com", "bob+ci",
		"bjørn", "José", "ноутбук", "用户", "u1", strings.Repeat("a", MaxUsernameLen), "e\u0301"} {
		if err := ValidUsername(ok); err != nil {
			t.Errorf("ValidUsername(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "bob,admin", "bob admin", "bob\x00", "bob\t", "bob\u202eevil", "bob\u2066x", "bob\u200fx",
		"bob\u061cx", "bob\u200b", "bob\ufeff", "b\xffob", "bob;x", "bob\"", "bob:x", "bob\\x", "bob\u00a0x", "bob\u2028",
		strings.Repeat("a", MaxUsernameLen+1)} {
		if err := ValidUsername(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidUsername(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

// TestValidateKeepsStoredUsernames: records written before the username rule
// stay valid records (readable from a store, revocable, modifiable).
func TestValidateKeepsStoredUsernames(t *testing.T) {
	tok := &Token{Key: Key{1}, Hash: Hash{1}, Type: TypeUser, Format: FormatOpaque, Username: "bob smith", Realm: DefaultRealm, Created: 1}
	if err := tok.Validate(); err != nil {
		t.Errorf("Validate() with the stored username %q = %v, want nil", tok.Username, err)
	}
}
