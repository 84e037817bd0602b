package jwt

import (
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
)

// BenchmarkParseCached is a repeat validation: a verified-cache hit.
func BenchmarkParseCached(b *testing.B) {
	k := mustKey(b, AlgEdDSA)
	// The real clock: its cost is part of a hit.
	c, err := New(Config{Issuer: testIssuer, Audiences: []string{"api"}, Leeway: 30 * time.Second}, mustSet(b, k.ID(), k))
	if err != nil {
		b.Fatal(err)
	}
	raw := []byte(mustEncode(b, c, newRecord(time.Now())))
	mustParse(b, c, string(raw))
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Parse(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Parse(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// firstTexts returns n distinct tokens of alg and a codec whose verified
// cache holds one entry per shard: cycling through them, every Parse is a
// miss that verifies in full and then evicts an entry to insert its own
// (the steady state of a full cache).
func firstTexts(b *testing.B, alg string, n int) (*Codec, []string) {
	k := mustKey(b, alg)
	var keys []*Key
	for _, a := range allAlgs {
		keys = append(keys, mustKey(b, a))
	}
	clk := newTestClock()
	c, err := New(Config{Issuer: testIssuer, Audiences: []string{"api", "web"}, Leeway: 30 * time.Second, CacheSize: cacheShards, Now: clk.Now},
		mustSet(b, k.ID(), keys...))
	if err != nil {
		b.Fatal(err)
	}
	texts := make([]string, n)
	for i := range texts {
		texts[i] = mustEncode(b, c, newRecord(clk.Now()))
	}
	return c, texts
}

// nFirst is how many distinct tokens the first-validation benchmarks
// cycle through.
const nFirst = 2048

// BenchmarkParseFirst is a first validation: the full verification, then
// the cache insert (evicting an entry).
func BenchmarkParseFirst(b *testing.B) {
	for _, alg := range allAlgs {
		b.Run(alg, func(b *testing.B) {
			c, texts := firstTexts(b, alg, nFirst)
			raws := make([][]byte, len(texts))
			for i, s := range texts {
				raws[i] = []byte(s)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := c.Parse(raws[i%nFirst]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkBareGolangJWT is golang-jwt's own parse-and-verify of the same
// tokens with the same key and options (methods pinned to the key's alg,
// exp required, iat checked, leeway, issuer, strict decoding), into a
// struct of the same claims, without a cache, without our audience check
// and record.
func BenchmarkBareGolangJWT(b *testing.B) {
	for _, alg := range allAlgs {
		b.Run(alg, func(b *testing.B) {
			c, texts := firstTexts(b, alg, nFirst)
			p, keyfunc := bareParser(b, c, alg)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := p.ParseWithClaims(texts[i%nFirst], &benchClaims{}, keyfunc); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// bareParser is golang-jwt configured as the codec configures it, for the
// one key of alg.
func bareParser(b *testing.B, c *Codec, alg string) (*gojwt.Parser, gojwt.Keyfunc) {
	k := mustKey(b, alg)
	p := gojwt.NewParser(gojwt.WithValidMethods([]string{alg}), gojwt.WithExpirationRequired(), gojwt.WithIssuedAt(),
		gojwt.WithLeeway(30*time.Second), gojwt.WithTimeFunc(c.now), gojwt.WithStrictDecoding(), gojwt.WithIssuer(testIssuer))
	return p, func(*gojwt.Token) (any, error) { return k.verify, nil }
}

// BenchmarkEncode signs a record with the active key.
func BenchmarkEncode(b *testing.B) {
	for _, alg := range allAlgs {
		b.Run(alg, func(b *testing.B) {
			c, clk := newTestCodec(b, alg)
			rec := newRecord(clk.Now())
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Encode(rec, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFirstVsBare runs a first validation (ParseFirst) and golang-jwt's
// bare parse (BareGolangJWT) of the same tokens alternately, in batches of
// 20, and reports each one's fastest batch and their ratio: on a machine
// shared with other work, interleaving and taking the least disturbed
// batch compares the two under the same load.
func BenchmarkFirstVsBare(b *testing.B) {
	for _, alg := range allAlgs {
		b.Run(alg, func(b *testing.B) {
			c, texts := firstTexts(b, alg, nFirst)
			raws := make([][]byte, len(texts))
			for i, s := range texts {
				raws[i] = []byte(s)
			}
			p, keyfunc := bareParser(b, c, alg)
			const batch = 20
			best := [2]time.Duration{1 << 62, 1 << 62}
			var total [2]time.Duration
			i := 0
			for b.Loop() {
				for side := range 2 {
					start := time.Now()
					for j := range batch {
						n := (i + j) % nFirst
						if side == 0 {
							if _, err := c.Parse(raws[n]); err != nil {
								b.Fatal(err)
							}
						} else if _, err := p.ParseWithClaims(texts[n], &benchClaims{}, keyfunc); err != nil {
							b.Fatal(err)
						}
					}
					d := time.Since(start)
					total[side] += d
					best[side] = min(best[side], d)
				}
				i += batch
			}
			b.ReportMetric(float64(best[0])/batch, "first-ns/op")
			b.ReportMetric(float64(best[1])/batch, "bare-ns/op")
			b.ReportMetric(float64(best[0])/float64(best[1]), "best-ratio")
			b.ReportMetric(float64(total[0])/float64(total[1]), "total-ratio")
		})
	}
}

// benchClaims is the claims type of the bare benchmarks: the fields of
// Claims, decoded by encoding/json's own struct decoding.
type benchClaims struct {
	gojwt.RegisteredClaims
	Scope string `json:"scope,omitempty"`
	Realm string `json:"realm,omitempty"`
	UID   *int64 `json:"uid,omitempty"`
	Type  string `json:"token_type,omitempty"`
	Name  string `json:"name,omitempty"`
}
