package token

import (
	"bytes"
	"encoding/base64"
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unique"
	"unsafe"
)

func TestKeyRoundTrip(t *testing.T) {
	seen := make(map[Key]bool)
	for range 1000 {
		k := NewKey()
		if seen[k] {
			t.Fatalf("NewKey() repeated %s", k)
		}
		seen[k] = true
		s := k.String()
		if len(s) != 22 {
			t.Fatalf("Key.String() = %q, want 22 characters", s)
		}
		got, err := ParseKey(s)
		if err != nil || got != k {
			t.Fatalf("ParseKey(%q) = %v, %v, want %v", s, got, err, k)
		}
	}
}

func TestParseKeyRejects(t *testing.T) {
	k := NewKey().String()
	// The last character of 22 carries 2 padding bits: flipping them gives a
	// non-canonical encoding of the same bytes, which must be rejected.
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", k[21])
	noncanon := k[:21] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1])
	if last&1 == 1 {
		noncanon = k[:21] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last&^3|2])
	}
	for _, s := range []string{"", "short", k + "A", k[:21] + "=", k[:21] + "+", k[:21] + "/", noncanon} {
		if _, err := ParseKey(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseKey(%q) error = %v, want ErrMalformed", s, err)
		}
	}
}

func TestEncodeParse(t *testing.T) {
	k, secret := NewKey(), NewSecret()
	text := Encode("tc", k, secret)
	if !strings.HasPrefix(text, "tc_"+k.String()+".") {
		t.Fatalf("Encode = %q, want tc_<key>.<secret>", text)
	}
	gk, gs, err := Parse("tc", []byte(text))
	if err != nil || gk != k || string(gs) != secret {
		t.Fatalf("Parse(%q) = %v, %q, %v; want %v, %q", text, gk, gs, err, k, secret)
	}
	if !HasPrefix("tc", []byte(text)) || HasPrefix("tx", []byte(text)) {
		t.Errorf("HasPrefix gave the wrong answer for %q", text)
	}
}

func TestParseMalformed(t *testing.T) {
	k := NewKey().String()
	good := "tc_" + k + "." + NewSecret()
	cases := map[string]string{
		"empty":          "",
		"wrong prefix":   "tx_" + k + "." + NewSecret(),
		"no underscore":  "tc-" + k + "." + NewSecret(),
		"no dot":         "tc_" + k + "_" + NewSecret(),
		"short secret":   "tc_" + k + "." + strings.Repeat("a", MinSecretLen-1),
		"long secret":    "tc_" + k + "." + strings.Repeat("a", MaxSecretLen+1),
		"secret charset": "tc_" + k + "." + strings.Repeat("a", 30) + "+",
		"bad key":        "tc_" + strings.Repeat("!", 22) + "." + NewSecret(),
		"jwt":            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
		"nul":            good[:10] + "\x00" + good[11:],
		"space":          good + " ",
	}
	for name, in := range cases {
		if _, _, err := Parse("tc", []byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Parse(%q) error = %v, want ErrMalformed", name, in, err)
		}
	}
	if _, _, err := Parse("tc", []byte(good)); err != nil {
		t.Fatalf("Parse(good) = %v", err)
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	raw := []byte(Encode("tc", NewKey(), NewSecret()))
	h := NewHasher(nil)
	hp := NewHasher([]byte("pepper"))
	want := h.Sum(mustKey(t, raw), raw[len(raw)-32:])
	allocs := testing.AllocsPerRun(100, func() {
		k, s, err := Parse("tc", raw)
		if err != nil || !h.Verify(k, s, want) {
			panic("bad parse")
		}
		hp.Sum(k, s)
	})
	if allocs != 0 {
		t.Errorf("Parse+Verify allocs = %v, want 0", allocs)
	}
}

func mustKey(t *testing.T, raw []byte) Key {
	t.Helper()
	k, _, err := Parse("tc", raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestHasher(t *testing.T) {
	k, secret := NewKey(), []byte(NewSecret())
	plain, pep, pep2 := NewHasher(nil), NewHasher([]byte("p1")), NewHasher([]byte("p2"))
	h := plain.Sum(k, secret)
	if !plain.Verify(k, secret, h) {
		t.Fatal("Verify(right secret) = false")
	}
	if plain.Verify(NewKey(), secret, h) {
		t.Error("Verify(other key) = true: the hash must bind the key")
	}
	wrong := bytes.Clone(secret)
	wrong[0] ^= 1
	if plain.Verify(k, wrong, h) {
		t.Error("Verify(one bit off) = true")
	}
	if pep.Sum(k, secret) == h || pep.Sum(k, secret) == pep2.Sum(k, secret) {
		t.Error("a pepper does not change the hash")
	}
	if bytes.Contains(h[:], secret) {
		t.Error("hash contains the secret")
	}
}

func TestValidPrefix(t *testing.T) {
	for p, want := range map[string]bool{"tc": true, "a": true, "abc123": true, "": false, "1a": false, "Tc": false, "t_c": false, strings.Repeat("a", 17): false} {
		if got := ValidPrefix(p); got != want {
			t.Errorf("ValidPrefix(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestScopes(t *testing.T) {
	s, err := NewScopes([]string{"write", "read", "admin:all"})
	if err != nil {
		t.Fatal(err)
	}
	if s != "admin:all read write" {
		t.Errorf("NewScopes = %q, want sorted space-separated", s)
	}
	if !s.Has("read") || s.Has("rea") || s.Has("") || !Has(s, []byte("write")) {
		t.Errorf("Has gave a wrong answer on %q", s)
	}
	if s.Len() != 3 || !slices.Equal(s.List(), []string{"admin:all", "read", "write"}) {
		t.Errorf("Len/List = %d %v", s.Len(), s.List())
	}
	sub, _ := NewScopes([]string{"read"})
	if !s.Contains(sub) || sub.Contains(s) || !s.Contains("") {
		t.Error("Contains is wrong")
	}
	for _, bad := range [][]string{{""}, {"a b"}, {"a", "a"}, {`a"b`}, {"a\\b"}, {"é"}, {strings.Repeat("x", MaxScopeLen+1)}, make([]string, MaxScopes+1)} {
		if _, err := NewScopes(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewScopes(%q) error = %v, want ErrInvalid", bad, err)
		}
	}
	if n := testing.AllocsPerRun(100, func() { s.Has("write") }); n != 0 {
		t.Errorf("Scopes.Has allocs = %v, want 0", n)
	}
}

func TestTypeAndFormat(t *testing.T) {
	for _, name := range []string{"session", "user", "notebook", "internal", "service", "oauth"} {
		typ, err := ParseType(name)
		if err != nil || typ.String() != name {
			t.Errorf("ParseType(%q) = %v, %v", name, typ, err)
		}
	}
	if _, err := ParseType("admin"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseType(admin) error = %v, want ErrInvalid", err)
	}
	if f, err := ParseFormat(""); err != nil || f != FormatOpaque {
		t.Errorf("ParseFormat(\"\") = %v, %v", f, err)
	}
	if _, err := ParseFormat("paseto"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseFormat(paseto) error = %v", err)
	}
}

// base is a fixed instant for rule tests.
var base = At(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))

func TestRulesStates(t *testing.T) {
	r := Rules{Expiry: time.Hour, Retention: 24 * time.Hour, IdleTimeout: 10 * time.Minute}
	tok := &Token{Created: base, Expires: base.Add(time.Hour)}
	revoked := &Token{Created: base, Expires: base.Add(time.Hour), RevokedAt: base.Add(5 * time.Minute)}
	never := &Token{Created: base}
	cases := []struct {
		name string
		t    *Token
		now  Time
		used Time
		want State
	}{
		{"fresh", tok, base.Add(time.Minute), 0, StateValid},
		{"idle", tok, base.Add(11 * time.Minute), 0, StateIdle},
		{"used recently", tok, base.Add(30 * time.Minute), base.Add(25 * time.Minute), StateValid},
		{"expired inside retention", tok, base.Add(2 * time.Hour), base.Add(119 * time.Minute), StateExpired},
		{"just before deletion", tok, base.Add(time.Hour + 23*time.Hour - 1), 0, StateExpired},
		{"past retention", tok, base.Add(time.Hour + 23*time.Hour), 0, StateUnknown},
		{"revoked", revoked, base.Add(6 * time.Minute), base.Add(6 * time.Minute), StateRevoked},
		{"revoked, clock behind the revoker", revoked, base.Add(time.Minute), base.Add(time.Minute), StateRevoked},
		{"revoked then past retention", revoked, base.Add(5*time.Minute + 23*time.Hour), 0, StateUnknown},
		{"never expires, idle", never, base.Add(1000 * time.Hour), 0, StateIdle},
	}
	for _, c := range cases {
		if got := r.State(c.t, c.now, c.used); got != c.want {
			t.Errorf("%s: State(now=%s) = %v, want %v", c.name, c.now, got, c.want)
		}
	}
	r.IdleTimeout = 0
	if got := r.State(never, base.Add(1e6*time.Hour), 0); got != StateValid {
		t.Errorf("State(never expiring, no idle timeout) = %v, want valid", got)
	}
	if r.DeleteAt(never) != 0 {
		t.Error("DeleteAt(never expiring, not revoked) != 0")
	}
	if got, want := r.DeleteAt(revoked), base.Add(5*time.Minute+23*time.Hour); got != want {
		t.Errorf("DeleteAt(revoked) = %s, want %s", got, want)
	}
}

func TestRulesValidate(t *testing.T) {
	if err := DefaultRules().Validate(); err != nil {
		t.Fatalf("DefaultRules().Validate() = %v", err)
	}
	bad := []Rules{
		{Expiry: time.Hour, Retention: time.Hour},
		{Expiry: 2 * time.Hour, Retention: time.Hour},
		{Expiry: 0, Retention: time.Hour},
		{Expiry: time.Hour, Retention: 2 * time.Hour, IdleTimeout: -1},
	}
	for _, r := range bad {
		if err := r.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("Rules%+v.Validate() = %v, want ErrInvalid", r, err)
		}
	}
}

func validToken() *Token {
	return &Token{Key: NewKey(), Hash: Hash{1}, Created: base, Username: "alice", Realm: "default", Type: TypeUser}
}

func TestTokenValidate(t *testing.T) {
	if err := validToken().Validate(); err != nil {
		t.Fatalf("Validate(valid) = %v", err)
	}
	mutations := map[string]func(*Token){
		"no key":            func(t *Token) { t.Key = Key{} },
		"no type":           func(t *Token) { t.Type = TypeUnknown },
		"no hash":           func(t *Token) { t.Hash = Hash{} },
		"no username":       func(t *Token) { t.Username = "" },
		"control char":      func(t *Token) { t.Username = "a\nb" },
		"bad utf8":          func(t *Token) { t.Username = "\xff" },
		"negative uid":      func(t *Token) { t.UID, t.HasUID = -1, true },
		"expires <= create": func(t *Token) { t.Expires = t.Created },
		"internal no svc":   func(t *Token) { t.Type = TypeInternal; t.SetExtra(Extra{Parent: NewKey()}) },
		"notebook no parent": func(t *Token) {
			t.Type = TypeNotebook
		},
		"own parent":      func(t *Token) { t.SetExtra(Extra{Parent: t.Key}) },
		"bad scopes":      func(t *Token) { t.Scopes = "a b" + " " },
		"unsorted scopes": func(t *Token) { t.Scopes = "b a" },
	}
	for name, mutate := range mutations {
		tok := validToken()
		mutate(tok)
		if err := tok.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate() = %v, want ErrInvalid", name, err)
		}
	}
}

func TestCloneAndExtra(t *testing.T) {
	tok := validToken()
	tok.SetExtra(Extra{})
	if tok.Ext != nil {
		t.Error("SetExtra(empty) kept an Extra")
	}
	tok.SetExtra(Extra{Name: "n", Credentials: []byte{1}})
	c := tok.Clone()
	c.Ext.Credentials[0] = 9
	c.Ext.Name = "m"
	if tok.Ext.Credentials[0] != 1 || tok.Name() != "n" {
		t.Error("Clone shares Extra with the original")
	}
}

func TestDescendantsBreadthFirst(t *testing.T) {
	// root → a, b; a → c; b → d; c → e; plus a cycle e → a.
	root, a, b, c, d, e := Key{1}, Key{2}, Key{3}, Key{4}, Key{5}, Key{6}
	tree := map[Key][]Key{root: {a, b}, a: {c}, b: {d}, c: {e}, e: {a}}
	children := func(parents []Key) ([]Key, error) {
		var out []Key
		for _, p := range parents {
			out = append(out, tree[p]...)
		}
		return out, nil
	}
	got, err := Descendants(root, 0, children)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Key{a, b, c, d, e}; !slices.Equal(got, want) {
		t.Errorf("Descendants = %v, want %v", got, want)
	}
	if got, _ := Descendants(root, 3, children); len(got) != 3 {
		t.Errorf("Descendants(limit 3) returned %d keys", len(got))
	}
	boom := errors.New("boom")
	if _, err := Descendants(root, 0, func([]Key) ([]Key, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("Descendants error = %v, want boom", err)
	}
}

func TestReusable(t *testing.T) {
	r := DefaultRules()
	now := base.Add(time.Minute)
	parent := &Token{Key: NewKey(), Created: base, Expires: base.Add(time.Hour), Scopes: "read write"}
	child := func(mut func(*Token)) *Token {
		c := &Token{Key: NewKey(), Created: base, Expires: base.Add(50 * time.Minute), Type: TypeInternal, Scopes: "read"}
		c.SetExtra(Extra{Parent: parent.Key, Service: "svc", Sealed: []byte("sealed secret")})
		if mut != nil {
			mut(c)
		}
		return c
	}
	d := Delegation{Type: TypeInternal, Service: "svc", Scopes: "read", MinExpires: now.Add(30 * time.Minute)}
	cases := []struct {
		name string
		c    *Token
		d    Delegation
		want bool
	}{
		{"fits", child(nil), d, true},
		{"other service", child(func(c *Token) { c.Ext.Service = "other" }), d, false},
		{"other scopes", child(func(c *Token) { c.Scopes = "read write" }), d, false},
		{"too short", child(func(c *Token) { c.Expires = now.Add(10 * time.Minute) }), d, false},
		{"revoked", child(func(c *Token) { c.RevokedAt = now }), d, false},
		{"other parent", child(func(c *Token) { c.Ext.Parent = NewKey() }), d, false},
		{"notebook asked", child(nil), Delegation{Type: TypeNotebook}, false},
		{"never expiring child", child(func(c *Token) { c.Expires = 0 }), d, true},
		{"no minimum", child(nil), Delegation{Type: TypeInternal, Service: "svc", Scopes: "read"}, true},
		{"issued, not delegated (no sealed secret)", child(func(c *Token) { c.Ext.Sealed = nil }), d, false},
	}
	for _, c := range cases {
		if got := r.Reusable(c.c, parent, c.d, now); got != c.want {
			t.Errorf("%s: Reusable = %v, want %v", c.name, got, c.want)
		}
	}
	nb := child(func(c *Token) { c.Type = TypeNotebook; c.Scopes = parent.Scopes; c.Ext.Service = "" })
	if !r.Reusable(nb, parent, Delegation{Type: TypeNotebook, MinExpires: now}, now) {
		t.Error("Reusable(notebook with parent scopes) = false")
	}
}

func TestSealSecret(t *testing.T) {
	parent, child, secret := []byte(NewSecret()), NewKey(), NewSecret()
	blob, err := SealSecret(parent, child, secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, []byte(secret)) {
		t.Fatal("sealed blob contains the secret")
	}
	got, err := OpenSecret(parent, child, blob)
	if err != nil || got != secret {
		t.Fatalf("OpenSecret = %q, %v; want %q", got, err, secret)
	}
	if _, err := OpenSecret([]byte(NewSecret()), child, blob); !errors.Is(err, ErrUnseal) {
		t.Errorf("OpenSecret(wrong parent) = %v, want ErrUnseal", err)
	}
	if _, err := OpenSecret(parent, NewKey(), blob); !errors.Is(err, ErrUnseal) {
		t.Errorf("OpenSecret(wrong child) = %v, want ErrUnseal", err)
	}
	tampered := bytes.Clone(blob)
	tampered[len(tampered)-1] ^= 1
	if _, err := OpenSecret(parent, child, tampered); !errors.Is(err, ErrUnseal) {
		t.Errorf("OpenSecret(tampered) = %v, want ErrUnseal", err)
	}
	for _, short := range [][]byte{nil, {1}, blob[:10]} {
		if _, err := OpenSecret(parent, child, short); !errors.Is(err, ErrUnseal) {
			t.Errorf("OpenSecret(%d bytes) = %v, want ErrUnseal", len(short), err)
		}
	}
}

func TestTimeFormat(t *testing.T) {
	if got := base.String(); got != "2026-11-23T12:00:00Z" {
		t.Errorf("Time.String() = %q", got)
	}
	if Time(0).String() != "" || !Time(0).Time().IsZero() || At(time.Time{}) != 0 || Time(0).Add(time.Hour) != 0 {
		t.Error("the zero Time is not kept as unset")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(Encode("tc", NewKey(), NewSecret())))
	f.Add([]byte("tc_"))
	f.Add([]byte("eyJhbGciOiJub25lIn0.e30."))
	f.Fuzz(func(t *testing.T, raw []byte) {
		k, secret, err := Parse("tc", raw)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse error %v is not ErrMalformed", err)
			}
			return
		}
		again := Encode("tc", k, string(secret))
		if again != string(raw) {
			t.Fatalf("Encode(Parse(%q)) = %q", raw, again)
		}
		if _, err := base64.RawURLEncoding.DecodeString(string(secret)); err != nil && len(secret)%4 != 1 {
			t.Fatalf("accepted secret %q is not base64url: %v", secret, err)
		}
	})
}

func TestIntern(t *testing.T) {
	// Held, so that a collection between the calls cannot drop the
	// canonical copy (Intern may then copy again: that is allowed).
	h := unique.Make("read write")
	defer runtime.KeepAlive(h)
	a := Intern(string([]byte("read write")))
	b := Intern(string([]byte("read write")))
	if a != "read write" || b != "read write" {
		t.Fatalf("Intern changed the value: %q %q", a, b)
	}
	if unsafe.StringData(a) != unsafe.StringData(b) {
		t.Error("two interned copies of one value do not share their bytes")
	}
	if Intern("") != "" || Intern("other") != "other" {
		t.Error("Intern changed a value")
	}
}
