package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tokencache/tokencache/cache"
	"github.com/tokencache/tokencache/httpapi"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/tokens"
)

// run starts the daemon with a validated configuration and blocks until ctx
// is cancelled (SIGINT/SIGTERM) and shutdown has finished.
func run(ctx context.Context, cfg *Config, log *slog.Logger) error {
	d := &daemon{cfg: cfg, log: log}
	if err := d.open(ctx); err != nil {
		d.close(context.Background())
		return err
	}
	log.Info("tokencache is serving",
		"node_id", cfg.Node.ID, "http_addr", d.httpLn.Addr().String(), "data_dir", cfg.Node.DataDir,
		"store", cfg.Persist.Store, "write_mode", cfg.Persist.WriteMode)
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-d.serveErr:
		log.Error("HTTP server stopped", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	return d.close(sctx)
}

// daemon holds the running parts of one node, in the order they are opened.
type daemon struct {
	cfg *Config
	log *slog.Logger

	store    persist.Store
	cache    *cache.Cache
	state    *tokens.State
	svc      *tokens.Service
	http     *httpapi.Server
	httpLn   net.Listener
	serveErr chan error
	registry *prometheus.Registry
}

func (d *daemon) open(ctx context.Context) error {
	cfg := d.cfg
	if err := os.MkdirAll(cfg.Node.DataDir, 0o700); err != nil {
		return fmt.Errorf("cannot create data dir %s: %w", cfg.Node.DataDir, err)
	}
	adminToken, err := resolveAdminToken(cfg, d.log)
	if err != nil {
		return err
	}
	d.store, err = persist.Open(ctx, persistConfig(cfg), cfg.Node.DataDir, d.log)
	if err != nil {
		return fmt.Errorf("cannot open the %s store: %w", cfg.Persist.Store, err)
	}
	if d.cache, err = cache.New(cacheConfig(cfg)); err != nil {
		return err
	}
	if d.state, err = tokens.NewState(writerConfig(cfg), d.cache, d.store, d.log.With("component", "state")); err != nil {
		return err
	}
	idx, err := d.store.PersistedIndex(ctx)
	if err != nil {
		return fmt.Errorf("cannot read the persisted index: %w", err)
	}
	repl := tokens.NewLocalLog(d.state, idx)
	if d.store.Shared() { // the only node leads its LocalLog: it writes the shared store and announces through the log
		if err := d.state.SetWriter(ctx, true, func(ctx context.Context, i uint64) error {
			_, err := repl.Propose(ctx, &tokens.Command{Op: tokens.OpPersisted, Persisted: i})
			return err
		}); err != nil {
			return err
		}
	}
	if d.svc, err = tokens.New(tokensConfig(cfg), d.state, repl, nil, d.log.With("component", "tokens")); err != nil {
		return err
	}
	if err := d.svc.Start(ctx); err != nil {
		return err
	}

	d.registry = prometheus.NewRegistry()
	d.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		d.svc.Collector(),
	)
	if d.http, err = httpapi.New(httpConfig(cfg, adminToken), d.svc, d.log.With("component", "http"), d.registry, d.registry); err != nil {
		return err
	}
	if d.httpLn, err = net.Listen("tcp", cfg.HTTP.Addr); err != nil {
		return fmt.Errorf("cannot listen on http.addr %s: %w", cfg.HTTP.Addr, err)
	}
	d.serveErr = make(chan error, 1)
	go func() { d.serveErr <- d.http.Serve(d.httpLn) }()
	d.http.SetReady(true)
	return nil
}

// close stops the node in the documented order: readiness off → drain →
// HTTP shutdown → (leadership transfer → memberlist leave → raft shutdown) →
// flush of pending writes to the store → store close. It is safe on a
// partly opened daemon.
func (d *daemon) close(ctx context.Context) error {
	var errs []error
	if d.http != nil {
		d.http.SetReady(false)
	}
	if d.svc != nil {
		d.svc.Drain()
	}
	if d.http != nil && d.httpLn != nil {
		if err := d.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("cannot shut the HTTP server down: %w", err))
		}
	}
	if d.svc != nil {
		if err := d.svc.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if d.store != nil {
		if err := d.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cannot close the store: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		d.log.Error("shutdown was not clean", "err", err)
		return err
	}
	d.log.Info("stopped")
	return nil
}

// adminTokenFile is the file a generated admin token is kept in.
const adminTokenFile = "admin.token"

// resolveAdminToken returns the admin token from the configuration (or
// TOKENCACHE_ADMIN_TOKEN), else from <data_dir>/admin.token, generating that
// file (mode 0600) at first start. Its value is never logged.
func resolveAdminToken(cfg *Config, log *slog.Logger) (string, error) {
	if t := cfg.HTTP.AdminToken.Reveal(); t != "" {
		return t, nil
	}
	path := filepath.Join(cfg.Node.DataDir, adminTokenFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		t := strings.TrimSpace(string(b))
		if len(t) < 16 {
			return "", fmt.Errorf("admin token file %s holds fewer than 16 characters", path)
		}
		return t, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("cannot read admin token file: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	t := base64.RawURLEncoding.EncodeToString(raw[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("cannot create admin token file: %w", err)
	}
	if _, err := f.WriteString(t + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("cannot write admin token file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("cannot write admin token file: %w", err)
	}
	log.Warn("generated an admin token; admin calls need it as Authorization: Bearer <token>", "file", path)
	return t, nil
}

// The functions below map the file configuration onto each package's Config.

func persistConfig(cfg *Config) persist.Config {
	p := persist.DefaultConfig()
	p.Store = cfg.Persist.Store
	p.URL = cfg.Persist.URL
	p.Shards = cfg.Persist.Shards
	p.Username = cfg.Persist.Username
	p.Password = cfg.Persist.Password.Reveal()
	p.PoolSize = cfg.Persist.PoolSize
	p.MaxOverflow = cfg.Persist.MaxOverflow
	p.PoolRecycle = cfg.Persist.PoolRecycle
	p.PoolTimeout = cfg.Persist.PoolTimeout
	p.QueryTimeout = cfg.Persist.QueryTimeout
	p.CreateTables = cfg.Persist.CreateTables
	p.WriteMode = cfg.Persist.WriteMode
	p.BatchSize = cfg.Persist.BatchSize
	p.FlushInterval = cfg.Persist.FlushInterval
	p.MaxPending = cfg.Persist.MaxPending
	return p
}

func cacheConfig(cfg *Config) cache.Config {
	c := cache.DefaultConfig()
	c.Capacity = cfg.Cache.Capacity
	c.Eviction = cfg.Cache.Eviction
	c.Shards = cfg.Cache.Shards
	c.NegativeCapacity = cfg.Cache.NegativeCapacity
	c.KeyFilter = cfg.Cache.KeyFilter
	return c
}

func writerConfig(cfg *Config) tokens.WriterConfig {
	w := tokens.DefaultWriterConfig()
	w.Mode = cfg.Persist.WriteMode
	w.BatchSize = cfg.Persist.BatchSize
	w.FlushInterval = cfg.Persist.FlushInterval
	w.MaxPending = cfg.Persist.MaxPending
	// A write transaction may take a few statements' time; past that the
	// store is treated as down (write-through answers 503 instead of hanging).
	w.Timeout = max(3*cfg.Persist.QueryTimeout, 2*time.Second)
	return w
}

func tokensConfig(cfg *Config) tokens.Config {
	t := tokens.DefaultConfig()
	t.Prefix = cfg.Tokens.Prefix
	t.Rules.Expiry = cfg.Tokens.Expiry
	t.Rules.Retention = cfg.Tokens.Retention
	t.Rules.IdleTimeout = cfg.Tokens.IdleTimeout
	t.Pepper = []byte(cfg.Tokens.Pepper.Reveal())
	t.MaxLifetime = cfg.Tokens.MaxLifetime
	t.ReapInterval = cfg.Tokens.ReapInterval
	t.LoadBatchSize = cfg.Cache.LoadBatchSize
	t.ReadTimeout = cfg.Persist.QueryTimeout
	return t
}

func httpConfig(cfg *Config, adminToken string) httpapi.Config {
	h := httpapi.DefaultConfig()
	h.Addr = cfg.HTTP.Addr
	h.AdminToken = adminToken
	h.MaxBodyBytes = cfg.HTTP.MaxBodyBytes
	h.MaxHeaderBytes = cfg.HTTP.MaxHeaderBytes
	h.ReadTimeout = cfg.HTTP.ReadTimeout
	h.WriteTimeout = cfg.HTTP.WriteTimeout
	h.IdleTimeout = cfg.HTTP.IdleTimeout
	h.DrainDelay = cfg.HTTP.DrainDelay
	h.TokenPrefix = cfg.Tokens.Prefix
	h.Authz.Cookie = cfg.Authz.Cookie
	for _, r := range cfg.Authz.Rules {
		h.Authz.Rules = append(h.Authz.Rules, httpapi.AuthzRule{PathPrefix: r.PathPrefix, Scopes: r.Scopes})
	}
	return h
}
