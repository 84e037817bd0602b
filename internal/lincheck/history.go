package lincheck

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
)

// open marks the return time of an operation whose outcome is unknown: it
// becomes the end of the history when the history is checked.
const open = math.MaxInt64

// ackStream is the visualization row of the acknowledgement instants.
const ackStream = 0

// Recorder collects a history. It is safe for concurrent use; no method
// blocks for long.
type Recorder struct {
	base  time.Time
	clock atomic.Int64

	mu       sync.Mutex
	ops      []porcupine.Operation
	streams  int
	families int
	counts   map[string]int // "kind result" -> operations
	faults   map[string]int // fault kind -> times injected
	notes    []porcupine.Annotation
}

// NewRecorder returns an empty history whose clock starts now.
func NewRecorder() *Recorder {
	return &Recorder{base: time.Now(), streams: ackStream, counts: map[string]int{}, faults: map[string]int{}}
}

// tick returns the recorder's time: monotonic nanoseconds since it was
// created, strictly increasing across calls (two events never share a time,
// so an acknowledgement instant never ties with another call).
func (r *Recorder) tick() int64 {
	now := time.Since(r.base).Nanoseconds()
	for {
		last := r.clock.Load()
		next := max(now, last+1)
		if r.clock.CompareAndSwap(last, next) {
			return next
		}
	}
}

// NewFamily returns the id of a new token family.
func (r *Recorder) NewFamily() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.families++
	return r.families
}

// Stream is one client's sequence of operations (a row of the
// visualization). Not safe for concurrent use.
type Stream struct {
	r  *Recorder
	id int
}

// Stream returns a new client stream.
func (r *Recorder) Stream() *Stream {
	return &Stream{r: r, id: r.newStreamID()}
}

func (r *Recorder) newStreamID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.streams++
	return r.streams
}

// Op is an operation in flight.
type Op struct {
	s    *Stream
	in   Input
	call int64
}

// Begin records the call of an operation; call End with its answer.
func (s *Stream) Begin(in Input) *Op {
	return &Op{s: s, in: in, call: s.r.tick()}
}

// End records the answer. An acknowledged issue or revoke also records its
// acknowledgement instant. An Ambiguous answer leaves the operation open
// until the end of the history, and the stream continues under a new id
// (porcupine's visualization wants one operation at a time per row). A
// Refused read is counted but not kept: it is always allowed and changes
// nothing.
func (o *Op) End(out Output) {
	r := o.s.r
	ret := r.tick()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[o.in.Kind.String()+" "+out.Result.String()]++
	if out.Result == Refused && (o.in.Kind == Read || o.in.Kind == ReadConsistent) {
		return
	}
	op := porcupine.Operation{ClientId: o.s.id, Input: o.in, Call: o.call, Output: out, Return: ret}
	if out.Result == Ambiguous {
		op.Return = open
	}
	r.ops = append(r.ops, op)
	if out.Result == Ambiguous {
		r.streams++
		o.s.id = r.streams
		return
	}
	if out.Result == OK && (o.in.Kind == Issue || o.in.Kind == Revoke) {
		ack := o.in
		ack.Kind = IssueAck
		if o.in.Kind == Revoke {
			ack.Kind = RevokeAck
		}
		r.ops = append(r.ops, porcupine.Operation{ClientId: ackStream, Input: ack, Call: ret, Output: Output{Result: OK}, Return: ret})
	}
}

// Fault records a fault the nemesis injected, from now until the returned
// function is called (call it at once for an instant).
func (r *Recorder) Fault(kind, detail string) (end func()) {
	start := r.tick()
	r.mu.Lock()
	r.faults[kind]++
	r.mu.Unlock()
	return func() {
		stop := r.tick()
		r.mu.Lock()
		r.notes = append(r.notes, porcupine.Annotation{
			Tag: "nemesis", Start: start, End: stop, Description: kind, Details: detail, BackgroundColor: "#ffd8a8",
		})
		r.mu.Unlock()
	}
}

// FaultLog lists the faults injected so far with their times (seconds since
// the recorder was created, as in Verdict.History), one per line.
func (r *Recorder) FaultLog() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, n := range r.notes {
		fmt.Fprintf(&b, "  [%9.3fs .. %9.3fs] %s: %s\n", secs(n.Start), secs(n.End), n.Description, n.Details)
	}
	return b.String()
}

// Operations returns a copy of the history so far, open operations closed at
// its end.
func (r *Recorder) Operations() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	ops := append([]porcupine.Operation(nil), r.ops...)
	end := r.clock.Load() + 1
	for i := range ops {
		if ops[i].Return == open {
			ops[i].Return = end
		}
	}
	return ops
}

// Summary is what a run did, for the test log.
type Summary struct {
	Operations int            // operations checked (acknowledgement instants not counted)
	Refused    int            // reads refused (not checked)
	Families   int            // token families
	ByOutcome  map[string]int // "kind result" -> count
	Faults     map[string]int // fault kind -> times injected
}

// Summary returns the counts so far.
func (r *Recorder) Summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Summary{Families: r.families, ByOutcome: map[string]int{}, Faults: map[string]int{}}
	for k, v := range r.counts {
		s.ByOutcome[k] = v
	}
	for k, v := range r.faults {
		s.Faults[k] = v
	}
	for _, op := range r.ops {
		if k := op.Input.(Input).Kind; k != IssueAck && k != RevokeAck {
			s.Operations++
		}
	}
	s.Refused = r.counts[Read.String()+" "+Refused.String()] + r.counts[ReadConsistent.String()+" "+Refused.String()]
	return s
}

func (s Summary) String() string {
	return fmt.Sprintf("%d operations checked in %d token families (%d refused reads not checked); outcomes %s; faults injected %s",
		s.Operations, s.Families, s.Refused, sortedCounts(s.ByOutcome), sortedCounts(s.Faults))
}

func sortedCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := "{"
	for i, k := range keys {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s: %d", k, m[k])
	}
	return out + "}"
}
