package lincheck

import (
	"os"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

// op builds one operation of family 1 on stream c over [call, ret].
func op(c int, kind Kind, tok, parent int, node string, res Result, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: c, Input: Input{Kind: kind, Family: 1, Token: tok, Parent: parent, Node: node},
		Output: Output{Result: res}, Call: call, Return: ret}
}

// ack is the acknowledgement instant of an issue or revoke.
func ack(kind Kind, tok int, node string, at int64) porcupine.Operation {
	return op(0, kind, tok, -1, node, OK, at, at)
}

// issued is a root issued on n1 over [0, 10].
var issued = []porcupine.Operation{op(1, Issue, 0, -1, "n1", OK, 0, 10), ack(IssueAck, 0, "n1", 10)}

func TestModel(t *testing.T) {
	tests := []struct {
		name  string
		ops   []porcupine.Operation
		legal bool
	}{
		{"read valid after the issue", append(issued, op(2, Read, 0, -1, "n2", Valid, 20, 30)), true},
		{"consistent read unknown after an acknowledged issue", append(issued, op(2, ReadConsistent, 0, -1, "n2", Unknown, 20, 30)), false},
		{"local read unknown on another node after the issue (stale, allowed)", append(issued, op(2, Read, 0, -1, "n2", Unknown, 20, 30)), true},
		{"local read unknown on the issuing node after its ack (read-your-writes)", append(issued, op(2, Read, 0, -1, "n1", Unknown, 20, 30)), false},
		{"valid after an acknowledged revoke completed", append(issued,
			op(1, Revoke, 0, -1, "n1", OK, 20, 30), ack(RevokeAck, 0, "n1", 30),
			op(2, Read, 0, -1, "n3", Valid, 40, 50)), false},
		{"valid concurrent with the revoke", append(issued,
			op(1, Revoke, 0, -1, "n1", OK, 20, 30), ack(RevokeAck, 0, "n1", 30),
			op(2, Read, 0, -1, "n3", Valid, 25, 35)), true},
		{"revoked on one node, then valid on a lagging one, before the ack", append(issued,
			op(1, Revoke, 0, -1, "n1", OK, 20, 60), ack(RevokeAck, 0, "n1", 60),
			op(2, Read, 0, -1, "n2", Revoked, 25, 30),
			op(3, Read, 0, -1, "n3", Valid, 35, 40)), true},
		{"revoked on one node, then consistent valid (not linearizable)", append(issued,
			op(1, Revoke, 0, -1, "n1", OK, 20, 60), ack(RevokeAck, 0, "n1", 60),
			op(2, Read, 0, -1, "n2", Revoked, 25, 30),
			op(3, ReadConsistent, 0, -1, "n3", Valid, 35, 40)), false},
		{"unknown after an acknowledged revoke", append(issued,
			op(1, Revoke, 0, -1, "n1", OK, 20, 30), ack(RevokeAck, 0, "n1", 30),
			op(2, Read, 0, -1, "n3", Unknown, 40, 50)), false},
		{"refused after an acknowledged revoke (a fenced node)", append(issued,
			op(1, Revoke, 0, -1, "n1", OK, 20, 30), ack(RevokeAck, 0, "n1", 30),
			op(2, Read, 0, -1, "n3", Refused, 40, 50)), true},
		{"revoked before any revoke", append(issued, op(2, Read, 0, -1, "n2", Revoked, 20, 30)), false},
		{"ambiguous revoke may apply", append(issued,
			op(1, Revoke, 0, -1, "n1", Ambiguous, 20, 1000),
			op(2, Read, 0, -1, "n2", Revoked, 40, 50)), true},
		{"ambiguous revoke may never apply", append(issued,
			op(1, Revoke, 0, -1, "n1", Ambiguous, 20, 1000),
			op(2, ReadConsistent, 0, -1, "n2", Valid, 40, 50)), true},
		{"failed revoke was applied after all", append(issued,
			op(1, Revoke, 0, -1, "n1", Failed, 20, 30),
			op(2, Read, 0, -1, "n2", Revoked, 40, 50)), false},
		{"DELETE 404 for an acknowledged token (lost write)", append(issued,
			op(1, Revoke, 0, -1, "n3", NotFound, 20, 30)), false},
		{"POST /v1/revoke 200 on a node that lost the token, then valid elsewhere", append(issued,
			porcupine.Operation{ClientId: 1, Input: Input{Kind: Revoke, Family: 1, Token: 0, Parent: -1, Node: "n3", RFC7009: true},
				Output: Output{Result: OK}, Call: 20, Return: 30},
			ack(RevokeAck, 0, "n3", 30),
			op(2, Read, 0, -1, "n1", Valid, 40, 50)), false},
		{"cascade: child valid after its parent's revoke was acknowledged", append(issued,
			op(1, Issue, 1, 0, "n2", OK, 20, 30), ack(IssueAck, 1, "n2", 30),
			op(1, Revoke, 0, -1, "n1", OK, 40, 50), ack(RevokeAck, 0, "n1", 50),
			op(2, Read, 1, 0, "n3", Valid, 60, 70)), false},
		{"cascade: child revoked after its parent's revoke", append(issued,
			op(1, Issue, 1, 0, "n2", OK, 20, 30), ack(IssueAck, 1, "n2", 30),
			op(1, Revoke, 0, -1, "n1", OK, 40, 50), ack(RevokeAck, 0, "n1", 50),
			op(2, Read, 1, 0, "n3", Revoked, 60, 70)), true},
		{"child issued after its parent's revoke was acknowledged", append(issued,
			op(1, Revoke, 0, -1, "n1", OK, 40, 50), ack(RevokeAck, 0, "n1", 50),
			op(1, Issue, 1, 0, "n2", OK, 60, 70)), false},
		{"child refused with parent_not_valid after the revoke", append(issued,
			op(1, Revoke, 0, -1, "n1", OK, 40, 50), ack(RevokeAck, 0, "n1", 50),
			op(1, Issue, 1, 0, "n2", ParentNotValid, 60, 70)), true},
		{"child refused with parent_not_valid while the parent is valid", append(issued,
			op(1, Issue, 1, 0, "n2", ParentNotValid, 60, 70)), false},
		{"child refused with 404 parent (lost parent)", append(issued,
			op(1, Issue, 1, 0, "n2", NotFound, 60, 70)), false},
		{"ambiguous issue, then its retry with the same Idempotency-Key answers 201", []porcupine.Operation{
			op(1, Issue, 0, -1, "n1", Ambiguous, 0, 1000), op(2, Issue, 0, -1, "n1", OK, 20, 30), ack(IssueAck, 0, "n1", 30),
			op(3, ReadConsistent, 0, -1, "n2", Valid, 40, 50)}, true},
		{"idempotency_conflict for a key no attempt applied", []porcupine.Operation{
			op(1, Issue, 0, -1, "n1", Failed, 0, 10), op(2, Issue, 0, -1, "n2", Conflict, 20, 30)}, false},
		{"expired answer (expiry is not modelled)", append(issued, op(2, Read, 0, -1, "n2", Other, 20, 30)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(Model(), tt.ops); got != tt.legal {
				t.Errorf("CheckOperations = %v, want %v", got, tt.legal)
			}
		})
	}
}

// TestCheckWritesVisualization: a recorded non-linearizable history (a
// node in contact answers valid after an acknowledged revoke) is reported
// illegal, its family named, and the HTML visualization written; a legal one
// is accepted.
func TestCheckWritesVisualization(t *testing.T) {
	record := func(lastRead Result) *Recorder {
		r := NewRecorder()
		s := r.Stream()
		f := r.NewFamily()
		o := s.Begin(Input{Kind: Issue, Family: f, Token: 0, Parent: -1, Node: "n1"})
		o.End(Output{Result: OK, Detail: "201"})
		end := r.Fault("partition", "n3 | n1 n2")
		o = s.Begin(Input{Kind: Revoke, Family: f, Token: 0, Parent: -1, Node: "n2"})
		o.End(Output{Result: OK, Detail: "200"})
		end()
		o = s.Begin(Input{Kind: Read, Family: f, Token: 0, Parent: -1, Node: "n3"})
		o.End(Output{Result: lastRead})
		return r
	}
	dir := t.TempDir()
	v, err := Check(record(Valid), dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != porcupine.Illegal || len(v.Illegal) != 1 || v.Illegal[0] != 1 {
		t.Fatalf("Check(valid after revoke ack) = %+v, want Illegal in family 1", v)
	}
	if !strings.Contains(v.History, "read(f1.t0) on n3 → valid") {
		t.Errorf("History = %q, want the offending read", v.History)
	}
	b, err := os.ReadFile(v.Visualization)
	if err != nil || !strings.Contains(string(b), "partition") {
		t.Fatalf("visualization %q: %v (has annotation: %v)", v.Visualization, err, strings.Contains(string(b), "partition"))
	}

	r := record(Revoked)
	v, err = Check(r, t.TempDir(), 0)
	if err != nil || v.Result != porcupine.Ok || v.Visualization != "" {
		t.Fatalf("Check(revoked after revoke ack) = %+v, %v; want Ok and no file", v, err)
	}
	if s := r.Summary(); s.Operations != 3 || s.Faults["partition"] != 1 {
		t.Errorf("Summary = %+v, want 3 operations and 1 partition", s)
	}
}

// TestAmbiguousIsOpen: an operation with an unknown outcome stays open until
// the end of the history, and its stream continues under a new id.
func TestAmbiguousIsOpen(t *testing.T) {
	r := NewRecorder()
	s := r.Stream()
	first := s.id
	o := s.Begin(Input{Kind: Revoke, Family: 1, Parent: -1, Node: "n1"})
	o.End(Output{Result: Ambiguous})
	if s.id == first {
		t.Errorf("stream id unchanged after an ambiguous operation")
	}
	o = s.Begin(Input{Kind: Read, Family: 1, Parent: -1, Node: "n1"})
	o.End(Output{Result: Refused})
	ops := r.Operations()
	if len(ops) != 1 || ops[0].Return <= ops[0].Call || ops[0].Return != r.clock.Load()+1 {
		t.Fatalf("Operations = %+v, want one open revoke closed at the end (refused reads dropped)", ops)
	}
}
