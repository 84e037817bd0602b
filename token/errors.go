package token

import (
	"fmt"

	"github.com/tokencache/tokencache/internal/errcode"
)

// Errors returned by this package. Callers compare with errors.Is; each
// carries its stable code (errcode.Of).
var (
	// ErrMalformed means a token, key or field does not have the required form.
	ErrMalformed = errcode.New(errcode.Malformed, "malformed")
	// ErrInvalid means a field value breaks a rule (unknown type, bad scope,
	// negative lifetime, …). It wraps a message meant for the API caller.
	ErrInvalid = errcode.New(errcode.Invalid, "invalid")
	// ErrExpired is the Parse failure of a self-contained token (a JWT)
	// whose own, verified, text proves it has expired: its signature
	// verified and its exp has passed. Validation answers "expired", as for
	// an expired record; it wraps ErrMalformed like every Parse failure.
	ErrExpired = fmt.Errorf("%w: expired", ErrMalformed)
)
