package httpapi

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/tokencache/tokencache/internal/jwttest"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/tokens"
)

// jwtFullStackServer is fullStackServer accepting JWTs (jwttest's local
// issuer and trusted provider) over store (persist.StoreMemory or
// persist.StoreNone), and a JWT of kind: "local" (issued here; with the
// store on it has a record) or "external" (the provider's, never a record).
func jwtFullStackServer(tb testing.TB, store, kind string) (*Server, string) {
	tb.Helper()
	ctx := context.Background()
	js := jwttest.New(tb, nil)
	cfg := tokens.DefaultConfig()
	var err error
	if cfg.Formats, err = token.NewFormats(token.NewOpaque(cfg.Prefix, token.NewHasher(nil)), js.Codec); err != nil {
		tb.Fatal(err)
	}
	svc := fullStackService(tb, store, cfg)
	var text string
	switch kind {
	case "local":
		iss, err := svc.Issue(ctx, tokens.IssueRequest{Username: "alice", Type: token.TypeUser, Scopes: "read write", Format: token.FormatJWT})
		if err != nil {
			tb.Fatal(err)
		}
		text = iss.Token
	case "external":
		now := time.Now()
		text, _ = js.ExternalToken(tb, "erin", now, now.Add(time.Hour))
	}
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg := prometheus.NewRegistry()
	s, err := New(testConfig(), svc, log, reg, reg)
	if err != nil {
		tb.Fatal(err)
	}
	return s, text
}

var jwtStacks = []struct{ name, store, kind string }{
	{"local", persist.StoreMemory, "local"},
	{"external", persist.StoreMemory, "external"},
	{"store-none", persist.StoreNone, "local"},
}

// TestFullStackSeenJWTAllocs: validating a JWT seen before allocates
// nothing through the handler and the real service, whether it has a
// record, is an external issuer's, or the store is disabled.
func TestFullStackSeenJWTAllocs(t *testing.T) {
	for _, st := range jwtStacks {
		t.Run(st.name, func(t *testing.T) {
			s, tok := jwtFullStackServer(t, st.store, st.kind)
			h := s.Handler()
			ctx := hotCtx("GET", "/v1/validate?scope=read", [2]string{"Authorization", "Bearer " + tok})
			h(ctx)
			if ctx.Response.StatusCode() != fasthttp.StatusOK {
				t.Fatalf("validate = %d %s, want 200", ctx.Response.StatusCode(), ctx.Response.Body())
			}
			allocs := testing.AllocsPerRun(1000, func() {
				ctx.Response.Reset()
				h(ctx)
			})
			if allocs != 0 {
				t.Errorf("validate of a seen JWT allocates %v times per request, want 0", allocs)
			}
		})
	}
}

// BenchmarkValidateSeenJWTFullStack: BenchmarkValidateHitFullStack for a
// seen JWT; compare in one run:
//
//	go test -run '^$' -bench 'Validate' -benchmem ./httpapi/
func BenchmarkValidateSeenJWTFullStack(b *testing.B) {
	for _, st := range jwtStacks {
		b.Run(st.name, func(b *testing.B) {
			s, tok := jwtFullStackServer(b, st.store, st.kind)
			h := s.Handler()
			ctx := hotCtx("GET", "/v1/validate?scope=read", [2]string{"Authorization", "Bearer " + tok})
			b.ReportAllocs()
			for b.Loop() {
				ctx.Response.Reset()
				h(ctx)
			}
			if ctx.Response.StatusCode() != fasthttp.StatusOK {
				b.Fatalf("status = %d, want 200", ctx.Response.StatusCode())
			}
		})
	}
}
