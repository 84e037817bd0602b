package bench

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Workload is one kind of request the harness sends.
type Workload string

// The workloads. Each target supports a subset (Target.Supports).
const (
	// Validate checks a token that is in the node's cache (a cache hit):
	// GET /v1/validate with one of the hot tokens.
	Validate Workload = "validate"
	// ValidateMiss checks a token that is in the store but not in the
	// cache: the cold tokens are walked in order, and there are more of
	// them than the cache holds, so an LRU cache has always evicted the
	// next one.
	ValidateMiss Workload = "validate-miss"
	// Unknown checks a random, well-formed token that was never issued.
	Unknown Workload = "unknown"
	// Issue creates a token (POST /v1/tokens), a Raft write.
	Issue Workload = "issue"
	// Revoke revokes a token issued for the purpose (DELETE /v1/tokens/{key}).
	Revoke Workload = "revoke"
	// Introspect is the RFC 7662 form of validate (POST /v1/introspect).
	Introspect Workload = "introspect"
	// Authz is the forward-auth form of validate (GET /v1/authz).
	Authz Workload = "authz"
	// ValidateJWT is Validate with a hot token issued as a signed JWT
	// (the nodes need tokens.jwt.keys_file; spawned nodes get one).
	ValidateJWT Workload = "validate-jwt"
	// IssueJWT is Issue with "format":"jwt".
	IssueJWT Workload = "issue-jwt"
)

// Workloads lists every workload in a fixed order (the order of tables).
var Workloads = []Workload{Validate, ValidateMiss, Unknown, Issue, Revoke, Introspect, Authz, ValidateJWT, IssueJWT}

// IsWrite reports whether w changes state (goes through the Raft log).
func (w Workload) IsWrite() bool { return w == Issue || w == Revoke || w == IssueJWT }

// NeedsJWT reports whether the mix has a workload that needs the nodes to
// sign JWTs.
func (m Mix) NeedsJWT() bool { return m.Has(ValidateJWT) || m.Has(IssueJWT) }

// ParseWorkload returns the workload named s.
func ParseWorkload(s string) (Workload, error) {
	w := Workload(strings.TrimSpace(s))
	if slices.Contains(Workloads, w) {
		return w, nil
	}
	names := make([]string, len(Workloads))
	for i, w := range Workloads {
		names[i] = string(w)
	}
	return "", fmt.Errorf("unknown workload %q (want one of %s)", s, strings.Join(names, ", "))
}

// Mix is a weighted choice of workloads. The zero Mix is empty and invalid.
// A Mix is immutable after ParseMix and safe for concurrent use.
type Mix struct {
	entries []mixEntry
	total   int
}

type mixEntry struct {
	w      Workload
	weight int
	upto   int // cumulative weight, exclusive upper bound
}

// ParseMix parses a mix such as "validate=90,revoke=5,issue=5". A workload
// alone ("validate") has weight 1. Weights are non-negative integers; a
// workload may appear once; zero weights are dropped; at least one weight
// must be positive. Every problem is reported.
func ParseMix(s string) (Mix, error) {
	var m Mix
	var errs []error
	seen := map[Workload]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, weightText, hasWeight := strings.Cut(part, "=")
		w, err := ParseWorkload(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		weight := 1
		if hasWeight {
			weight, err = strconv.Atoi(strings.TrimSpace(weightText))
			if err != nil || weight < 0 {
				errs = append(errs, fmt.Errorf("weight of %s must be a non-negative integer, got %q", w, weightText))
				continue
			}
		}
		if seen[w] {
			errs = append(errs, fmt.Errorf("workload %s appears twice", w))
			continue
		}
		seen[w] = true
		if weight == 0 {
			continue
		}
		m.total += weight
		m.entries = append(m.entries, mixEntry{w: w, weight: weight, upto: m.total})
	}
	if len(errs) == 0 && m.total == 0 {
		errs = append(errs, errors.New("the mix has no workload with a positive weight"))
	}
	if len(errs) > 0 {
		return Mix{}, fmt.Errorf("cannot parse workload mix %q: %w", s, errors.Join(errs...))
	}
	return m, nil
}

// MustParseMix is ParseMix for constant mixes; it panics on error.
func MustParseMix(s string) Mix {
	m, err := ParseMix(s)
	if err != nil {
		panic(err)
	}
	return m
}

// Pick returns the workload for a uniform random number r in [0, 2^64).
func (m Mix) Pick(r uint64) Workload {
	if len(m.entries) == 1 {
		return m.entries[0].w
	}
	x := int(r % uint64(m.total))
	for _, e := range m.entries {
		if x < e.upto {
			return e.w
		}
	}
	return m.entries[len(m.entries)-1].w
}

// Weight returns the weight of w (0 when w is not in the mix).
func (m Mix) Weight(w Workload) int {
	for _, e := range m.entries {
		if e.w == w {
			return e.weight
		}
	}
	return 0
}

// Has reports whether w has a positive weight.
func (m Mix) Has(w Workload) bool { return m.Weight(w) > 0 }

// IsZero reports whether the mix is empty.
func (m Mix) IsZero() bool { return m.total == 0 }

// Workloads returns the workloads of the mix in the fixed order of Workloads.
func (m Mix) Workloads() []Workload {
	var out []Workload
	for _, w := range Workloads {
		if m.Has(w) {
			out = append(out, w)
		}
	}
	return out
}

// Weights returns the mix as a map (for the result JSON).
func (m Mix) Weights() map[Workload]int {
	out := make(map[Workload]int, len(m.entries))
	for _, e := range m.entries {
		out[e.w] = e.weight
	}
	return out
}

// String returns the canonical text form, e.g. "validate=90,issue=5,revoke=5",
// or the workload alone for a mix of one ("validate").
func (m Mix) String() string {
	if len(m.entries) == 1 {
		return string(m.entries[0].w)
	}
	parts := make([]string, 0, len(m.entries))
	for _, w := range m.Workloads() {
		parts = append(parts, fmt.Sprintf("%s=%d", w, m.Weight(w)))
	}
	return strings.Join(parts, ",")
}

// MarshalText implements encoding.TextMarshaler.
func (m Mix) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *Mix) UnmarshalText(b []byte) error {
	parsed, err := ParseMix(string(b))
	if err != nil {
		return err
	}
	*m = parsed
	return nil
}
