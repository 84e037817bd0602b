package tokens

import (
	"context"
	"testing"

	"github.com/tokencache/tokencache/token"
)

// BenchmarkValidate measures the hot path: a valid token found in the cache.
// It must not allocate.
func BenchmarkValidate(b *testing.B) {
	n := newNode(b, nodeOpts{})
	raw := []byte(n.issue(b, IssueRequest{Username: "alice"}).Token)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if v := n.svc.Validate(ctx, raw); v.State != token.StateValid {
			b.Fatalf("Validate = %v, want valid", v.State)
		}
	}
}

// BenchmarkValidateParallel is BenchmarkValidate from every core at once.
func BenchmarkValidateParallel(b *testing.B) {
	n := newNode(b, nodeOpts{})
	raw := []byte(n.issue(b, IssueRequest{Username: "alice"}).Token)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if v := n.svc.Validate(ctx, raw); v.State != token.StateValid {
				b.Errorf("Validate = %v, want valid", v.State)
				return
			}
		}
	})
}
