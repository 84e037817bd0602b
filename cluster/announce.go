package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/tokencache/tokencache/replica"
)

// announcer proposes the store's persisted index (OpPersisted) for the SQL
// writer of a shared store. At most one OpPersisted is in flight; a later
// index replaces an earlier one not yet sent. It is safe for concurrent
// use.
type announcer struct {
	latest  atomic.Uint64 // the latest index asked for
	running atomic.Bool   // a sender runs

	closing func() bool            // the node is closing: refuse
	propose func(idx uint64) error // proposes one OpPersisted
	log     *slog.Logger
}

func newAnnouncer(closing func() bool, propose func(uint64) error, log *slog.Logger) *announcer {
	return &announcer{closing: closing, propose: propose, log: log}
}

// announce is the writer's OpPersisted hook: it records the index and makes
// sure one sender proposes it. It never blocks the writer.
func (a *announcer) announce(_ context.Context, index uint64) error {
	for {
		cur := a.latest.Load()
		if index <= cur || a.latest.CompareAndSwap(cur, index) {
			break
		}
	}
	if a.closing() {
		return fmt.Errorf("%w: cannot announce the persisted index", replica.ErrShuttingDown)
	}
	if a.running.CompareAndSwap(false, true) {
		// Not tracked by the node's wait group: the writer may call this
		// after Close (its final flush); the loop ends at once then
		// (Propose refuses).
		go a.loop()
	}
	return nil
}

func (a *announcer) loop() {
	var sent uint64
	for {
		idx := a.latest.Load()
		if idx <= sent {
			a.running.Store(false)
			// An index recorded after the load above but before the store
			// found running set and started no sender: take it over.
			if a.latest.Load() > sent && a.running.CompareAndSwap(false, true) {
				continue
			}
			return
		}
		if err := a.propose(idx); err != nil {
			a.log.Debug("cannot announce persisted index", "index", idx, "err", err)
			a.running.Store(false)
			return
		}
		sent = idx
	}
}

// proposePersisted proposes one OpPersisted for the announcer.
func (n *Node) proposePersisted(idx uint64) error {
	ctx, cancel := context.WithTimeout(n.runCtx, 10*n.cfg.ElectionTimeout)
	defer cancel()
	_, err := n.Propose(ctx, &replica.Command{Op: replica.OpPersisted, Persisted: idx, Time: 0})
	return err
}
