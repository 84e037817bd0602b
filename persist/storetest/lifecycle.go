package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
)

func testConcurrentReaders(t *testing.T, s persist.Store) {
	const rowsN, batches, readers = 40, 60, 4
	base := make([]*token.Token, rowsN)
	for i := range base {
		base[i] = mk(1, fmt.Sprintf("user%d", i%5), at(time.Duration(i)*time.Second), named("1"))
	}
	write(t, s, &persist.Batch{Puts: base, Index: 1})
	c := ctx(t)
	done := make(chan struct{})
	errs := make(chan error, readers+1)
	go func() {
		defer close(done)
		for idx := uint64(2); idx <= batches; idx++ {
			b := &persist.Batch{Index: idx}
			for _, r := range base {
				n := r.Clone()
				n.Index = idx
				n.Ext.Name = fmt.Sprint(idx)
				n.Scopes = token.Scopes(fmt.Sprintf("v:%d", idx))
				b.Puts = append(b.Puts, n)
			}
			if err := s.Write(c, b); err != nil {
				errs <- fmt.Errorf("Write(index %d) = %w", idx, err)
				return
			}
		}
	}()
	check := func(r *token.Token) error {
		wantScopes := token.Scopes(fmt.Sprintf("v:%d", r.Index))
		if r.Index == 1 {
			wantScopes = "read:all"
		}
		if r.Name() != fmt.Sprint(r.Index) || r.Scopes != wantScopes {
			return fmt.Errorf("torn record %s", describe(r))
		}
		return nil
	}
	for g := range readers {
		go func() {
			var last uint64
			for i := 0; ; i++ {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				p, err := s.PersistedIndex(c)
				if err != nil {
					errs <- fmt.Errorf("PersistedIndex = %w", err)
					return
				}
				if p < last {
					errs <- fmt.Errorf("PersistedIndex went back from %d to %d", last, p)
					return
				}
				last = p
				r, err := s.Get(c, base[(g+i)%rowsN].Key)
				if err != nil {
					errs <- fmt.Errorf("get = %w", err)
					return
				}
				if r.Index < p {
					errs <- fmt.Errorf("get after persisted index %d returned a row of index %d", p, r.Index)
					return
				}
				if err := check(r); err != nil {
					errs <- err
					return
				}
				var page []*token.Token
				switch i % 3 {
				case 0:
					page, _, err = s.Newest(c, persist.Cursor{}, 10)
				case 1:
					page, err = s.List(c, persist.Query{Username: "user1", Limit: 10})
				case 2:
					page, err = s.Named(c, "user2", fmt.Sprint(p))
				}
				if err != nil {
					errs <- fmt.Errorf("read %d = %w", i%3, err)
					return
				}
				for _, r := range page {
					if err := check(r); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	for range readers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if got := persisted(t, s); got != batches {
		t.Fatalf("PersistedIndex after the writer = %d, want %d", got, batches)
	}
}

func testCanceledContext(t *testing.T, s persist.Store) {
	r := mk(1, "alice", at(0))
	put(t, s, r)
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if got, err := s.Get(c, r.Key); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get(canceled) = %s, %v; want context.Canceled", describe(got), err)
	}
	if got, err := s.List(c, persist.Query{Username: "alice", Limit: 1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("List(canceled) = %d rows, %v; want context.Canceled", len(got), err)
	}
	n := mk(2, "bob", at(0))
	if err := s.Write(c, &persist.Batch{Puts: []*token.Token{n}, Index: 2}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write(canceled) = %v, want context.Canceled", err)
	}
	wantMissing(t, s, n.Key)
	if got := persisted(t, s); got != 0 {
		t.Fatalf("PersistedIndex after a canceled write = %d, want 0", got)
	}
}

func testClose(t *testing.T, s persist.Store) {
	r := mk(1, "alice", at(0))
	put(t, s, r)
	if err := s.Ping(ctx(t)); err != nil {
		t.Fatalf("Ping = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	if got, err := s.Get(ctx(t), r.Key); err == nil {
		t.Fatalf("Get after Close = %s, nil; want an error", describe(got))
	}
	if err := s.Write(ctx(t), &persist.Batch{Puts: []*token.Token{mk(2, "b", at(0))}}); err == nil {
		t.Fatal("Write after Close = nil, want an error")
	}
	if err := s.Ping(ctx(t)); err == nil {
		t.Fatal("Ping after Close = nil, want an error")
	}
}
