package tokens

import (
	"cmp"
	"context"
	"slices"

	"github.com/tokencache/tokencache/cache"
	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
)

// The view is the current state of every token: the store overlaid with the
// cache's pinned changes (every change the store may not hold yet). Writes on
// the leader are checked against it, and admin reads answer from it, so
// neither depends on how far SQL lags.

// get returns the newest record of k, or nil.
func (s *Service) get(ctx context.Context, k token.Key) (*token.Token, error) {
	if t, _, ok := s.cache.Get(k); ok {
		return t, nil
	}
	t, _, err := s.cache.Lookup(ctx, k, s.load)
	if err != nil {
		return nil, s.storeErr(err)
	}
	return t, nil
}

// overlay merges store rows with the pinned changes: a pinned record replaces
// the row of its key (or is added when match accepts it), a pinned deletion
// removes it.
func (s *Service) overlay(rows []*token.Token, match func(*token.Token) bool) []*token.Token {
	byKey := make(map[token.Key]int, len(rows))
	out := make([]*token.Token, 0, len(rows))
	for _, r := range rows {
		byKey[r.Key] = len(out)
		out = append(out, r)
	}
	removed := false
	s.cache.EachPinned(func(c cache.Change) bool {
		i, inRows := byKey[c.Key]
		switch {
		case c.Token == nil || !match(c.Token):
			if inRows && out[i] != nil {
				out[i] = nil
				removed = true
			}
		case inRows:
			if out[i] == nil || out[i].Index <= c.Token.Index {
				out[i] = c.Token
			}
		default:
			byKey[c.Key] = len(out)
			out = append(out, c.Token)
		}
		return true
	})
	if removed {
		out = slices.DeleteFunc(out, func(t *token.Token) bool { return t == nil })
	}
	return out
}

// named returns the live tokens of username called name.
func (s *Service) named(ctx context.Context, username, name string, now token.Time) ([]*token.Token, error) {
	rows, err := s.store.Named(ctx, username, name)
	if err != nil {
		return nil, s.storeErr(err)
	}
	all := s.overlay(rows, func(t *token.Token) bool { return t.Username == username && t.Name() == name })
	return slices.DeleteFunc(all, func(t *token.Token) bool { return !token.Live(t, now) }), nil
}

// children returns the direct children of any of parents, in (created, key)
// order.
func (s *Service) children(ctx context.Context, parents []token.Key) ([]*token.Token, error) {
	rows, err := s.store.Children(ctx, parents)
	if err != nil {
		return nil, s.storeErr(err)
	}
	set := make(map[token.Key]struct{}, len(parents))
	for _, p := range parents {
		set[p] = struct{}{}
	}
	all := s.overlay(rows, func(t *token.Token) bool {
		_, ok := set[t.Parent()]
		return ok
	})
	slices.SortFunc(all, func(a, b *token.Token) int {
		if c := cmp.Compare(a.Created, b.Created); c != 0 {
			return c
		}
		return slices.Compare(a.Key[:], b.Key[:])
	})
	return all, nil
}

// descendants returns every descendant of root, breadth-first.
func (s *Service) descendants(ctx context.Context, root token.Key) ([]*token.Token, error) {
	recs := make(map[token.Key]*token.Token)
	// Ask for one more than the limit, so that callers can tell "exactly the
	// limit" from "more than the limit".
	keys, err := token.Descendants(root, s.cfg.MaxDescendants+1, func(parents []token.Key) ([]token.Key, error) {
		kids, err := s.children(ctx, parents)
		if err != nil {
			return nil, err
		}
		out := make([]token.Key, len(kids))
		for i, t := range kids {
			recs[t.Key] = t
			out[i] = t.Key
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]*token.Token, len(keys))
	for i, k := range keys {
		out[i] = recs[k]
	}
	return out, nil
}

// list answers a listing from the view, newest first.
func (s *Service) list(ctx context.Context, q persist.Query) ([]*token.Token, error) {
	// Ask the store for enough rows that pinned changes hiding some of them
	// cannot leave the page short.
	wide := q
	wide.Limit = q.Limit + s.cache.Pinned()
	rows, err := s.store.List(ctx, wide)
	if err != nil {
		return nil, s.storeErr(err)
	}
	all := s.overlay(rows, func(t *token.Token) bool {
		return (q.Username == "" || t.Username == q.Username) && (q.Type == token.TypeUnknown || t.Type == q.Type)
	})
	sortNewestFirst(all)
	if len(all) > q.Limit {
		all = all[:q.Limit]
	}
	return all, nil
}

func sortNewestFirst(ts []*token.Token) {
	slices.SortFunc(ts, func(a, b *token.Token) int {
		if c := cmp.Compare(b.Created, a.Created); c != 0 {
			return c
		}
		return slices.Compare(b.Key[:], a.Key[:])
	})
}
