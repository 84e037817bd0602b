package listener

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// scriptedListener answers Accept with the errors it is given, then a
// connection.
type scriptedListener struct {
	net.Listener
	errs []error
}

func (l *scriptedListener) Accept() (net.Conn, error) {
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		return nil, err
	}
	c, _ := net.Pipe()
	return c, nil
}

func (l *scriptedListener) Close() error { return nil }

func (l *scriptedListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

func TestRetryListenerRetriesWhatPasses(t *testing.T) {
	var logs bytes.Buffer
	var errs []error
	for i := 0; i < 12; i++ {
		errs = append(errs, acceptErr(syscall.EMFILE))
	}
	errs = append(errs, acceptErr(syscall.ENFILE))
	now := time.Unix(0, 0)
	var slept []time.Duration
	l := NewRetrying(&scriptedListener{errs: errs}, slog.New(slog.NewTextHandler(&logs, nil)), func() time.Time { return now })
	l.sleep = func(d time.Duration, _ <-chan struct{}) bool {
		slept = append(slept, d)
		now = now.Add(d)
		return true
	}
	c, err := l.Accept()
	if err != nil || c == nil {
		t.Fatalf("Accept() = %v, %v; want a connection after the errors passed", c, err)
	}
	c.Close()
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000, 1000}
	if fmt.Sprint(slept) != fmt.Sprint(scale(want, time.Millisecond)) {
		t.Errorf("Accept slept %v, want %v", slept, scale(want, time.Millisecond))
	}
	// 6.3s of retries: logged at 0, 1.275s, 2.275s ... at most once a second.
	if n := strings.Count(logs.String(), "cannot accept a connection"); n < 2 || n > 7 {
		t.Errorf("logged the accept error %d times over %v, want at most once a second:\n%s", n, now.Sub(time.Unix(0, 0)), logs.String())
	}
	if !strings.Contains(logs.String(), "too many open files") {
		t.Errorf("logs = %s, want the error", logs.String())
	}
}

func TestRetryListenerReturnsPermanentErrors(t *testing.T) {
	perm := acceptErr(syscall.EINVAL)
	l := NewRetrying(&scriptedListener{errs: []error{perm}}, slog.New(slog.DiscardHandler), time.Now)
	if _, err := l.Accept(); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Accept() = %v, want the EINVAL it got", err)
	}
}

func TestRetryListenerStopsRetryingOnClose(t *testing.T) {
	errs := make([]error, 1000)
	for i := range errs {
		errs[i] = acceptErr(syscall.EMFILE)
	}
	l := NewRetrying(&scriptedListener{errs: errs}, slog.New(slog.DiscardHandler), time.Now)
	done := make(chan error, 1)
	go func() { _, err := l.Accept(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept() after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still retrying 5s after Close")
	}
}

func scale(ds []time.Duration, unit time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d * unit
	}
	return out
}
