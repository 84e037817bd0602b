package errcode

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

var (
	errA    = New("test_a", "a happened")
	errB    = New("test_b", "b happened")
	errUnkn = New(Indeterminate, "outcome unknown")
)

func TestMatch(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		code Code
		want error
	}{
		{"nil", nil, Internal, nil},
		{"plain", errors.New("boom"), Internal, nil},
		{"sentinel", errA, "test_a", errA},
		{"wrapped", fmt.Errorf("cannot x: %w", errA), "test_a", errA},
		{"first of two", fmt.Errorf("%w: %w", errB, errA), "test_b", errB},
		{"first in a join", errors.Join(errors.New("ctx"), errA, errB), "test_a", errA},
		{"indeterminate wins", errors.Join(errA, fmt.Errorf("x: %w", errUnkn)), Indeterminate, errUnkn},
		{"sentinel over deadline", fmt.Errorf("%w: %w", context.DeadlineExceeded, errA), "test_a", errA},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), Timeout, context.DeadlineExceeded},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), Canceled, context.Canceled},
		{"deadline before canceled", errors.Join(context.Canceled, context.DeadlineExceeded), Timeout, context.DeadlineExceeded},
	} {
		code, got := Match(tt.err)
		if code != tt.code || !errors.Is(got, tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("Match(%s) = %s, %v, want %s, %v", tt.name, code, got, tt.code, tt.want)
		}
	}
	if Of(nil) != "" || Of(errA) != "test_a" {
		t.Errorf("Of(nil), Of(errA) = %q, %q, want \"\", test_a", Of(nil), Of(errA))
	}
}

func TestLookupAndErrors(t *testing.T) {
	if err, ok := Lookup("test_a"); !ok || !errors.Is(err, errA) {
		t.Errorf("Lookup(test_a) = %v, %v, want errA", err, ok)
	}
	if err, ok := Lookup(Timeout); !ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lookup(timeout) = %v, %v, want context.DeadlineExceeded", err, ok)
	}
	for _, c := range []Code{Internal, "no_such_code"} {
		if err, ok := Lookup(c); ok {
			t.Errorf("Lookup(%s) = %v, true, want false", c, err)
		}
	}
	seen := map[Code]bool{}
	for _, err := range Errors() {
		c := Of(err)
		if seen[c] || c == Internal {
			t.Errorf("Errors() lists code %s twice or without a code (%v)", c, err)
		}
		seen[c] = true
	}
	for _, c := range []Code{"test_a", "test_b", Indeterminate, Timeout, Canceled} {
		if !seen[c] {
			t.Errorf("Errors() lacks %s", c)
		}
	}
}

func TestNewRefusesATakenCode(t *testing.T) {
	for _, c := range []Code{"test_a", Internal, ""} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%q) did not panic", c)
				}
			}()
			New(c, "again")
		}()
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	err := fmt.Errorf("cannot x: %w", errors.Join(errors.New("y"), fmt.Errorf("z: %w", errB)))
	if n := testing.AllocsPerRun(100, func() { _, _ = Match(err) }); n != 0 {
		t.Errorf("Match allocates %v times per call, want 0", n)
	}
}
