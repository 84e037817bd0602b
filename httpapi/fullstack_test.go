package httpapi

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/tokencache/tokencache/cache"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/replica"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// The fake-service tests above prove the handler allocates nothing; these
// prove it for the whole hot path a gateway hits: the handler over the real
// token service, cache and secret hasher (a cache hit), with no fake.

// fullStackService is the real token service over a real store of kind
// store, with a cache and the log of a single node, started and closed
// with tb.
func fullStackService(tb testing.TB, store string, cfg tokens.Config) *tokens.Service {
	tb.Helper()
	ctx := context.Background()
	pcfg := persist.DefaultConfig()
	pcfg.Store = store
	st, err := persist.Open(ctx, pcfg, tb.TempDir(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	ccfg := cache.DefaultConfig()
	ccfg.Capacity = 10_000
	c, err := cache.New(ccfg)
	if err != nil {
		tb.Fatal(err)
	}
	state, err := replica.NewMachine(replica.DefaultWriterConfig(), c, st, nil)
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := tokens.New(cfg, state, replica.NewLocalLog(state, 0), nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { svc.Close(context.Background()) })
	return svc
}

func fullStackServer(tb testing.TB, child bool) (*Server, string) {
	tb.Helper()
	ctx := context.Background()
	svc := fullStackService(tb, persist.StoreMemory, tokens.DefaultConfig())
	iss, err := svc.Issue(ctx, tokens.IssueRequest{Username: "alice", Type: token.TypeUser, Scopes: "read write"})
	if err != nil {
		tb.Fatal(err)
	}
	if child {
		// A delegated grandchild: validation walks two ancestors.
		for range 2 {
			iss, err = svc.Delegate(ctx, tokens.DelegateRequest{ParentToken: iss.Token, Delegation: token.Delegation{Type: token.TypeNotebook}})
			if err != nil {
				tb.Fatal(err)
			}
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg := prometheus.NewRegistry()
	s, err := New(testConfig(), svc, log, reg, reg)
	if err != nil {
		tb.Fatal(err)
	}
	return s, iss.Token
}

func TestFullStackHotPathAllocs(t *testing.T) {
	t.Run("root", func(t *testing.T) { testFullStackHotPathAllocs(t, false) })
	t.Run("grandchild", func(t *testing.T) { testFullStackHotPathAllocs(t, true) })
}

func testFullStackHotPathAllocs(t *testing.T, child bool) {
	s, tok := fullStackServer(t, child)
	h := s.Handler()
	ctx := hotCtx("GET", "/v1/validate?scope=read", [2]string{"Authorization", "Bearer " + tok})
	h(ctx) // warm: the first use is recorded for last-used replication
	if ctx.Response.StatusCode() != fasthttp.StatusOK {
		t.Fatalf("validate = %d %s, want 200", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	allocs := testing.AllocsPerRun(1000, func() {
		ctx.Response.Reset()
		h(ctx)
	})
	if allocs != 0 {
		t.Errorf("validate through the real service allocates %v times per request, want 0", allocs)
	}
	if ctx.Response.StatusCode() != fasthttp.StatusOK {
		t.Errorf("validate = %d after the runs, want 200", ctx.Response.StatusCode())
	}
}

// BenchmarkValidateHitFullStack: handler + real service + real cache.
//
//	go test -run '^$' -bench ValidateHitFullStack -benchmem ./httpapi/
func BenchmarkValidateHitFullStack(b *testing.B) { benchFullStack(b, false) }

// BenchmarkValidateHitFullStackGrandchild: the same for a token with two
// ancestors, which validation judges too.
func BenchmarkValidateHitFullStackGrandchild(b *testing.B) { benchFullStack(b, true) }

func benchFullStack(b *testing.B, child bool) {
	s, tok := fullStackServer(b, child)
	h := s.Handler()
	hs := [2]string{"Authorization", "Bearer " + tok}
	b.Run("serial", func(b *testing.B) {
		ctx := hotCtx("GET", "/v1/validate?scope=read", hs)
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
			ctx := hotCtx("GET", "/v1/validate?scope=read", hs)
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
