// Package tokens is the token service of tokencache: validation (the hot
// path), the leader-side write operations (issue, modify, revoke with
// cascade, delegate, purge), listings, and the loops of a node (reaper,
// last-used replication, warm start). Writes become replica.Commands,
// proposed through the one interface the service consumes, Replication
// (replication.go), which the cluster implements and replica.LocalLog
// stands in for; the replicated state they change, and the writer that
// persists it, live in package replica. See docs/architecture.md for how
// the parts fit together.
package tokens

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokencache/tokencache/cache"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/replica"
	"github.com/tokencache/tokencache/token"
)

// Config configures a Service.
type Config struct {
	Prefix string      // tokens.prefix
	Rules  token.Rules // tokens.expiry, retention, idle_timeout
	Pepper []byte      // tokens.pepper: HMAC key for secret hashes (optional)
	// Formats are the token formats accepted and issued. nil is the opaque
	// format alone, with Prefix and Pepper; a caller that sets it builds
	// the opaque codec from the same two.
	Formats *token.Formats
	// MaxLifetime is the longest any token may live (tokens.max_lifetime):
	// it caps expires_in and a modify's expires, and while it is set a
	// token cannot be made never to expire (no_expire is refused).
	// NoMaxLifetime lifts the limit.
	MaxLifetime time.Duration
	// ReadTimeout bounds a store read on a cache miss.
	ReadTimeout time.Duration
	// WriteTimeout is the deadline of a write whose caller set none.
	WriteTimeout time.Duration
	// LoadBatchSize is the warm-start batch (cache.load_batch_size).
	LoadBatchSize int
	// ReapInterval is how often the leader deletes tokens past retention.
	ReapInterval time.Duration
	// ReapBatch is the most tokens deleted by one log entry.
	ReapBatch int
	// TouchInterval is how often recorded uses are replicated; 0 derives it
	// from the idle timeout (a tenth of it, between 1s and 30s).
	TouchInterval time.Duration
	// MaxDescendants bounds a cascade (and a children listing).
	MaxDescendants int
	// ListLimit is the default listing size, MaxListLimit its cap.
	ListLimit, MaxListLimit int
	// Now is the clock; nil = time.Now.
	Now func() time.Time
}

// NoMaxLifetime as Config.MaxLifetime lets tokens ask for any lifetime (up to
// what the API accepts) and never expire.
const NoMaxLifetime time.Duration = -1

// DefaultConfig returns the defaults of DESIGN §7.
func DefaultConfig() Config {
	return Config{
		Prefix:         token.DefaultPrefix,
		Rules:          token.DefaultRules(),
		MaxLifetime:    365 * 24 * time.Hour,
		ReadTimeout:    2 * time.Second,
		WriteTimeout:   10 * time.Second,
		LoadBatchSize:  1024,
		ReapInterval:   time.Minute,
		ReapBatch:      1000,
		MaxDescendants: 1_000_000,
		ListLimit:      100,
		MaxListLimit:   10_000,
	}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if !token.ValidPrefix(c.Prefix) {
		errs = append(errs, fmt.Errorf("tokens.prefix %q must match [a-z][a-z0-9]{0,15}", c.Prefix))
	}
	if err := c.Rules.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxLifetime <= 0 && c.MaxLifetime != NoMaxLifetime {
		errs = append(errs, fmt.Errorf("tokens.max_lifetime must be a positive duration, or -1 for no limit, got %s", c.MaxLifetime))
	}
	if c.MaxLifetime > 0 && c.Rules.Expiry > c.MaxLifetime {
		errs = append(errs, fmt.Errorf("tokens.expiry %s must not exceed tokens.max_lifetime (%s)", c.Rules.Expiry, c.MaxLifetime))
	}
	if c.ReadTimeout <= 0 || c.WriteTimeout <= 0 {
		errs = append(errs, errors.New("read and write timeouts must be positive"))
	}
	if c.LoadBatchSize <= 0 {
		errs = append(errs, fmt.Errorf("cache.load_batch_size must be positive, got %d", c.LoadBatchSize))
	}
	if c.ReapInterval <= 0 {
		errs = append(errs, fmt.Errorf("tokens.reap_interval must be a positive duration, got %s", c.ReapInterval))
	}
	if c.ReapBatch <= 0 {
		errs = append(errs, fmt.Errorf("the reap batch must be positive, got %d", c.ReapBatch))
	}
	if c.TouchInterval < 0 {
		errs = append(errs, errors.New("touch interval must not be negative"))
	}
	if c.MaxDescendants <= 0 {
		errs = append(errs, fmt.Errorf("the descendant limit must be positive, got %d", c.MaxDescendants))
	}
	if c.MaxListLimit <= 0 {
		errs = append(errs, fmt.Errorf("the largest listing limit must be positive, got %d", c.MaxListLimit))
	}
	if c.ListLimit <= 0 || (c.MaxListLimit > 0 && c.ListLimit > c.MaxListLimit) {
		errs = append(errs, fmt.Errorf("the default listing limit must be between 1 and the largest (%d), got %d", c.MaxListLimit, c.ListLimit))
	}
	return errors.Join(errs...)
}

// Service answers validations from memory and runs token writes through the
// log. It is safe for concurrent use.
type Service struct {
	cfg   Config
	rules token.Rules
	// formats parse and verify every presented token; opaque mints
	// delegated children (whose secrets are sealed under their parent's).
	formats *token.Formats
	opaque  token.Codec
	cache   *cache.Cache
	store   persist.Store
	// noStore is set when the store is disabled (persist.store none):
	// no token record is written; JWTs are judged by their claims.
	noStore bool
	state   *replica.Machine
	log     *slog.Logger
	now     func() time.Time
	load    cache.Loader

	repl  Replication
	locks userLocks
	memo  *memo

	stopping atomic.Bool
	started  atomic.Bool
	warm     atomic.Bool

	stopOnce sync.Once
	stop     chan struct{}
	wg       sync.WaitGroup
}

// New returns a Service over state (which holds the cache and the store)
// that writes through repl (cluster.Node, or replica.LocalLog for a single
// process). log is the node's logger, untagged: the service tags its own
// component.
func New(cfg Config, state *replica.Machine, repl Replication, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid token service configuration: %w", err)
	}
	if state == nil || repl == nil {
		return nil, errors.New("cannot create the token service: nil state or replication")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	formats := cfg.Formats
	if formats == nil {
		var err error
		if formats, err = token.NewFormats(token.NewOpaque(cfg.Prefix, token.NewHasher(cfg.Pepper))); err != nil {
			return nil, fmt.Errorf("cannot set up the token formats: %w", err)
		}
	}
	opaque, ok := formats.Codec(token.FormatOpaque)
	if !ok {
		return nil, fmt.Errorf("invalid token service configuration: the opaque format is required (delegated tokens use it)")
	}
	s := &Service{
		cfg:     cfg,
		rules:   cfg.Rules,
		formats: formats,
		opaque:  opaque,
		cache:   state.Cache(),
		store:   state.Store(),
		noStore: persist.Disabled(state.Store()),
		state:   state,
		log:     log.With("component", "tokens"),
		now:     cfg.Now,
		repl:    repl,
		locks:   newUserLocks(),
		memo:    newMemo(),
		stop:    make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.load = s.loadFromStore
	return s, nil
}

// StoreDisabled reports whether the token store is disabled (persist.store
// none): then only JWTs are issued (without a record), validated (by their
// claims) and revoked (by a tombstone), and every operation on stored
// records answers ErrStoreDisabled.
func (s *Service) StoreDisabled() bool { return s.noStore }

// Start starts the writer, the warm start, the reaper and the last-used
// replication. It returns once the writer runs; warm start continues in the
// background.
func (s *Service) Start(ctx context.Context) error {
	if err := s.state.Writer().Start(ctx); err != nil {
		return err
	}
	s.started.Store(true)
	s.wg.Add(3)
	go func() { defer s.wg.Done(); s.warmStart() }()
	go func() { defer s.wg.Done(); s.reapLoop() }()
	go func() { defer s.wg.Done(); s.touchLoop() }()
	return nil
}

// Drain makes the service refuse new writes and report not ready, the first
// step of a graceful shutdown.
func (s *Service) Drain() { s.stopping.Store(true) }

// Close stops the background loops and flushes pending changes to the store
// (until ctx ends). It is idempotent; the store is not closed.
func (s *Service) Close(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		s.stopping.Store(true)
		close(s.stop)
		s.wg.Wait()
		err = s.state.Writer().Close(ctx)
	})
	return err
}

// Rules returns the expiry and retention rules.
func (s *Service) Rules() token.Rules { return s.rules }

// Ready reports whether the node can answer validations: started, not
// stopping, and (in a cluster) joined and caught up.
func (s *Service) Ready(ctx context.Context) error {
	switch {
	case s.stopping.Load():
		return ErrShuttingDown
	case !s.started.Load():
		return errors.New("starting")
	}
	return s.repl.ReadyCheck(ctx)
}

// Consistent implements the linearizable read barrier.
func (s *Service) Consistent(ctx context.Context) error {
	return s.repl.Consistent(ctx)
}

// Stats returns the counts of /v1/stats. Token counts come from the store
// and lag it by the write-behind window.
func (s *Service) Stats(ctx context.Context) (Stats, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadTimeout)
	defer cancel()
	cs := s.cache.Stats()
	out := Stats{
		CacheSize:      cs.Len,
		CachePinned:    cs.Pinned,
		CacheCapacity:  cs.Capacity,
		CacheHits:      cs.Hits,
		CacheMisses:    cs.Misses,
		StoreQueries:   cs.Loads,
		AppliedIndex:   s.state.AppliedIndex(),
		PersistedIndex: s.state.PersistedIndex(),
	}
	if total := cs.Hits + cs.Misses; total > 0 {
		out.CacheHitRate = float64(cs.Hits) / float64(total)
	}
	out.PersistLagEntries = cs.Pinned
	if at, ok := s.cache.OldestPinned(); ok {
		out.PersistLagSeconds = s.now().Sub(at).Seconds()
	}
	st, err := s.store.Stats(ctx, token.At(s.now()))
	if err != nil {
		// The cause may name a database host: log it, answer in general terms.
		s.log.Warn("cannot read token counts from the store", "err", err)
		out.StoreError = "the token store did not answer; see the node's log"
		return out, nil
	}
	out.Tokens, out.UniqueSessions, out.UserTokens = &st.Tokens, &st.UniqueSessions, &st.UserTokens
	return out, nil
}

// storeErr translates a store error for callers.
func (s *Service) storeErr(err error) error {
	switch {
	case errors.Is(err, persist.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, persist.ErrUnavailable):
		return fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	return err
}
