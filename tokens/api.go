package tokens

import (
	"time"

	"github.com/tokencache/tokencache/internal/errcode"
	"github.com/tokencache/tokencache/replica"
	"github.com/tokencache/tokencache/token"
)

// Errors of the token service. Each carries its stable code (errcode.Of):
// httpapi maps the code to one status in one table, and the cluster RPC
// carries it across a forward. Callers compare with errors.Is. Field-level
// input problems wrap token.ErrInvalid (400) or token.ErrMalformed (400).
var (
	// ErrNotFound: no such token (404).
	ErrNotFound = errcode.New(errcode.NotFound, "token not found")
	// ErrParentNotFound: the parent of a new token does not exist (404).
	ErrParentNotFound = errcode.New(errcode.ParentNotFound, "parent token not found")
	// ErrParentNotValid: the parent exists but is expired, revoked or idle (409).
	ErrParentNotValid = errcode.New(errcode.ParentNotValid, "parent token is not valid")
	// ErrTokenNotValid: the token is revoked or expired and cannot be
	// modified (409): a revocation is final, and an expired token is kept
	// only for its history.
	ErrTokenNotValid = errcode.New(errcode.TokenNotValid, "token is not valid")
	// ErrTooManyDescendants: a cascade would touch more tokens than the
	// cascade limit (1,000,000) allows; nothing was revoked (409).
	ErrTooManyDescendants = errcode.New(errcode.TooManyDescendants, "too many descendants")
	// ErrDuplicateName: the user already has a live token with that name (409).
	ErrDuplicateName = errcode.New(errcode.DuplicateName, "the user already has a live token with that name")
	// ErrIdempotencyConflict: the Idempotency-Key was used for a different
	// request, or its token can no longer be shown (409).
	ErrIdempotencyConflict = errcode.New(errcode.IdempotencyConflict, "idempotency key already used")
	// The errors of replication are declared by package replica, where the
	// writer and the log answer them; these are the same values.

	// ErrStoreUnavailable: the SQL store cannot answer and the cache does not
	// hold the answer (503 store_unavailable).
	ErrStoreUnavailable = replica.ErrStoreUnavailable
	// ErrStale: this node has been out of contact with the leader for longer
	// than cluster.max_staleness and will not answer valid (503 stale).
	ErrStale = replica.ErrStale
	// ErrOverloaded: the write-behind queue is full (503 overloaded).
	ErrOverloaded = replica.ErrOverloaded
	// ErrNoLeader: no leader is known and the write could not be forwarded
	// within its deadline; it was not applied (503 no_leader).
	ErrNoLeader = replica.ErrNoLeader
	// ErrIndeterminate: the write may or may not have been applied (leader
	// lost mid-commit, deadline passed). Retry with the same Idempotency-Key
	// (503 indeterminate).
	ErrIndeterminate = replica.ErrIndeterminate
	// ErrShuttingDown: the node is stopping (503 shutting_down).
	ErrShuttingDown = replica.ErrShuttingDown
	// ErrStoreDisabled: the token store is disabled (persist.store none),
	// and the operation needs stored token records: an opaque token, a
	// listing, children, a modify, a delegation, the record of a key this
	// node does not hold (501 store_disabled). Only JWTs are usable then.
	ErrStoreDisabled = errcode.New(errcode.StoreDisabled, "the token store is disabled (persist.store: none): only JWTs are issued, validated and revoked")
)

// Validation is the answer to one validation. It is returned by value and
// points into the cache: callers must not change Token.
type Validation struct {
	State token.State
	// Token is the record for every state but unknown and malformed.
	Token *token.Token
	// Err is set when the node cannot decide (ErrStoreUnavailable, ErrStale,
	// ErrShuttingDown); State is then StateUnknown and the answer is a deny.
	Err error
}

// IssueRequest asks for a new token. Zero values take the defaults.
type IssueRequest struct {
	Username  string
	Realm     string // "" = token.DefaultRealm
	UID       int64
	HasUID    bool
	Type      token.Type
	Name      string
	Scopes    token.Scopes
	ExpiresIn time.Duration // 0 = tokens.expiry
	NoExpire  bool
	Parent    token.Key
	Service   string
	ClientID  string
	Format    token.Format
	// Audience is the space-separated audience of a JWT (its aud claim);
	// the codec's allow-list judges it (AudienceChecker). Only for JWTs.
	Audience string
	// Credentials are stored on the token sealed with tokens.safe_password
	// (never shown in listings).
	Credentials map[string]string
	// IdempotencyKey makes a retry return the first token instead of minting
	// a second.
	IdempotencyKey string
}

// Issued is a new (or, for an idempotent retry or a reused child, an earlier)
// token: the one time its full text is shown.
type Issued struct {
	Token  string       // the token text (secret included)
	Record *token.Token // the stored record
	Reused bool         // an existing token was handed out again
}

// ModifyRequest changes a token (Gafaelfawr's modify). Nil fields are kept.
type ModifyRequest struct {
	Key      token.Key
	Name     *string
	Scopes   *token.Scopes
	Expires  *time.Time
	NoExpire bool // make the token never expire (cannot be combined with Expires)
}

// DelegateRequest asks for a delegated child of a parent token (internal or
// notebook), reusing an existing one when it fits (token.Rules.Reusable).
type DelegateRequest struct {
	// ParentToken is the parent's full token text: delegation needs
	// possession of the parent, and only its holder can unseal a reused
	// child's secret.
	ParentToken string
	Delegation  token.Delegation
	// ExpiresIn is the lifetime of a newly minted child (0 = the parent's
	// remaining lifetime, capped by tokens.expiry when the parent never
	// expires).
	ExpiresIn time.Duration
}

// ListQuery selects tokens for a listing.
type ListQuery struct {
	Username string
	Type     token.Type
	Limit    int // 0 = Config.ListLimit; at most Config.MaxListLimit
}

// Stats is /v1/stats. The token counts come from the store; while it cannot
// answer they are null and StoreError says why, and the cache and lag
// figures (which matter most then) are still there.
type Stats struct {
	Tokens         *int64  `json:"tokens"`
	UniqueSessions *int64  `json:"unique_sessions"`
	UserTokens     *int64  `json:"user_tokens"`
	StoreError     string  `json:"store_error,omitempty"`
	CacheSize      int     `json:"cache_size"`
	CachePinned    int     `json:"cache_pinned"`
	CacheCapacity  int     `json:"cache_capacity"`
	CacheHitRate   float64 `json:"cache_hit_rate"`
	CacheHits      uint64  `json:"cache_hits"`
	CacheMisses    uint64  `json:"cache_misses"`
	StoreQueries   uint64  `json:"store_queries"`
	// Write-behind lag: changes applied but not yet in SQL, and the age of
	// the oldest one.
	PersistLagEntries int     `json:"persist_lag_entries"`
	PersistLagSeconds float64 `json:"persist_lag_seconds"`
	AppliedIndex      uint64  `json:"applied_index"`
	PersistedIndex    uint64  `json:"persisted_index"`
}
