// Package listener holds what the daemon's listeners share: an accept loop
// that survives running out of file descriptors.
package listener

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/tokencache/tokencache/internal/lograte"
)

// The accept loop. fasthttp's Serve returns on any accept error that is not
// a timeout, and "accept: too many open files" is not one: a node out of
// file descriptors stopped serving for good (and exited with status 0); the
// Raft port's mux retried every 10ms and logged each time. Retrying does
// what net/http's Server.Serve does: it retries accept
// errors that pass once resources come back (EMFILE, ENFILE, ENOBUFS,
// ENOMEM, a connection aborted before it was accepted), sleeping 5ms, then
// twice as long each time up to 1s, and logs them at most once a second.
// Any other error is returned: the caller treats it as fatal.

const (
	acceptMinDelay = 5 * time.Millisecond
	acceptMaxDelay = time.Second
	acceptLogEvery = time.Second
)

// Retrying wraps a listener. Accept is called by one goroutine (an accept
// loop) and blocks; Close may be called from any goroutine.
type Retrying struct {
	net.Listener
	log   *slog.Logger
	sleep func(d time.Duration, stop <-chan struct{}) bool // false: stopped

	closeOnce sync.Once
	closed    chan struct{}

	logRate *lograte.Limiter
}

// NewRetrying wraps ln; it logs to log and reads the time from now (nil:
// time.Now).
func NewRetrying(ln net.Listener, log *slog.Logger, now func() time.Time) *Retrying {
	return &Retrying{Listener: ln, log: log, sleep: sleepOrStop, closed: make(chan struct{}),
		logRate: lograte.New(acceptLogEvery, now)}
}

// sleepOrStop sleeps for d, or until stop is closed (then it returns false).
func sleepOrStop(d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// Accept returns the next connection, retrying temporary errors.
func (l *Retrying) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			return c, nil
		}
		if !retryableAcceptError(err) {
			return nil, err
		}
		select {
		case <-l.closed:
			return nil, net.ErrClosed
		default:
		}
		if delay == 0 {
			delay = acceptMinDelay
		} else {
			delay = min(2*delay, acceptMaxDelay)
		}
		if ok, suppressed := l.logRate.Allow(); ok {
			l.log.Warn("cannot accept a connection; retrying (raise the file descriptor limit, or bound the connections: http.max_conns)", "addr", l.Addr().String(),
				"err", err, "retry_in", delay, "suppressed", suppressed)
		}
		if !l.sleep(delay, l.closed) {
			return nil, net.ErrClosed
		}
	}
}

// Close closes the listener and stops a retrying Accept. It is idempotent.
func (l *Retrying) Close() error {
	err := net.ErrClosed
	l.closeOnce.Do(func() {
		close(l.closed)
		err = l.Listener.Close()
	})
	return err
}

// retryableAcceptError reports whether an accept error passes once
// resources come back.
func retryableAcceptError(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
