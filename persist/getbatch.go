package persist

import (
	"context"
	"errors"
	"sync"

	"github.com/tokencache/tokencache/token"
)

// Batched point reads (server databases). A cache miss is one Get, and a
// node under a miss load runs many at once. One primary-key SELECT per Get
// costs a round trip and a statement execution each, on both sides: on a
// 2-core machine the server's per-statement work and the driver's socket
// writes, not the rows, were most of the cost of a miss
// (BenchmarkMySQLServiceMiss). So Gets that arrive while the store is busy
// are coalesced: a fixed set of workers (pool_size) each take the Gets
// waiting, up to getBatchMax, and read them with one
// SELECT … WHERE token_key IN (…). An idle store answers a lone Get at once
// (a batch of one); batches grow only when Gets queue up behind busy workers,
// so batching adds no waiting of its own.
//
// Every Get still gets its own answer: its row, ErrNotFound, a CorruptError
// for its row only, or the batch's error (pool timeout, query timeout,
// connection failure), which Get wraps with its key as before. A caller whose ctx ends stops
// waiting at once; its key is dropped from a batch not yet started.

// getBatchMax is the most keys one batched SELECT reads. Statements are
// prepared for the powers of two up to it; a batch is padded to the next
// one with its last key (the IN list ignores duplicates).
const getBatchMax = 64

// getQueueLen bounds the Gets waiting for a worker; past it a Get waits to
// enqueue (or for its ctx to end).
const getQueueLen = 4096

// getReq is one Get waiting for its batch.
type getReq struct {
	ctx  context.Context
	key  token.Key
	tok  *token.Token
	err  error
	done chan struct{} // capacity 1: the worker signals once
}

// getBatcher runs the batched reads of one SQLStore. Its goroutines are
// owned by the store: stop ends them and waits.
type getBatcher struct {
	s       *SQLStore
	reqs    chan *getReq
	queries []string // queries[i] reads 1<<i keys
	stopCh  chan struct{}
	wg      sync.WaitGroup
	free    sync.Pool // of *getReq
	once    sync.Once
}

func newGetBatcher(s *SQLStore, workers int) *getBatcher {
	b := &getBatcher{
		s:      s,
		reqs:   make(chan *getReq, getQueueLen),
		stopCh: make(chan struct{}),
	}
	for n := 1; n <= getBatchMax; n *= 2 {
		b.queries = append(b.queries, getManySQL(s.d, n))
	}
	b.free.New = func() any { return &getReq{done: make(chan struct{}, 1)} }
	b.wg.Add(workers)
	for range workers {
		go b.run()
	}
	return b
}

// getManySQL selects the rows of n keys.
func getManySQL(d dialect, n int) string { return selectIn(d, "token_key", n, "") }

// stop ends the workers and waits for them; Gets still waiting fail with
// errClosed. It is idempotent.
func (b *getBatcher) stop() {
	b.once.Do(func() {
		close(b.stopCh)
		b.wg.Wait()
	})
}

// get reads k through a batch. Errors other than ErrNotFound are returned
// unwrapped (translated like read's); Get adds the key.
func (b *getBatcher) get(ctx context.Context, k token.Key) (*token.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, b.s.translate(ctx, err)
	}
	r := b.free.Get().(*getReq)
	r.ctx, r.key = ctx, k
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		r.ctx = nil
		b.free.Put(r)
		return nil, b.s.translate(ctx, ctx.Err())
	case <-b.stopCh:
		return nil, errClosed
	}
	select {
	case <-r.done:
		t, err := r.tok, r.err
		*r = getReq{done: r.done}
		b.free.Put(r)
		return t, err
	case <-ctx.Done():
		// The worker may still answer r; it is left to the collector.
		return nil, b.s.translate(ctx, ctx.Err())
	case <-b.stopCh:
		return nil, errClosed
	}
}

func (b *getBatcher) run() {
	defer b.wg.Done()
	batch := make([]*getReq, 0, getBatchMax)
	args := make([]any, getBatchMax)
	rb := newRowBuf()
	for {
		batch = batch[:0]
		select {
		case r := <-b.reqs:
			batch = append(batch, r)
		case <-b.stopCh:
			return
		}
	fill:
		for len(batch) < getBatchMax {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		b.do(batch, args, rb)
	}
}

// do reads the keys of batch and answers every request in it.
func (b *getBatcher) do(batch []*getReq, args []any, rb *rowBuf) {
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			b.answer(r, nil, b.s.translate(r.ctx, err))
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	size, i := 1, 0
	for size < len(live) {
		size, i = size*2, i+1
	}
	for j := range size {
		args[j] = live[min(j, len(live)-1)].key[:]
	}
	err := b.s.read(context.Background(), func(ctx context.Context) error {
		st, err := b.s.rstmts.get(ctx, b.queries[i])
		if err != nil {
			return err
		}
		rows, err := st.QueryContext(ctx, args[:size]...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			t, err := rb.scan(rows)
			var ce *CorruptError
			if err != nil && !errors.As(err, &ce) {
				return err
			}
			// A corrupt row fails the Gets of its key only. Its raw key
			// is one of the keys asked for: the IN list matched it.
			for _, r := range live {
				if r.tok == nil && r.err == nil && string(r.key[:]) == string(rb.key) {
					r.tok, r.err = t, err
				}
			}
		}
		return rows.Err()
	})
	clear(args[:size])
	for _, r := range live {
		switch {
		case r.tok != nil || r.err != nil:
			b.answer(r, r.tok, r.err)
		case err != nil:
			b.answer(r, nil, err)
		default:
			b.answer(r, nil, ErrNotFound)
		}
	}
}

// answer hands r its result.
func (b *getBatcher) answer(r *getReq, t *token.Token, err error) {
	r.tok, r.err, r.ctx = t, err, nil
	r.done <- struct{}{}
}
