package httpapi

import (
	"context"
	"testing"
	"time"

	"github.com/tokencache/tokencache/cache"
	"github.com/tokencache/tokencache/internal/fakeclock"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/replica"
	"github.com/tokencache/tokencache/tokens"
)

// mustRealServer is a real fasthttp server on an in-memory listener over the
// real token service (memory store, one node): for the semantics of writes,
// which a fake cannot show. mod changes the service's configuration.
func mustRealServer(t testing.TB, mod func(*tokens.Config)) (*testServer, *fakeclock.Clock) {
	t.Helper()
	ctx := context.Background()
	clk := fakeclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	pcfg := persist.DefaultConfig()
	pcfg.Store = persist.StoreMemory
	store, err := persist.Open(ctx, pcfg, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ccfg := cache.DefaultConfig()
	ccfg.Capacity = 10_000
	ccfg.Now = clk.Now
	c, err := cache.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	state, err := replica.NewMachine(replica.DefaultWriterConfig(), c, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	tcfg := tokens.DefaultConfig()
	tcfg.Now = clk.Now
	tcfg.ReapInterval = time.Hour
	if mod != nil {
		mod(&tcfg)
	}
	svc, err := tokens.New(tcfg, state, replica.NewLocalLog(state, 0), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs after the server's shutdown.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := svc.Close(ctx); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	cfg := testConfig()
	cfg.Now = clk.Now
	return serveTest(t, cfg, svc), clk
}
