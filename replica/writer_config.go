package replica

import (
	"errors"
	"fmt"
	"time"
)

// Write modes (persist.write_mode).
const (
	WriteThrough = "through"
	WriteBehind  = "behind"
)

// Writer defaults (persist.batch_size, persist.flush_interval,
// persist.max_pending).
const (
	DefaultBatchSize     = 512
	DefaultFlushInterval = 50 * time.Millisecond
	DefaultMaxPending    = 100_000
)

// Upper bounds that catch typos (a batch of a billion rows is not a setting).
const (
	maxBatchSize  = 100_000
	maxMaxPending = 100_000_000
)

// WriterConfig configures how applied changes reach the store: the
// persist.write_mode, persist.batch_size, persist.flush_interval and
// persist.max_pending keys, declared, defaulted and validated here only.
type WriterConfig struct {
	// Mode is WriteThrough (a write is acknowledged once its rows are
	// committed) or WriteBehind (acknowledged once applied; rows follow in
	// batches) (persist.write_mode, default "through").
	Mode string
	// BatchSize is the most changes written in one transaction
	// (persist.batch_size, default 512).
	BatchSize int
	// FlushInterval is how long write-behind waits to fill a batch before
	// it writes a partial one (persist.flush_interval, default 50ms).
	FlushInterval time.Duration
	// MaxPending bounds the changes applied but not yet persisted; writes
	// beyond it answer ErrOverloaded. It bounds memory while SQL is down
	// (persist.max_pending, default 100000).
	MaxPending int
	// Timeout bounds one store transaction.
	Timeout time.Duration
	// RetryMax is the longest pause between retries while the store fails.
	RetryMax time.Duration
	// Now is the clock that times store transactions (the write metrics);
	// nil = time.Now. Nothing the writer decides depends on it.
	Now func() time.Time
}

// DefaultWriterConfig returns write-through with batches of 512 every 50ms
// at most and 100000 pending changes.
func DefaultWriterConfig() WriterConfig {
	return WriterConfig{
		Mode:          WriteThrough,
		BatchSize:     DefaultBatchSize,
		FlushInterval: DefaultFlushInterval,
		MaxPending:    DefaultMaxPending,
		Timeout:       10 * time.Second,
		RetryMax:      5 * time.Second,
	}
}

// Validate reports every problem with c, one error per problem joined
// (errors.Join), each starting with the configuration key it is about.
//
// A MaxPending below BatchSize works (a batch is then never full, so
// write-behind flushes on FlushInterval); the configuration check refuses
// it as a likely typo, on the persist.* keys only.
func (c WriterConfig) Validate() error {
	var errs []error
	if c.Mode != WriteThrough && c.Mode != WriteBehind {
		errs = append(errs, fmt.Errorf("persist.write_mode %q is not one of %s, %s", c.Mode, WriteThrough, WriteBehind))
	}
	if c.BatchSize < 1 || c.BatchSize > maxBatchSize {
		errs = append(errs, fmt.Errorf("persist.batch_size must be between 1 and %d (a positive count), got %d", maxBatchSize, c.BatchSize))
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("persist.flush_interval must be positive, got %s", c.FlushInterval))
	}
	if c.MaxPending < 1 || c.MaxPending > maxMaxPending {
		errs = append(errs, fmt.Errorf("persist.max_pending must be between 1 and %d (a positive count), got %d", maxMaxPending, c.MaxPending))
	}
	if c.Timeout <= 0 || c.RetryMax <= 0 {
		errs = append(errs, errors.New("writer timeouts must be positive"))
	}
	return errors.Join(errs...)
}
