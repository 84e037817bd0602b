package tokens

import (
	"context"
	"fmt"

	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
)

// Info returns the record of k and its state now, as validation sees them
// (for a child: narrowed to its ancestors' current scopes and expiry). Tokens
// past retention are not found.
func (s *Service) Info(ctx context.Context, k token.Key) (*token.Token, token.State, error) {
	t, err := s.get(ctx, k)
	if err != nil {
		return nil, 0, err
	}
	if t == nil {
		if s.noStore {
			// Not "not found": nothing is stored, so the key may well
			// be a valid JWT's.
			return nil, 0, fmt.Errorf("%w: no record of %s is kept", ErrStoreDisabled, k)
		}
		return nil, 0, fmt.Errorf("%w: %s", ErrNotFound, k)
	}
	_, used, _ := s.cache.Get(k)
	now := token.At(s.now())
	st := s.rules.State(t, now, used)
	if st == token.StateUnknown {
		return nil, 0, fmt.Errorf("%w: %s", ErrNotFound, k)
	}
	if st == token.StateValid && !t.Parent().IsZero() {
		// As validation answers it: narrowed to, or ended by, its ancestors.
		if t, st, err = s.lineage(ctx, t, now); err != nil {
			return nil, 0, s.storeErr(err)
		}
	}
	return t, st, nil
}

// List returns tokens matching q, newest first.
func (s *Service) List(ctx context.Context, q ListQuery) ([]*token.Token, error) {
	if s.noStore {
		return nil, fmt.Errorf("%w: tokens are not stored, so they cannot be listed", ErrStoreDisabled)
	}
	limit := q.Limit
	switch {
	case limit == 0:
		limit = s.cfg.ListLimit
	case limit < 0 || limit > s.cfg.MaxListLimit:
		return nil, fmt.Errorf("%w: limit must be an integer from 1 to %d", token.ErrInvalid, s.cfg.MaxListLimit)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadTimeout)
	defer cancel()
	ts, err := s.list(ctx, persist.Query{Username: q.Username, Type: q.Type, Limit: limit})
	if err != nil {
		return nil, err
	}
	return s.dropPastRetention(ts), nil
}

// Children returns every descendant of k, breadth-first.
func (s *Service) Children(ctx context.Context, k token.Key) ([]*token.Token, error) {
	if s.noStore {
		return nil, fmt.Errorf("%w: no token has children", ErrStoreDisabled)
	}
	if _, _, err := s.Info(ctx, k); err != nil {
		return nil, err
	}
	ts, err := s.descendants(ctx, k)
	if err != nil {
		return nil, err
	}
	if len(ts) > s.cfg.MaxDescendants {
		return nil, fmt.Errorf("%w: %s has more than %d descendants", ErrTooManyDescendants, k, s.cfg.MaxDescendants)
	}
	return s.dropPastRetention(ts), nil
}

// Orphaned returns tokens whose parent no longer exists.
func (s *Service) Orphaned(ctx context.Context) ([]*token.Token, error) {
	if s.noStore {
		return nil, fmt.Errorf("%w: no token has a parent", ErrStoreDisabled)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadTimeout)
	defer cancel()
	ts, err := s.store.Orphaned(ctx, s.cfg.MaxListLimit)
	if err != nil {
		return nil, s.storeErr(err)
	}
	return s.dropPastRetention(ts), nil
}

// dropPastRetention hides records that are past retention but not yet reaped.
func (s *Service) dropPastRetention(ts []*token.Token) []*token.Token {
	now := token.At(s.now())
	out := ts[:0]
	for _, t := range ts {
		if del := s.rules.DeleteAt(t); del == 0 || now < del {
			out = append(out, t)
		}
	}
	return out
}
