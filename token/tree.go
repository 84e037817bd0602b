package token

// Descendants returns every descendant of root, breadth-first: direct
// children first, then their children, and so on (Gafaelfawr's
// get_children order). children returns the direct children of a set of
// keys, in a stable order. Descendants is iterative and keeps a visited set,
// so a corrupt store with a cycle cannot make it loop, and limit (when
// positive) caps the number of keys returned.
func Descendants(root Key, limit int, children func(parents []Key) ([]Key, error)) ([]Key, error) {
	visited := map[Key]struct{}{root: {}}
	var out []Key
	level := []Key{root}
	for len(level) > 0 {
		kids, err := children(level)
		if err != nil {
			return nil, err
		}
		var next []Key
		for _, k := range kids {
			if _, seen := visited[k]; seen {
				continue
			}
			visited[k] = struct{}{}
			out = append(out, k)
			next = append(next, k)
			if limit > 0 && len(out) >= limit {
				return out, nil
			}
		}
		level = next
	}
	return out, nil
}

// Delegation describes a delegated child a caller asks for: an internal
// token for a service, or a notebook token (Gafaelfawr's
// get_internal_token_key / get_notebook_token_key).
type Delegation struct {
	Type       Type   // TypeInternal or TypeNotebook
	Service    string // internal only
	Scopes     Scopes // internal only; a notebook token carries its parent's scopes
	MinExpires Time   // the child must live at least until then; zero: no minimum
}

// Reusable reports whether child can be handed out again for d under parent
// at now: same parent, same type, same service and scopes (internal), still
// valid, living at least until d.MinExpires, and minted by a delegation, so
// that it carries its secret sealed under the parent's (Extra.Sealed): a
// child issued by an admin with the same type, service and scopes has none,
// and only its first caller ever held its secret.
func (r Rules) Reusable(child, parent *Token, d Delegation, now Time) bool {
	if child.Parent() != parent.Key || child.Type != d.Type {
		return false
	}
	if child.Ext == nil || len(child.Ext.Sealed) == 0 {
		return false
	}
	if d.Type == TypeInternal && (child.Service() != d.Service || child.Scopes != d.Scopes) {
		return false
	}
	if d.Type == TypeNotebook && child.Scopes != parent.Scopes {
		return false
	}
	if r.State(child, now, 0) != StateValid {
		return false
	}
	return child.Expires == 0 || child.Expires >= d.MinExpires
}
