package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/valyala/fasthttp"

	"github.com/tokencache/tokencache/cache"
	"github.com/tokencache/tokencache/cluster"
	"github.com/tokencache/tokencache/httpapi"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/replica"
	"github.com/tokencache/tokencache/token"
	"github.com/tokencache/tokencache/token/jwt"
	"github.com/tokencache/tokencache/tokens"
)

// run starts the daemon with a validated configuration and blocks until ctx
// is cancelled (SIGINT/SIGTERM) and shutdown has finished. source is where
// cfg came from, read again on SIGHUP for what a reload changes (nil: no
// such reload).
func run(ctx context.Context, cfg *Config, source *Loader, log *slog.Logger) error {
	d := &daemon{cfg: cfg, source: source, log: log}
	if err := d.open(ctx); err != nil {
		d.close(context.Background())
		return err
	}
	log.Info("tokencache is serving",
		"node_id", cfg.Node.ID, "http_addr", d.httpLn.Addr().String(), "data_dir", cfg.Node.DataDir,
		"store", cfg.Persist.Store, "write_mode", cfg.Persist.WriteMode)
	var failed error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case <-d.left:
		log.Info("left the cluster; shutting down")
	case err := <-d.serveErr:
		// Serve returns before Shutdown only when the listener failed for
		// good (errors that pass, such as running out of descriptors, are
		// retried): stop, and exit non-zero so that a supervisor restarts
		// the node.
		if err == nil {
			err = errors.New("the listener was closed")
		}
		failed = fmt.Errorf("HTTP server stopped: %w", err)
		log.Error("HTTP server stopped; shutting down", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	return errors.Join(failed, d.close(sctx))
}

// daemon holds the running parts of one node, in the order they are opened.
type daemon struct {
	cfg    *Config
	source *Loader // where cfg came from (reloadTrusted); nil = none
	log    *slog.Logger

	store    persist.Store
	cache    *cache.Cache
	state    *replica.Machine
	node     *cluster.Node
	svc      *tokens.Service
	http     *httpapi.Server
	left     chan struct{} // closed once the node left the cluster (cluster leave)
	leaveMu  sync.Mutex
	httpLn   net.Listener
	serveErr chan error
	registry *prometheus.Registry
	lock     *dataDirLock // held from the start of open to the end of close

	jwt *jwtFormat // nil: JWTs off
	// reloadStop stops the SIGHUP handler and the keys file watch
	// (startReload, reload.go) and waits for them: set at the end of open,
	// called first in close.
	reloadStop func()
}

func (d *daemon) open(ctx context.Context) error {
	cfg := d.cfg
	if err := os.MkdirAll(cfg.Node.DataDir, 0o700); err != nil {
		return fmt.Errorf("cannot create data dir %s: %w", cfg.Node.DataDir, err)
	}
	var err error
	if d.lock, err = lockDataDir(cfg.Node.DataDir); err != nil {
		return err
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
	if d.state, err = replica.NewMachine(writerConfig(cfg), d.cache, d.store, d.log); err != nil {
		return err
	}
	if d.jwt, err = newJWTFormat(cfg, d.log); err != nil {
		return err
	}
	formats, err := tokenFormats(cfg, d.jwt)
	if err != nil {
		return err
	}
	// Every node, alone or not, runs on the Raft log: a single node with the
	// defaults bootstraps a cluster of one.
	if d.node, err = cluster.New(clusterConfig(cfg, formats), d.state, d.log); err != nil {
		return err
	}
	d.node.SetJWTKeys(d.jwt.digest()) // announced from the first gossip on
	tcfg := tokensConfig(cfg)
	tcfg.Formats = formats
	if bound := d.node.RevocationWaitBound(); tcfg.WriteTimeout <= bound {
		// A revocation may wait this long for a silent node's fence to close.
		tcfg.WriteTimeout = bound + 2*time.Second
	}
	// The two halves meet here and only here: the service writes through
	// the node (tokens.Replication), and the node runs the writes other
	// nodes forward through the service (cluster.WriteHandler).
	if d.svc, err = tokens.New(tcfg, d.state, d.node, d.log); err != nil {
		return err
	}
	d.node.HandleWrites(d.svc)

	d.registry = prometheus.NewRegistry()
	d.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		d.svc.Collector(),
		d.node.Collector(),
	)
	// The node first: Raft restores the last snapshot and replays the log
	// into the state before the service reads from it.
	if err := d.node.Start(ctx); err != nil {
		return err
	}
	if err := d.svc.Start(ctx); err != nil {
		return err
	}
	if err := d.jwt.start(context.Background()); err != nil {
		return err
	}

	hcfg := httpConfig(cfg, adminToken)
	hcfg.Formats = formats
	hcfg.RequestTimeout = max(hcfg.RequestTimeout, tcfg.WriteTimeout+time.Second)
	hcfg.LeaderCheck = func(ctx context.Context) error { return d.node.Ready(ctx, true) }
	hcfg.IssueFormat = issueFormat(cfg)
	if d.jwt.signs() {
		// A validate-only node (tokens.jwt.trusted alone) is no issuer:
		// it publishes neither keys nor RFC 8414 metadata (both 404).
		hcfg.Issuer = cfg.Tokens.JWT.Issuer
		hcfg.JWKS = d.jwt.jwks
	}
	if d.http, err = httpapi.New(hcfg, d.svc, d.log, d.registry, d.registry); err != nil {
		return err
	}
	d.left = make(chan struct{})
	d.http.Handle(fasthttp.MethodGet, "/v1/cluster", d.handleClusterStatus, true)
	d.http.Handle(fasthttp.MethodPost, "/v1/cluster/leave", d.handleClusterLeave, true)
	if d.httpLn, err = net.Listen("tcp", cfg.HTTP.Addr); err != nil {
		return fmt.Errorf("cannot listen on http.addr %s: %w", cfg.HTTP.Addr, err)
	}
	d.serveErr = make(chan error, 1)
	go func() { d.serveErr <- d.http.Serve(d.httpLn) }()
	d.startReload()
	d.http.SetReady(true)
	return nil
}

// startReload handles SIGHUP for as long as the daemon runs (instead of
// being killed by it): it reloads the JWT keys file, the cluster TLS files
// and tokens.jwt.trusted (reloadTrusted). The keys file is also watched for
// changes (keysReloader).
func (d *daemon) startReload() {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	d.reloadStop = func() {
		signal.Stop(hup)
		cancel()
		wg.Wait()
	}
	var keysHup chan os.Signal
	if d.jwt.signs() {
		keys := newKeysReloader(d.cfg.Tokens.JWT.KeysFile, d.jwt.codec, d.node.SetJWTKeys, d.log)
		keysHup = make(chan os.Signal, 1)
		wg.Go(func() { keys.run(ctx, keysHup) })
	}
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-hup:
				d.log.Info("reloading the JWT keys, the trusted JWT issuers and the cluster TLS files", "signal", sig.String())
				if err := d.node.ReloadTLS(); err != nil {
					d.log.Error("cannot reload the cluster TLS files; the current certificate stays", "err", err)
				}
				d.reloadTrusted()
				if keysHup != nil {
					select {
					case keysHup <- sig:
					default: // a reload is already due
					}
				}
			}
		}
	})
}

// close stops the node in the documented order: readiness off → drain →
// HTTP shutdown → flush of pending writes to the store (while still leader)
// → leadership transfer → memberlist leave → raft shutdown → store close.
// It is safe on a partly opened daemon.
func (d *daemon) close(ctx context.Context) error {
	var errs []error
	if d.reloadStop != nil {
		d.reloadStop()
	}
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
		// Flush pending writes while this node still leads: only the leader
		// writes a shared store, and once leadership is handed over the
		// writer stops. What is applied after this flush stays in the Raft
		// log and the pinned set, and whoever leads next writes it.
		if err := d.svc.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if d.node != nil {
		// Leadership transfer, gossip leave, Raft shutdown.
		if err := d.node.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("cannot stop the cluster node: %w", err))
		}
	}
	d.jwt.close()
	if d.store != nil {
		if err := d.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cannot close the store: %w", err))
		}
	}
	d.lock.release()
	if err := errors.Join(errs...); err != nil {
		d.log.Error("shutdown was not clean", "err", err)
		return err
	}
	d.log.Info("stopped")
	return nil
}

// handleClusterStatus answers GET /v1/cluster (DESIGN §5).
func (d *daemon) handleClusterStatus(ctx *fasthttp.RequestCtx) {
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st := struct {
		cluster.Status
		// JWTTrusted is the JWKS refresh of each trusted external issuer
		// (tokens.jwt.trusted) on this node; never key material.
		JWTTrusted []jwt.TrustedStatus `json:"jwt_trusted,omitempty"`
	}{Status: d.node.Status(rctx)}
	for _, t := range d.jwt.trustedIssuers() {
		st.JWTTrusted = append(st.JWTTrusted, t.Status())
	}
	b, err := json.Marshal(st)
	if err != nil {
		httpapi.WriteError(ctx, fasthttp.StatusInternalServerError, "internal", "cannot encode the cluster status")
		return
	}
	httpapi.WriteJSON(ctx, fasthttp.StatusOK, b)
}

// handleClusterLeave answers POST /v1/cluster/leave: the node leaves the
// cluster for good (handing leadership over first) and then shuts down, as
// `consul leave` does.
func (d *daemon) handleClusterLeave(ctx *fasthttp.RequestCtx) {
	d.leaveMu.Lock()
	defer d.leaveMu.Unlock()
	select {
	case <-d.left:
	default:
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := d.node.Leave(rctx)
		if err != nil {
			// cluster.ErrLastServer is 409 last_server, cluster.ErrLeaveFailed
			// 503 leave_failed with its reason (httpapi's error table).
			if !errors.Is(err, cluster.ErrLastServer) {
				d.log.Error("cannot leave the cluster", "err", err)
			}
			d.http.Fail(ctx, "/v1/cluster/leave", err)
			return
		}
		close(d.left)
	}
	httpapi.WriteJSON(ctx, fasthttp.StatusOK, []byte(`{"left":true}`))
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
	return p
}

// clusterConfig maps cluster.* onto the node's Config; formats are the
// token formats the node runs with (their settings are in the fingerprint).
func clusterConfig(cfg *Config, formats *token.Formats) cluster.Config {
	c := cluster.DefaultConfig()
	c.NodeID = cfg.Node.ID
	c.DataDir = cfg.Node.DataDir
	c.Name = cfg.Cluster.Name
	c.GossipAddr = cfg.Cluster.GossipAddr
	c.GossipAdvertise = cfg.Cluster.GossipAdvertise
	c.RaftAddr = cfg.Cluster.RaftAddr
	c.RaftAdvertise = cfg.Cluster.RaftAdvertise
	c.HTTPAddr = cfg.HTTP.Addr
	c.Join = cfg.Cluster.Join
	c.BootstrapExpect = cfg.Cluster.BootstrapExpect
	c.ReplicationCount = cfg.Cluster.ReplicationCount
	c.Policy = cfg.Cluster.ReplicationPolicy
	c.MaxStaleness = cfg.Cluster.MaxStaleness
	c.EncryptKey = cfg.Cluster.EncryptKey.Reveal()
	c.SecondaryEncryptKeys = splitKeys(cfg.Cluster.EncryptKeySecond.Reveal())
	c.TLS = cluster.TLSConfig{CAFile: cfg.Cluster.TLS.CAFile, CertFile: cfg.Cluster.TLS.CertFile, KeyFile: cfg.Cluster.TLS.KeyFile}
	c.Insecure = cfg.Cluster.Insecure
	c.RaftStore = cfg.Cluster.RaftStore
	c.ElectionTimeout = cfg.Cluster.ElectionTimeout
	c.HeartbeatTimeout = cfg.Cluster.ElectionTimeout
	c.LeaderLease = min(c.LeaderLease, cfg.Cluster.ElectionTimeout/2)
	c.ReconcileInterval = cfg.Cluster.ReconcileInterval
	c.DeadServerCleanup = cfg.Cluster.DeadServerCleanup
	c.Fingerprint = fingerprint(cfg, formats)
	return c
}

// splitKeys splits a comma-separated list of keys.
func splitKeys(s string) []string {
	var out []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	return out
}

// fingerprint digests the settings every node of a cluster must share: the
// token rules, the token formats (each format's own settings: the opaque
// format's prefix and a hash of the pepper, since a token hashed under one
// pepper is unknown under another; the JWT format's issuer and audiences,
// not its keys, see jwt.Codec.Fingerprint) and whether the store is shared
// (only then does the leader alone write it). A node whose fingerprint
// differs is refused a vote.
//
// The digested text is pinned (TestFingerprintPinned): nodes of one cluster
// on old and new binaries must compute the same fingerprint from the same
// settings. The opaque format's part reads exactly as the prefix and pepper
// parts did before formats had a seam, so the text of a cluster that uses
// only the opaque format is unchanged; another format adds its own part.
// formats are the ones the node runs with (tokenFormats), built once; nil
// (settings serve refuses) gives a fingerprint no node shares.
func fingerprint(cfg *Config, formats *token.Formats) string {
	if formats == nil {
		return "no-formats"
	}
	shared := cfg.Persist.Store == persist.StoreMySQL
	s := fmt.Sprintf("v1|expiry=%s|retention=%s|idle=%s|%s|shared=%t",
		cfg.Tokens.Expiry, cfg.Tokens.Retention, cfg.Tokens.IdleTimeout, formats.Fingerprint(), shared)
	if cfg.Persist.Store == persist.StoreNone {
		// A node without a store judges local JWTs by their claims and
		// cannot apply a stored token's write: it never shares a log with
		// a node that stores tokens. (Appended only here, so that every
		// other setting keeps the fingerprint it had.)
		s += "|store=none"
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// tokenFormats returns the token formats this node accepts, in the order a
// presented token is tried against them. The opaque format is always there
// (delegated tokens use it); the JWT format when jf is not nil
// (newJWTFormat). A new format is registered here: the service, the HTTP
// API and the fingerprint all take the formats from this list.
func tokenFormats(cfg *Config, jf *jwtFormat) (*token.Formats, error) {
	codecs := []token.Codec{
		token.NewOpaque(cfg.Tokens.Prefix, token.NewHasher([]byte(cfg.Tokens.Pepper.Reveal()))),
	}
	if jf != nil {
		codecs = append(codecs, jf.codec)
	}
	formats, err := token.NewFormats(codecs...)
	if err != nil {
		return nil, fmt.Errorf("cannot set up the token formats: %w", err)
	}
	return formats, nil
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

// writerConfig maps the persist.* keys of the store writer (write_mode,
// batch_size, flush_interval, max_pending), which replica.WriterConfig
// declares, defaults and validates.
func writerConfig(cfg *Config) replica.WriterConfig {
	w := replica.DefaultWriterConfig()
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
	h.Concurrency = cfg.HTTP.MaxConns
	h.MaxConnsPerIP = cfg.HTTP.MaxConnsPerIP
	h.ReadTimeout = cfg.HTTP.ReadTimeout
	h.WriteTimeout = cfg.HTTP.WriteTimeout
	h.IdleTimeout = cfg.HTTP.IdleTimeout
	h.DrainDelay = cfg.HTTP.DrainDelay
	h.Authz.Cookie = cfg.Authz.Cookie
	for _, r := range cfg.Authz.Rules {
		h.Authz.Rules = append(h.Authz.Rules, httpapi.AuthzRule{PathPrefix: r.PathPrefix, Scopes: r.Scopes})
	}
	return h
}
