package token

import "errors"

// Errors returned by this package. Callers compare with errors.Is.
var (
	// ErrMalformed means a token, key or field does not have the required form.
	ErrMalformed = errors.New("malformed")
	// ErrInvalid means a field value breaks a rule (unknown type, bad scope,
	// negative lifetime, …). It wraps a message meant for the API caller.
	ErrInvalid = errors.New("invalid")
)
