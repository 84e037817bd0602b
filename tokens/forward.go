package tokens

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/tokencache/tokencache/token"
)

// A write received by a follower runs on the leader: the receiving node
// encodes its WriteRequest (JSON, hashes only: secrets never leave the node
// that received them), Replication.Forward carries the bytes to the leader,
// whose HandleWrite decodes and runs it and encodes the WriteResult back.
// The replication layer never reads either, so it does not depend on this
// package's types.

// forward runs w on the leader through the replication layer.
func (s *Service) forward(ctx context.Context, w *WriteRequest) (*WriteResult, error) {
	req, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("cannot encode a write to forward: %w", err)
	}
	raw, err := s.repl.Forward(ctx, req)
	if err != nil {
		return nil, err
	}
	res := &WriteResult{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, res); err != nil {
			return nil, fmt.Errorf("%w: cannot decode the leader's answer: %w", ErrIndeterminate, err)
		}
	}
	return res, nil
}

// HandleWrite runs on this node, which must be the leader, a write another
// node forwarded, and returns the encoded result. The cluster's forwarding
// endpoint calls it (cluster.WriteHandler). Safe for concurrent use.
func (s *Service) HandleWrite(ctx context.Context, write []byte) ([]byte, error) {
	var w WriteRequest
	if err := json.Unmarshal(write, &w); err != nil {
		return nil, fmt.Errorf("%w: cannot decode a forwarded write: %w", token.ErrInvalid, err)
	}
	res, err := s.LeaderWrite(ctx, &w)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot encode the result of a forwarded write: %w", ErrIndeterminate, err)
	}
	return b, nil
}
