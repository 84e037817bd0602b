package tokens

import (
	"context"
	"errors"
	"testing"

	"github.com/tokencache/tokencache/token"
)

// TestIssueRefusesUsernamesOutsideTheRule: an issue judges the username by
// token.ValidUsername (no comma, space, control or bidi character), whatever
// the transport in front of the service.
func TestIssueRefusesUsernamesOutsideTheRule(t *testing.T) {
	n := newNode(t, nodeOpts{})
	for _, u := range []string{"bob,admin", "bob admin", "bob\u202enimda", "bob\x07", "b\xffob"} {
		if _, err := n.svc.Issue(context.Background(), IssueRequest{Username: u, Type: token.TypeUser}); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("Issue(username %q) = %v, want ErrInvalid", u, err)
		}
	}
	n.issue(t, IssueRequest{Username: "bjørn.olsen@example.com"})
}
