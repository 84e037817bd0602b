package lincheck

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Token is a token the workload holds (its text is known once its issue was
// acknowledged).
type Token struct {
	Family int
	Index  int
	Parent int // -1 for a root
	Key    string
	Text   string
}

// Target is the cluster under test as its clients see it. Each method sends
// one request to the named node and classifies the answer (see Result): a
// write whose outcome is unknown (timeout, reset, 503 indeterminate) is
// Ambiguous, never Failed. Implementations must be safe for concurrent use.
type Target interface {
	// Nodes returns the nodes requests may be sent to now.
	Nodes() []string
	// Issue issues a token (a child of parent when parent is not nil) with
	// a long lifetime, carrying idempotencyKey when it is not empty.
	Issue(ctx context.Context, node string, parent *Token, idempotencyKey string) (key, text string, out Output)
	// Revoke revokes tok (and its descendants): DELETE /v1/tokens/{key}, or
	// POST /v1/revoke when rfc7009 is set.
	Revoke(ctx context.Context, node string, tok Token, rfc7009 bool) Output
	// Validate validates tok, locally or with ?consistency=consistent.
	Validate(ctx context.Context, node string, tok Token, consistent bool) Output
}

// Workload shapes the clients' traffic. Zero values take the defaults noted.
type Workload struct {
	Seed         uint64
	Clients      int           // concurrent clients (4)
	WriteTimeout time.Duration // per issue or revoke (15s: a revoke may wait ~11s for a silent node)
	ReadTimeout  time.Duration // per validation (3s)
	Families     int           // families in play at once (10)
	Pause        time.Duration // between one client's operations (5ms)
}

// pool is the workload's view of the tokens, shared by its clients.
type pool struct {
	mu     sync.Mutex
	active []*family // families in play
	all    []*family // every family, for Sweep
}

type family struct {
	id     int
	tokens []*Token // by index; Text empty until acknowledged
	next   int      // next index to hand out
}

// Clients is a workload bound to a recorder and a target.
type Clients struct {
	w   Workload
	r   *Recorder
	tgt Target
	p   *pool
}

// NewClients returns the workload's clients; nothing runs until Run.
func (w Workload) NewClients(r *Recorder, tgt Target) *Clients {
	if w.Clients == 0 {
		w.Clients = 4
	}
	if w.WriteTimeout == 0 {
		w.WriteTimeout = 15 * time.Second
	}
	if w.ReadTimeout == 0 {
		w.ReadTimeout = 3 * time.Second
	}
	if w.Families == 0 {
		w.Families = 10
	}
	if w.Pause == 0 {
		w.Pause = 5 * time.Millisecond
	}
	return &Clients{w: w, r: r, tgt: tgt, p: &pool{}}
}

// Run drives the clients until ctx ends, recording every operation. It
// returns when every client has finished its last operation; it may be
// called again.
func (cs *Clients) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for c := range cs.w.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := cs.client(uint64(c))
			for ctx.Err() == nil {
				cl.step(ctx)
				select {
				case <-ctx.Done():
				case <-time.After(cs.w.Pause):
				}
			}
		}()
	}
	wg.Wait()
}

// Start runs the clients (Run) in the background until the returned stop
// is called; stop returns once every client has finished its last
// operation.
func (cs *Clients) Start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); cs.Run(ctx) }()
	return func() { cancel(); <-done }
}

// Sweep reads every acknowledged token of the run on every node, locally
// and with ?consistency=consistent (after the faults healed: invariant 4).
func (cs *Clients) Sweep(ctx context.Context) {
	cl := cs.client(1 << 32)
	cs.p.mu.Lock()
	var toks []Token
	for _, f := range cs.p.all {
		for _, t := range f.tokens {
			if t != nil && t.Text != "" {
				toks = append(toks, *t)
			}
		}
	}
	cs.p.mu.Unlock()
	for _, n := range cs.tgt.Nodes() {
		for i := range toks {
			cl.read(ctx, n, &toks[i], false)
			cl.read(ctx, n, &toks[i], true)
		}
	}
}

func (cs *Clients) client(c uint64) *client {
	return &client{w: cs.w, p: cs.p, r: cs.r, s: cs.r.Stream(), tgt: cs.tgt, rnd: rand.New(rand.NewPCG(cs.w.Seed, c))}
}

type client struct {
	w   Workload
	p   *pool
	r   *Recorder
	s   *Stream
	tgt Target
	rnd *rand.Rand
}

func (c *client) node() string {
	nodes := c.tgt.Nodes()
	if len(nodes) == 0 {
		return ""
	}
	return nodes[c.rnd.IntN(len(nodes))]
}

// known returns a random acknowledged token, or nil.
func (c *client) known() *Token {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	var all []*Token
	for _, f := range c.p.active {
		for _, t := range f.tokens {
			if t != nil && t.Text != "" {
				all = append(all, t)
			}
		}
	}
	if len(all) == 0 {
		return nil
	}
	t := *all[c.rnd.IntN(len(all))]
	return &t
}

func (c *client) step(ctx context.Context) {
	node := c.node()
	if node == "" {
		return
	}
	switch x := c.rnd.IntN(100); {
	case x < 12:
		c.issueRoot(ctx, node)
	case x < 24:
		if parent := c.known(); parent != nil {
			c.issueChild(ctx, node, parent)
		}
	case x < 34:
		if tok := c.known(); tok != nil {
			c.revoke(ctx, node, tok)
		}
	default:
		if tok := c.known(); tok != nil {
			c.read(ctx, node, tok, c.rnd.IntN(4) == 0)
		} else {
			c.issueRoot(ctx, node)
		}
	}
}

// newFamily starts a family (retiring the oldest when enough are in play).
func (c *client) newFamily() *family {
	id := c.r.NewFamily()
	f := &family{id: id, next: 1, tokens: make([]*Token, MaxTokens)}
	f.tokens[0] = &Token{Family: id, Index: 0, Parent: -1}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	c.p.active = append(c.p.active, f)
	c.p.all = append(c.p.all, f)
	if len(c.p.active) > c.w.Families {
		c.p.active = c.p.active[1:]
	}
	return f
}

func (c *client) setText(f, idx int, key, text string) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	for _, fam := range c.p.all {
		if fam.id == f && fam.tokens[idx] != nil {
			fam.tokens[idx].Key, fam.tokens[idx].Text = key, text
		}
	}
}

func (c *client) issueRoot(ctx context.Context, node string) {
	f := c.newFamily()
	idem := fmt.Sprintf("lin-%d-%d-%d", c.w.Seed, f.id, c.rnd.Uint32())
	in := Input{Kind: Issue, Family: f.id, Token: 0, Parent: -1, Node: node}
	for attempt := 0; attempt < 2; attempt++ {
		wctx, cancel := context.WithTimeout(ctx, c.w.WriteTimeout)
		op := c.s.Begin(in)
		key, text, out := c.tgt.Issue(wctx, node, nil, idem)
		cancel()
		op.End(out)
		if out.Result == OK {
			c.setText(f.id, 0, key, text)
			return
		}
		if out.Result != Ambiguous || ctx.Err() != nil {
			return
		}
		// An unknown outcome: retry once through the same node with the
		// same Idempotency-Key (its memo gives the same token).
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *client) issueChild(ctx context.Context, node string, parent *Token) {
	c.p.mu.Lock()
	var fam *family
	for _, f := range c.p.active {
		if f.id == parent.Family {
			fam = f
		}
	}
	if fam == nil || fam.next >= MaxTokens {
		c.p.mu.Unlock()
		return
	}
	idx := fam.next
	fam.next++
	fam.tokens[idx] = &Token{Family: fam.id, Index: idx, Parent: parent.Index}
	c.p.mu.Unlock()

	wctx, cancel := context.WithTimeout(ctx, c.w.WriteTimeout)
	defer cancel()
	op := c.s.Begin(Input{Kind: Issue, Family: fam.id, Token: idx, Parent: parent.Index, Node: node})
	key, text, out := c.tgt.Issue(wctx, node, parent, "")
	op.End(out)
	if out.Result == OK {
		c.setText(fam.id, idx, key, text)
	}
}

func (c *client) revoke(ctx context.Context, node string, tok *Token) {
	rfc := c.rnd.IntN(3) == 0
	wctx, cancel := context.WithTimeout(ctx, c.w.WriteTimeout)
	op := c.s.Begin(Input{Kind: Revoke, Family: tok.Family, Token: tok.Index, Parent: tok.Parent, Node: node, RFC7009: rfc})
	out := c.tgt.Revoke(wctx, node, *tok, rfc)
	cancel()
	op.End(out)
	if out.Result != OK {
		return
	}
	// Right after the acknowledgement, ask every node (invariant 2).
	for _, n := range c.tgt.Nodes() {
		c.read(ctx, n, tok, false)
	}
}

func (c *client) read(ctx context.Context, node string, tok *Token, consistent bool) {
	kind := Read
	if consistent {
		kind = ReadConsistent
	}
	rctx, cancel := context.WithTimeout(ctx, c.w.ReadTimeout)
	defer cancel()
	op := c.s.Begin(Input{Kind: kind, Family: tok.Family, Token: tok.Index, Parent: tok.Parent, Node: node})
	op.End(c.tgt.Validate(rctx, node, *tok, consistent))
}
