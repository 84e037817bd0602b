// Package replica is the replicated state of tokencache: what every node
// holds identically because it applied the same log.
//
//   - Machine applies log commands, in log order, to the cache's pinned set
//     (every change the store may not hold yet), remembers which token each
//     Idempotency-Key minted (the idempotency table), and records the
//     cluster's identity. Apply is a pure function of the command and the
//     state: no clock (commands carry the proposer's time), no network, no
//     I/O that could fail differently on two nodes.
//   - Command is one log entry, with its versioned binary encoding
//     (testdata/command_*.golden); Command.Sync says whether it must be
//     proposed synchronously whatever the replication policy.
//   - Snapshot and Restore carry the whole state (pinned set, idempotency
//     table, indexes, cluster id and, for a local store, every row) in a
//     versioned, checksummed format (testdata/snapshot_v2.golden).
//   - Writer persists applied changes to the store (write-through or
//     write-behind), in log order, and releases them from the pinned set.
//   - LocalLog is the log of a single process (unit tests).
//
// The package knows neither the token service (tokens), which builds the
// commands, nor Raft (cluster), which orders them: both import it. Its
// errors (ErrNoLeader, ErrIndeterminate, ErrStale…) are the errors of
// replication, which tokens re-exports under the same names.
package replica
