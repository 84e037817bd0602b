package httpapi

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// Benchmarks of the hot path over a real *fasthttp.RequestCtx (the whole
// handler chain, no network). Compare runs with benchstat.
//
//	go test -run '^$' -bench 'ValidateHit|AuthzAllow' -benchmem ./httpapi/

func benchHot(b *testing.B, mod func(*Config), method, uri string, headers func(tok string) [][2]string) {
	s, _, tok := hotServer(b, mod)
	h := s.Handler()
	hs := headers(tok)
	b.Run("serial", func(b *testing.B) {
		ctx := hotCtx(method, uri, hs...)
		b.ReportAllocs()
		for b.Loop() {
			ctx.Response.Reset()
			h(ctx)
		}
		if ctx.Response.StatusCode() != fasthttp.StatusOK {
			b.Fatalf("status = %d, want 200", ctx.Response.StatusCode())
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := hotCtx(method, uri, hs...)
			for pb.Next() {
				ctx.Response.Reset()
				h(ctx)
			}
			if ctx.Response.StatusCode() != fasthttp.StatusOK {
				b.Errorf("status = %d, want 200", ctx.Response.StatusCode())
			}
		})
	})
}

func BenchmarkValidateHit(b *testing.B) {
	benchHot(b, nil, "GET", "/v1/validate?scope=read:all", func(tok string) [][2]string {
		return [][2]string{{"Authorization", "Bearer " + tok}}
	})
}

func BenchmarkAuthzAllow(b *testing.B) {
	b.Run("nginx", func(b *testing.B) {
		benchHot(b, authzRules, "GET", "/v1/authz", func(tok string) [][2]string {
			return [][2]string{{"Authorization", "Bearer " + tok}, {"X-Original-URI", "/admin/users?page=2"}}
		})
	})
	b.Run("envoy", func(b *testing.B) {
		benchHot(b, authzRules, "POST", "/v1/authz/admin/users?page=2", func(tok string) [][2]string {
			return [][2]string{{"Authorization", "Bearer " + tok}}
		})
	})
}
