package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/tokencache/tokencache/internal/errcode"
	"github.com/tokencache/tokencache/replica"
)

// Forward sends a write (the token service's encoding, hashes only; the
// cluster does not read it) to the leader, whose WriteHandler runs it, and
// returns the handler's encoded result. While no leader is known, or the
// node it reached answers that it is not (or not yet) the leader, it
// retries with backoff until ctx ends: replica.ErrNoLeader then, since
// nothing was sent that could have been applied. Once a request has gone
// out and its answer is lost (connection cut, deadline), the outcome is
// unknown: replica.ErrIndeterminate at once (retry with the same
// Idempotency-Key). The leader's errors come back as stable codes that
// unwrap to the same sentinels.
//
// On success the node records the leader's commit index, so that its
// read-your-writes hook (CatchUp) waits for it on a miss, and waits (up to a
// second, within ctx) until it has applied the write itself.
func (n *Node) Forward(ctx context.Context, w []byte) ([]byte, error) {
	backoff := 5 * time.Millisecond
	var last string
	for {
		if !n.running() {
			return nil, n.notRunning()
		}
		if n.IsLeader() {
			if svc := n.service(); svc != nil {
				return svc.HandleWrite(ctx, w)
			}
		}
		if addr, leader := n.leaderRPCAddr(); addr != "" && leader != n.cfg.NodeID {
			res, retry, err := n.forwardOnce(ctx, addr, leader, w)
			if !retry {
				return res, err
			}
			last = err.Error()
		} else {
			last = "no leader known"
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: the write was not accepted before its deadline (%s): %w", replica.ErrNoLeader, last, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, max(n.cfg.ElectionTimeout/4, 10*time.Millisecond))
	}
}

// forwardOnce sends w to the leader at addr. retry is true when nothing was
// applied there and another try may succeed.
func (n *Node) forwardOnce(ctx context.Context, addr, leader string, w []byte) (res []byte, retry bool, err error) {
	req := forwardRequest{Write: w, Timeout: defaultRPCDelay}
	if dl, ok := ctx.Deadline(); ok {
		req.Timeout = time.Until(dl)
	}
	var resp forwardResponse
	sent, err := n.rpc.call(ctx, addr, leader, rpcForward, req, &resp)
	switch {
	case err != nil && !sent:
		return nil, true, err
	case err != nil:
		return nil, false, fmt.Errorf("%w: the write was sent to leader %s but its answer was lost: %s", replica.ErrIndeterminate, leader, err.Error())
	}
	switch resp.Code {
	case codeOK:
	case codeNotLeader, string(errcode.NoLeader), string(errcode.ShuttingDown):
		// Refused before anything was appended: try again.
		return nil, true, errorFromCode(resp.Code, resp.Msg)
	default:
		return nil, false, errorFromCode(resp.Code, resp.Msg)
	}
	// Read-your-writes on this node: wait (briefly; the entry reached this
	// node with the same replication round in practice) until it applied the
	// write before answering, so that the client that wrote through this
	// sidecar finds its token, its modification or its revocation here at
	// once. The leader's commit index is also noted for CatchUp.
	n.proposer.noteCommit(resp.Index)
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_ = n.proposer.waitApplied(wctx, resp.Index)
	return resp.Result, false, nil
}
