package jwt

import "testing"

// BenchmarkTrustedKey is the codec's lookup of a trusted issuer's key on a
// verification (a verified-cache miss): a map read, no allocation.
func BenchmarkTrustedKey(b *testing.B) {
	idp := newTestIdP(b, newIdPKey(b, AlgEdDSA, "a"))
	tr, _ := mustTrusted(b, testTrustedConfig(idp))
	mustStart(b, tr)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := tr.Key("a"); !ok {
				b.Fatal("no key")
			}
		}
	})
}
