package jwt

import (
	"sync"
	"testing"

	"github.com/tokencache/tokencache/token"
)

// A verified-cache hit allocates nothing.
func TestParseCachedAllocatesNothing(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			c, clk := newTestCodec(t, alg)
			raw := []byte(mustEncode(t, c, newRecord(clk.Now())))
			mustParse(t, c, string(raw))
			n := testing.AllocsPerRun(1000, func() {
				if _, err := c.Parse(raw); err != nil {
					t.Fatal(err)
				}
			})
			if n != 0 {
				t.Errorf("Parse(cached) allocates %v times per call, want 0", n)
			}
		})
	}
}

// SetKeys racing with first validations never leaves an entry of a
// removed key behind.
func TestSetKeysRacingParse(t *testing.T) {
	clk := newTestClock()
	a, b := mustGen(t, AlgHS256), mustGen(t, AlgHS256)
	c := mustCodec(t, clk, mustSet(t, a.ID(), a, b))
	var texts []string
	for i := 0; i < 200; i++ {
		texts = append(texts, mustEncode(t, c, newRecord(clk.Now())))
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, s := range texts {
			c.Parse([]byte(s))
		}
	}()
	c.SetKeys(mustSet(t, b.ID(), b))
	wg.Wait()
	for _, s := range texts {
		wantRefused(t, c, s, ErrUnknownKey)
	}
}

// Through token.Formats (how tokens.Service sees the codec): a JWT goes to
// the JWT codec, an opaque token to the opaque one, and a repeat JWT
// validation allocates nothing end to end (Parse + Verify).
func TestFormatsRouteJWT(t *testing.T) {
	c, clk := newTestCodec(t, AlgEdDSA)
	f, err := token.NewFormats(token.NewOpaque(token.DefaultPrefix, token.NewHasher([]byte("pepper"))), c)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecord(clk.Now())
	raw := []byte(mustEncode(t, c, rec))
	codec, p, err := f.Parse(raw)
	if err != nil || codec != token.Codec(c) || p.Key != rec.Key {
		t.Fatalf("Formats.Parse(JWT) = %v, %+v, %v; want the JWT codec and the record's key", codec, p, err)
	}
	if n := testing.AllocsPerRun(1000, func() {
		codec, p, _ := f.Parse(raw)
		if !codec.Verify(p, rec) {
			t.Fatal("Verify = false")
		}
	}); n != 0 {
		t.Errorf("Formats.Parse+Verify of a seen JWT allocates %v times, want 0", n)
	}
	if codec, _, _ := f.Parse([]byte("tc_AAAAAAAAAAAAAAAAAAAAAA.x")); codec == token.Codec(c) {
		t.Errorf("Formats.Parse(opaque) went to the JWT codec")
	}
}

// A hit of an external issuer's token (which asks the issuer whether it
// still holds the key) allocates nothing either.
func TestParseCachedExternalAllocatesNothing(t *testing.T) {
	ext := mustGen(t, AlgEdDSA)
	pub, err := newKey(ext.ID(), "", ext.Public())
	if err != nil {
		t.Fatal(err)
	}
	iss := &testIssuerExt{name: "https://idp.test", keys: map[string]*Key{pub.ID(): pub}, auds: []string{AnyAudience}}
	c, clk := newTestCodec(t, AlgEdDSA, iss)
	cl := claimsAt(clk.Now())
	cl["iss"] = iss.name
	raw := []byte(signKey(t, ext, cl))
	if p := mustParse(t, c, string(raw)); !p.External {
		t.Fatalf("Parse = %+v, want an external token", p)
	}
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := c.Parse(raw); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Parse(cached external) allocates %v times per call, want 0", n)
	}
}
