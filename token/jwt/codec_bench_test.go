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

// BenchmarkParseFirst is a first validation: the full verification, then
// the cache insert (the entry is removed again after each call so that
// the next one misses too; the removal is counted).
func BenchmarkParseFirst(b *testing.B) {
	for _, alg := range allAlgs {
		b.Run(alg, func(b *testing.B) {
			c, clk := newTestCodec(b, alg)
			raw := []byte(mustEncode(b, c, newRecord(clk.Now())))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Parse(raw); err != nil {
					b.Fatal(err)
				}
				c.cache.remove(raw)
			}
		})
	}
}

// BenchmarkBareGolangJWT is golang-jwt's own parse-and-verify of the same
// token with the same key and options (methods pinned to the key's alg,
// exp required, iat checked, leeway, issuer, strict decoding), into the
// same claims type, without a cache, without our audience check and record.
func BenchmarkBareGolangJWT(b *testing.B) {
	for _, alg := range allAlgs {
		b.Run(alg, func(b *testing.B) {
			c, clk := newTestCodec(b, alg)
			s := mustEncode(b, c, newRecord(clk.Now()))
			k := mustKey(b, alg)
			p := gojwt.NewParser(gojwt.WithValidMethods([]string{alg}), gojwt.WithExpirationRequired(), gojwt.WithIssuedAt(),
				gojwt.WithLeeway(30*time.Second), gojwt.WithTimeFunc(clk.Now), gojwt.WithStrictDecoding(), gojwt.WithIssuer(testIssuer))
			keyfunc := func(*gojwt.Token) (any, error) { return k.verify, nil }
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.ParseWithClaims(s, &benchClaims{}, keyfunc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
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
// bare parse (BareGolangJWT) of the same token alternately, in batches of
// 20, and reports each one's fastest batch and their ratio: on a machine
// shared with other work, interleaving and taking the least disturbed
// batch compares the two under the same load.
func BenchmarkFirstVsBare(b *testing.B) {
	for _, alg := range allAlgs {
		b.Run(alg, func(b *testing.B) {
			c, clk := newTestCodec(b, alg)
			s := mustEncode(b, c, newRecord(clk.Now()))
			raw := []byte(s)
			k := mustKey(b, alg)
			p := gojwt.NewParser(gojwt.WithValidMethods([]string{alg}), gojwt.WithExpirationRequired(), gojwt.WithIssuedAt(),
				gojwt.WithLeeway(30*time.Second), gojwt.WithTimeFunc(clk.Now), gojwt.WithStrictDecoding(), gojwt.WithIssuer(testIssuer))
			keyfunc := func(*gojwt.Token) (any, error) { return k.verify, nil }
			const batch = 20
			best := [2]time.Duration{1 << 62, 1 << 62}
			var total [2]time.Duration
			for b.Loop() {
				for side := range 2 {
					start := time.Now()
					for range batch {
						if side == 0 {
							if _, err := c.Parse(raw); err != nil {
								b.Fatal(err)
							}
							c.cache.remove(raw)
						} else if _, err := p.ParseWithClaims(s, &benchClaims{}, keyfunc); err != nil {
							b.Fatal(err)
						}
					}
					d := time.Since(start)
					total[side] += d
					best[side] = min(best[side], d)
				}
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
