package jwt

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tokencache/tokencache/token"
)

// Defaults and limits of Config.
const (
	DefaultLeeway = 30 * time.Second
	// MaxLeeway is token.TombstoneMargin: a revocation's tombstone must
	// outlive the exp leeway of every node.
	MaxLeeway        = token.TombstoneMargin
	DefaultCacheSize = 65536
	// MaxTokenLen is the longest token text Match accepts: a bound on what
	// a request can make the parser decode (CVE-2025-30204).
	MaxTokenLen = 16 << 10
	// AnyAudience alone in an allow-list accepts every audience.
	AnyAudience = "*"
)

// Config is the local issuer's settings (tokens.jwt.*).
type Config struct {
	// Issuer is the iss of the tokens this server signs
	// (tokens.jwt.issuer).
	Issuer string
	// Audiences is the aud allow-list (tokens.jwt.audiences): every
	// audience a local token names must be one of them; AnyAudience ("*")
	// accepts any. An issue that names no audience gets the first entry
	// other than "*" (or the issuer, when "*" is the only one).
	Audiences []string
	// Leeway is the clock skew allowed on exp, nbf and iat
	// (tokens.jwt.leeway); at most MaxLeeway.
	Leeway time.Duration
	// CacheSize bounds the verified-token cache, in entries
	// (tokens.jwt.verified_cache).
	CacheSize int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults: no issuer (one must be set), any
// audience, DefaultLeeway, DefaultCacheSize, time.Now.
func DefaultConfig() Config {
	return Config{
		Audiences: []string{AnyAudience},
		Leeway:    DefaultLeeway,
		CacheSize: DefaultCacheSize,
		Now:       time.Now,
	}
}

// Validate reports every problem of c as the config of a codec that signs
// (the issuer is required).
func (c Config) Validate() error { return c.validate(true) }

// validate reports every problem of c; the issuer is required when signs
// (a validate-only codec, built without keys, has no local issuer).
func (c Config) validate(signs bool) error {
	var errs []error
	if err := token.ValidText("issuer", c.Issuer, 1024, signs); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrConfig, err))
	}
	if len(c.Audiences) == 0 {
		errs = append(errs, fmt.Errorf("%w: no audience is allowed; list the audiences tokens may name, or %q for any", ErrConfig, AnyAudience))
	}
	for _, a := range c.Audiences {
		if err := validAudience(a); err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrConfig, err))
		}
	}
	if c.Leeway < 0 || c.Leeway > MaxLeeway {
		errs = append(errs, fmt.Errorf("%w: leeway %s is outside 0 to %s", ErrConfig, c.Leeway, MaxLeeway))
	}
	if c.CacheSize <= 0 {
		errs = append(errs, fmt.Errorf("%w: the verified-token cache size must be positive, got %d", ErrConfig, c.CacheSize))
	}
	return errors.Join(errs...)
}

// validAudience checks one audience: printable ASCII without spaces (a
// record keeps audiences space-separated), at most 1024 bytes.
func validAudience(a string) error {
	if a == "" {
		return fmt.Errorf("%w: empty audience", token.ErrInvalid)
	}
	if len(a) > 1024 {
		return fmt.Errorf("%w: audience longer than 1024 bytes", token.ErrInvalid)
	}
	for i := 0; i < len(a); i++ {
		if c := a[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("%w: audience %q holds a space or a character other than printable ASCII", token.ErrInvalid, a)
		}
	}
	return nil
}

// audienceAllowed reports whether aud names this server: at least one of
// its values is in allow (or allow holds AnyAudience), as RFC 7519 section
// 4.1.3 has it ("the principal processing the claim" must "identify itself
// with a value in the audience claim"; Vault's bound_audiences and
// golang-jwt's WithAudience judge the same way). A missing or empty aud, or
// one holding an empty value, is never allowed (RFC 8725 section 3.9; the
// CVE-2020-26160 regression: an array is checked like a string).
func audienceAllowed(allow []string, aud []string) bool {
	if len(aud) == 0 {
		return false
	}
	for _, v := range aud {
		if v == "" {
			return false
		}
	}
	for _, a := range allow {
		if a == AnyAudience {
			return true
		}
		for _, v := range aud {
			if v == a {
				return true
			}
		}
	}
	return false
}

// defaultAudience is the aud of a token issued without one.
func (c Config) defaultAudience() string {
	for _, a := range c.Audiences {
		if a != AnyAudience {
			return a
		}
	}
	return c.Issuer
}

// splitAudience splits a record's space-separated audience.
func splitAudience(s string) []string { return strings.Fields(s) }
