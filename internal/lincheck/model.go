// Package lincheck records histories of concurrent token operations against a
// tokencache cluster and checks them with porcupine
// (github.com/anishathalye/porcupine) against a model of what DESIGN §3
// promises. It is a test harness: only tests import it, so the daemon does
// not link porcupine.
//
// The model is per token family (a root token and the children issued under
// it), because a revoke cascades to descendants; porcupine checks each family
// on its own. What it allows, exactly:
//
//   - An issue is applied at one point between its call and its answer. A
//     201 applied it; a definite failure (no_leader, 4xx) did not; an unknown
//     outcome (indeterminate, timeout, reset connection) may have been applied
//     at any point after its call, or never (its return time is the end of the
//     history). A child issue succeeds only while its parent is issued and not
//     revoked; 409 parent_not_valid only once it is revoked; 404 only while it
//     is not issued.
//   - A revoke has two points: the commit (between call and answer) and the
//     acknowledgement (the answer). Between them nodes that applied it answer
//     revoked and nodes that did not yet answer valid: local reads are not
//     linearizable while a revoke is in flight, and DESIGN §3 does not
//     promise they are. After the acknowledgement no node answers valid, nor
//     unknown, for the token or a descendant (invariant 2): a node in contact
//     answers revoked, a fenced one refuses (503 stale and the like). A 404 on
//     DELETE for a token whose issue was acknowledged is a lost write.
//   - A local read answers valid only for an issued token whose revoke (or an
//     ancestor's) is not acknowledged, revoked only once a revoke committed,
//     and unknown only before a revoke was acknowledged — and never on the
//     node that acknowledged the issue (read-your-writes), once it did.
//   - A consistent read (?consistency=consistent) is linearizable: valid
//     before the revoke commit, revoked after it, unknown only before the
//     issue.
//   - A refusal (503, timeout, connection refused) is always allowed and
//     changes nothing; refused reads are counted but not checked.
//
// Tokens are issued with long lifetimes, so expiry is not modelled: an
// expired, idle or malformed answer is a violation.
package lincheck

import (
	"fmt"
	"strings"

	"github.com/anishathalye/porcupine"
)

// MaxTokens is the largest number of tokens in one family.
const MaxTokens = 8

// Kind is the kind of an operation.
type Kind uint8

// Kinds of operations. IssueAck and RevokeAck are the instants at which an
// issue or a revoke was acknowledged; the recorder adds them.
const (
	Issue Kind = iota + 1
	IssueAck
	Revoke
	RevokeAck
	Read
	ReadConsistent
)

func (k Kind) String() string {
	switch k {
	case Issue:
		return "issue"
	case IssueAck:
		return "issue-ack"
	case Revoke:
		return "revoke"
	case RevokeAck:
		return "revoke-ack"
	case Read:
		return "read"
	case ReadConsistent:
		return "read-consistent"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Result is the outcome of an operation as the client saw it.
type Result uint8

// Results. Writes answer OK, Failed (definitely not applied), Ambiguous
// (outcome unknown), NotFound, ParentNotValid or Conflict; reads answer
// Valid, Revoked, Unknown, Refused or Other (expired, idle, malformed, or an
// answer the harness did not expect).
const (
	OK Result = iota + 1
	Failed
	Ambiguous
	NotFound
	ParentNotValid
	Conflict
	Valid
	Revoked
	Unknown
	Refused
	Other
)

var resultNames = [...]string{"?", "ok", "failed", "ambiguous", "not_found", "parent_not_valid", "conflict",
	"valid", "revoked", "unknown", "refused", "other"}

func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return fmt.Sprintf("result(%d)", uint8(r))
}

// Input is the call of an operation.
type Input struct {
	Kind   Kind
	Family int
	Token  int    // index in the family; 0 is the root
	Parent int    // index of the parent in the family, -1 for the root
	Node   string // the node the request was sent to
	// RFC7009 marks a revoke sent as POST /v1/revoke, which answers 200 for
	// unknown tokens too.
	RFC7009 bool
}

// Output is the answer of an operation.
type Output struct {
	Result Result
	Detail string // status and error code, for people
}

// state is one family's state. It is comparable (==) and never mutated.
type state struct {
	issued [MaxTokens]bool
	parent [MaxTokens]int8
	// phase is the token's own revoke: 0 none, 1 committed, 2 acknowledged.
	phase [MaxTokens]uint8
	// ackedOn is the node that acknowledged the token's issue first.
	ackedOn [MaxTokens]string
}

func initState() state {
	var s state
	for i := range s.parent {
		s.parent[i] = -1
	}
	return s
}

// revoked is the token's effective revoke phase: its own or an ancestor's,
// whichever is further.
func (s *state) revoked(t int) uint8 {
	p := s.phase[t]
	for x := s.parent[t]; x >= 0; x = s.parent[x] {
		p = max(p, s.phase[x])
	}
	return p
}

// canIssue reports whether an issue of t under parent would succeed now.
func (s *state) canIssue(in Input) bool {
	if s.issued[in.Token] {
		return true // a replay through the Idempotency-Key
	}
	return in.Parent < 0 || (s.issued[in.Parent] && s.revoked(in.Parent) == 0)
}

func (s state) issue(in Input) state {
	s.issued[in.Token] = true
	s.parent[in.Token] = int8(in.Parent)
	return s
}

// step is the sequential specification.
func step(s state, in Input, out Output) (bool, state) {
	t := in.Token
	if t < 0 || t >= MaxTokens || in.Parent >= MaxTokens {
		return false, s
	}
	switch in.Kind {
	case Issue:
		switch out.Result {
		case OK:
			return s.canIssue(in), s.issue(in)
		case Ambiguous:
			// Applied here if it could be; "never applied" is the same op
			// placed at the end of the history, which its open end allows.
			if s.canIssue(in) {
				return true, s.issue(in)
			}
			return true, s
		case Failed:
			return true, s
		case ParentNotValid:
			return in.Parent >= 0 && s.issued[in.Parent] && s.revoked(in.Parent) > 0, s
		case NotFound:
			return in.Parent >= 0 && !s.issued[in.Parent], s
		case Conflict:
			// A retry with the same Idempotency-Key through a node that lost
			// its memo: an earlier attempt was applied.
			return s.issued[t], s
		}
	case IssueAck:
		if !s.issued[t] {
			return false, s
		}
		if s.ackedOn[t] == "" {
			s.ackedOn[t] = in.Node
		}
		return true, s
	case Revoke:
		switch out.Result {
		case OK:
			if !s.issued[t] {
				return in.RFC7009, s
			}
			s.phase[t] = max(s.phase[t], 1)
			return true, s
		case Ambiguous:
			if s.issued[t] {
				s.phase[t] = max(s.phase[t], 1)
			}
			return true, s
		case Failed:
			return true, s
		case NotFound:
			return !s.issued[t], s
		}
	case RevokeAck:
		if s.phase[t] < 1 {
			return false, s
		}
		s.phase[t] = 2
		return true, s
	case Read:
		switch out.Result {
		case Refused:
			return true, s
		case Valid:
			return s.issued[t] && s.revoked(t) < 2, s
		case Revoked:
			return s.issued[t] && s.revoked(t) > 0, s
		case Unknown:
			return s.revoked(t) < 2 && s.ackedOn[t] != in.Node, s
		}
	case ReadConsistent:
		switch out.Result {
		case Refused:
			return true, s
		case Valid:
			return s.issued[t] && s.revoked(t) == 0, s
		case Revoked:
			return s.issued[t] && s.revoked(t) > 0, s
		case Unknown:
			return !s.issued[t], s
		}
	}
	return false, s
}

// Model is the porcupine model of one token family; histories are
// partitioned by family.
func Model() porcupine.Model {
	return porcupine.Model{
		Partition: partition,
		Init:      func() any { return initState() },
		Step: func(st, in, out any) (bool, any) {
			return step(st.(state), in.(Input), out.(Output))
		},
		Equal:             func(a, b any) bool { return a.(state) == b.(state) },
		DescribeOperation: describeOperation,
		DescribeState:     describeState,
	}
}

func partition(history []porcupine.Operation) [][]porcupine.Operation {
	byFamily := map[int][]porcupine.Operation{}
	var order []int
	for _, op := range history {
		f := op.Input.(Input).Family
		if _, ok := byFamily[f]; !ok {
			order = append(order, f)
		}
		byFamily[f] = append(byFamily[f], op)
	}
	out := make([][]porcupine.Operation, 0, len(order))
	for _, f := range order {
		out = append(out, byFamily[f])
	}
	return out
}

func tokenName(family, t int) string { return fmt.Sprintf("f%d.t%d", family, t) }

func describeOperation(in, out any) string {
	i, o := in.(Input), out.(Output)
	name := tokenName(i.Family, i.Token)
	if i.Kind == Issue && i.Parent >= 0 {
		name += " under " + tokenName(i.Family, i.Parent)
	}
	via := i.Kind.String()
	if i.RFC7009 {
		via += " (POST /v1/revoke)"
	}
	s := fmt.Sprintf("%s(%s) on %s", via, name, i.Node)
	if i.Kind == IssueAck || i.Kind == RevokeAck {
		return s
	}
	s += " → " + o.Result.String()
	if o.Detail != "" {
		s += " [" + o.Detail + "]"
	}
	return s
}

func describeState(st any) string {
	s := st.(state)
	var parts []string
	for t := range MaxTokens {
		if !s.issued[t] && s.phase[t] == 0 {
			continue
		}
		p := fmt.Sprintf("t%d:", t)
		switch s.revoked(t) {
		case 0:
			p += "valid"
		case 1:
			p += "revoking"
		default:
			p += "revoked"
		}
		if s.ackedOn[t] != "" {
			p += "@" + s.ackedOn[t]
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "{}"
	}
	return "{" + strings.Join(parts, " ") + "}"
}
