package tokens

import (
	"context"
	"testing"
	"time"

	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
)

// BenchmarkValidate compares the validation of a seen JWT with that of an
// opaque cache hit (the reference), in one run:
//
//	go test -run '^$' -bench 'Validate' -benchmem ./tokens/
//
// opaque: a cache hit (hash of the secret, record in the cache);
// jwt-record: a local JWT with its record (store on); jwt-external: a
// trusted issuer's JWT, no record (key filter / negative cache);
// jwt-store-none: a local JWT with the store disabled.
func BenchmarkValidate(b *testing.B) {
	run := func(b *testing.B, n *testNode, text string) {
		raw := []byte(text)
		ctx := context.Background()
		if v := n.svc.Validate(ctx, raw); v.State != token.StateValid {
			b.Fatalf("Validate = %v %v, want valid", v.State, v.Err)
		}
		b.ReportAllocs()
		for b.Loop() {
			n.svc.Validate(ctx, raw)
		}
	}
	n, js := jwtNode(b, nil)
	opaque := n.issue(b, IssueRequest{Scopes: "read"})
	local := n.issue(b, IssueRequest{Format: token.FormatJWT, Scopes: "read"})
	now := n.clock.Now()
	ext, _ := js.ExternalToken(b, "erin", now, now.Add(time.Hour))
	none, _ := jwtNode(b, persist.NewNone())
	unstored := none.issue(b, IssueRequest{Format: token.FormatJWT, Scopes: "read"})

	b.Run("opaque", func(b *testing.B) { run(b, n, opaque.Token) })
	b.Run("jwt-record", func(b *testing.B) { run(b, n, local.Token) })
	b.Run("jwt-external", func(b *testing.B) { run(b, n, ext) })
	b.Run("jwt-store-none", func(b *testing.B) { run(b, none, unstored.Token) })
}
