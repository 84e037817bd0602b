package token

import "testing"

// BenchmarkParseVerify compares the opaque hot path through the Formats seam
// with the direct calls it replaced.
func BenchmarkParseVerify(b *testing.B) {
	f, o := mustOpaqueFormats(b, "tc", nil)
	k := NewKey()
	secret, h := o.Mint(k)
	rec := &Token{Key: k, Hash: h, Format: FormatOpaque}
	raw := []byte(Encode("tc", k, secret))
	b.Run("formats", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, p, err := f.Parse(raw)
			if err != nil || !c.Verify(p, rec) {
				b.Fatal("Parse/Verify failed")
			}
		}
	})
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		hasher := o.hasher
		for b.Loop() {
			k, s, err := Parse("tc", raw)
			if err != nil || !hasher.Verify(k, s, rec.Hash) {
				b.Fatal("Parse/Verify failed")
			}
		}
	})
}
