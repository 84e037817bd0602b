package bench

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/valyala/fasthttp"
)

// ErrorKind classifies a failed request in results: the class of an
// unexpected HTTP status, a timeout, a connection error, or another error.
type ErrorKind string

// The error kinds.
const (
	KindStatus4xx  ErrorKind = "http_4xx"   // unexpected 4xx answer
	KindStatus5xx  ErrorKind = "http_5xx"   // 5xx answer
	KindStatusElse ErrorKind = "http_other" // unexpected 1xx, 2xx or 3xx answer
	KindTimeout    ErrorKind = "timeout"    // no answer within Config.Timeout
	KindConnection ErrorKind = "connection" // refused, reset, closed, DNS
	KindInactive   ErrorKind = "inactive"   // introspection said active=false for a valid token
	KindExhausted  ErrorKind = "exhausted"  // nothing left to revoke: raise --revoke-pool
	KindOther      ErrorKind = "other"      // anything else (the target's own errors)
)

// Sentinel errors of the package.
var (
	// ErrUnsupported is returned for a workload a target cannot run.
	ErrUnsupported = errors.New("workload not supported by this target")
	// ErrInactive is an introspection that answered {"active":false} for
	// a token that should be valid.
	ErrInactive = errors.New("introspection answered active=false for a valid token")
	// ErrExhausted is returned by the revoke workload when no token is left
	// to revoke; it is counted as KindExhausted.
	ErrExhausted = errors.New("no token left to revoke")
	// ErrNoChart is returned for a chart by a binary that draws none (the
	// daemon: charts need a plotting library it does not link).
	ErrNoChart = errors.New("this binary draws no charts; tokencache-bench does (make bench-tools)")
)

// StatusError is an HTTP answer with a status the workload did not expect.
type StatusError struct {
	Code int
}

func (e *StatusError) Error() string {
	return "unexpected HTTP status " + strconv.Itoa(e.Code)
}

// statusErrors holds one preallocated *StatusError per code, so that a flood
// of error answers does not allocate on the hot path.
var statusErrors = func() []*StatusError {
	s := make([]*StatusError, 600)
	for i := range s {
		s[i] = &StatusError{Code: i}
	}
	return s
}()

// statusError returns the StatusError for code.
func statusError(code int) error {
	if code >= 0 && code < len(statusErrors) {
		return statusErrors[code]
	}
	return &StatusError{Code: code}
}

// Classify returns the kind of a request error (err must not be nil).
func Classify(err error) ErrorKind {
	var se *StatusError
	switch {
	case errors.As(err, &se):
		switch {
		case se.Code >= 500:
			return KindStatus5xx
		case se.Code >= 400:
			return KindStatus4xx
		}
		return KindStatusElse
	case errors.Is(err, ErrExhausted):
		return KindExhausted
	case errors.Is(err, ErrInactive):
		return KindInactive
	case isTimeout(err):
		return KindTimeout
	case isConnection(err):
		return KindConnection
	}
	return KindOther
}

func isTimeout(err error) bool {
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, fasthttp.ErrDialTimeout) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isConnection(err error) bool {
	if errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, fasthttp.ErrNoFreeConns) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var oe *net.OpError
	var de *net.DNSError
	return errors.As(err, &oe) || errors.As(err, &de)
}
