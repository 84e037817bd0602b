package token

import (
	"fmt"
	"strings"
	"time"
)

// State is what a lookup answers about a token.
type State uint8

// States. Only StateValid lets a request through.
const (
	StateUnknown   State = iota // no such token (never issued, wrong secret, or past retention)
	StateValid                  // usable
	StateExpired                // past its expiry, still kept for its history
	StateRevoked                // revoked (directly or through an ancestor)
	StateIdle                   // unused for longer than the idle timeout
	StateMalformed              // not a token at all
)

var stateNames = [...]string{"unknown", "valid", "expired", "revoked", "idle", "malformed"}

// String returns the API name of the state.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Rules derive a token's state from the times carried in its record. They are
// the cluster-wide settings tokens.expiry, tokens.retention and
// tokens.idle_timeout. Rules never read a clock: callers pass now, so every
// node judges a token from the same record in the same way.
type Rules struct {
	// Expiry is the lifetime of a token that asks for none.
	Expiry time.Duration
	// Retention is the total time a token is kept: it is deleted once
	// min(expires, revoked_at) + (Retention - Expiry) has passed.
	Retention time.Duration
	// IdleTimeout, when positive, makes a token unused for that long idle.
	IdleTimeout time.Duration
}

// DefaultRules returns the defaults of DESIGN §2: 60m expiry, 24h retention,
// no idle timeout.
func DefaultRules() Rules {
	return Rules{Expiry: 60 * time.Minute, Retention: 24 * time.Hour}
}

// Validate reports every problem with r.
func (r Rules) Validate() error {
	var errs []string
	if r.Expiry <= 0 {
		errs = append(errs, "tokens.expiry must be positive")
	}
	if r.Retention <= 0 {
		errs = append(errs, "tokens.retention must be positive")
	}
	if r.Expiry > 0 && r.Retention > 0 && r.Expiry >= r.Retention {
		errs = append(errs, fmt.Sprintf("tokens.expiry %s must be less than tokens.retention (%s): a token must be kept longer than it lives",
			shortDuration(r.Expiry), shortDuration(r.Retention)))
	}
	if r.IdleTimeout < 0 {
		errs = append(errs, fmt.Sprintf("tokens.idle_timeout must be 0 (off) or a positive duration, got %s", r.IdleTimeout))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalid, joinSemicolon(errs))
}

// Grace is how long a token is kept after it stopped being usable
// (Retention - Expiry).
func (r Rules) Grace() time.Duration { return r.Retention - r.Expiry }

// TombstoneMargin is how long after a self-contained token's exp its
// revocation is still written and kept: at least the largest exp leeway a
// node may apply (tokens.jwt.leeway is at most 5 minutes), which also covers
// clock differences between nodes up to that much. A node whose clock is
// further behind may judge a revoked JWT valid once its tombstone is gone;
// keep node clocks synchronised (NTP), as for any expiry.
const TombstoneMargin = 5 * time.Minute

// EndOfUse returns min(expires, revoked_at): the time the token stopped (or
// will stop) being usable, or zero when it never expires and is not revoked.
//
// A revoked JWT (IsTombstone) is the exception: its text proves itself
// until its exp whatever happens to its record, so the record that says it
// is revoked must be kept at least that long, and TombstoneMargin longer
// (another node's clock may be behind, and a node may accept an exp within
// its leeway). Its end of use is its expiry plus that margin (retention then
// counts from there, as for a token that expired).
func EndOfUse(t *Token) Time {
	if t.IsTombstone() && t.Expires != 0 && t.Expires.Add(TombstoneMargin) > t.RevokedAt {
		return t.Expires.Add(TombstoneMargin)
	}
	switch {
	case t.Expires == 0:
		return t.RevokedAt
	case t.RevokedAt == 0:
		return t.Expires
	default:
		return min(t.Expires, t.RevokedAt)
	}
}

// DeleteAt returns the time from which t is past retention and must be
// deleted, or zero when it is kept for ever.
func (r Rules) DeleteAt(t *Token) Time {
	end := EndOfUse(t)
	if end == 0 {
		return 0
	}
	return end.Add(r.Grace())
}

// State returns the state of t at now. lastUsed is the latest known use
// (the larger of the record's LastUsed and any local, not yet replicated,
// use); zero means the record's LastUsed.
func (r Rules) State(t *Token, now Time, lastUsed Time) State {
	if del := r.DeleteAt(t); del != 0 && now >= del {
		return StateUnknown
	}
	// A revocation counts from the moment it is in the record, whatever the
	// local clock says: a node whose clock lags the leader's must not answer
	// valid for a token the leader has revoked.
	if t.RevokedAt != 0 {
		return StateRevoked
	}
	if t.Expires != 0 && now >= t.Expires {
		return StateExpired
	}
	if r.IdleTimeout > 0 {
		last := max(t.LastUsed, lastUsed, t.Created)
		if now >= last.Add(r.IdleTimeout) {
			return StateIdle
		}
	}
	return StateValid
}

// Live reports whether t counts as live for name uniqueness and listings of
// usable tokens: not revoked and not expired at now.
func Live(t *Token, now Time) bool {
	return t.RevokedAt == 0 && (t.Expires == 0 || now < t.Expires)
}

// shortDuration prints d as a configuration file writes it: "48h", not
// "48h0m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func joinSemicolon(list []string) string {
	s := ""
	for i, e := range list {
		if i > 0 {
			s += "; "
		}
		s += e
	}
	return s
}
