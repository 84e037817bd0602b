package main

import (
	"context"
	"errors"
	"log/slog"
)

// run starts the daemon with a validated configuration and blocks until ctx
// is cancelled (SIGINT/SIGTERM) and shutdown has finished.
//
// Placeholder: the lead replaces this file with the wiring of cache,
// persist, tokens, cluster and httpapi.
func run(ctx context.Context, cfg *Config, log *slog.Logger) error {
	_, _, _ = ctx, cfg, log
	return errors.New("serve is not wired yet")
}
