package tokens

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"github.com/tokencache/tokencache/token"
)

// signedCodec stands in for a signed format (as a JWT format will be): no
// secret, the text carries the record's key and expiry under a MAC that
// Parse checks before any lookup, and Encode builds the text from the record.
type signedCodec struct{ key string }

var _ token.Codec = signedCodec{}

func (c signedCodec) mac(k token.Key, exp token.Time) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s|%s|%d", c.key, k, exp))
	return hex.EncodeToString(sum[:8])
}

func (signedCodec) Format() token.Format                { return token.FormatJWT }
func (signedCodec) Match(raw []byte) bool               { return bytes.HasPrefix(raw, []byte("sig.")) }
func (signedCodec) Mint(token.Key) (string, token.Hash) { return "", token.Hash{} }
func (signedCodec) Sum(token.Presented) token.Hash      { return token.Hash{} }
func (c signedCodec) Fingerprint() string               { return "signed=test" }

func (c signedCodec) Encode(t *token.Token, _ string) (string, error) {
	return fmt.Sprintf("sig.%s.%d.%s", t.Key, t.Expires, c.mac(t.Key, t.Expires)), nil
}

func (c signedCodec) Parse(raw []byte) (token.Presented, error) {
	var ks, mac string
	var exp token.Time
	parts := bytes.Split(raw, []byte("."))
	if len(parts) != 4 {
		return token.Presented{}, token.ErrMalformed
	}
	ks, mac = string(parts[1]), string(parts[3])
	if _, err := fmt.Sscan(string(parts[2]), &exp); err != nil {
		return token.Presented{}, token.ErrMalformed
	}
	k, err := token.ParseKey(ks)
	if err != nil || mac != c.mac(k, exp) {
		return token.Presented{}, fmt.Errorf("%w: bad signature", token.ErrMalformed)
	}
	return token.Presented{Key: k}, nil
}

func (signedCodec) Verify(p token.Presented, t *token.Token) bool {
	return t.Format == token.FormatJWT && t.Key == p.Key
}

// TestSecondFormat: a second format is one Codec and its registration; the
// service issues, validates and revokes through it beside the opaque format,
// refuses a forged text before any lookup, and refuses it as a parent of a
// delegation (a child's secret is sealed under its parent's).
func TestSecondFormat(t *testing.T) {
	formats, err := token.NewFormats(token.NewOpaque("tc", token.NewHasher(nil)), signedCodec{key: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	n := newNode(t, nodeOpts{formats: formats})
	ctx := context.Background()

	iss := n.issue(t, IssueRequest{Format: token.FormatJWT, Scopes: "read"})
	if !bytes.HasPrefix([]byte(iss.Token), []byte("sig."+iss.Record.Key.String()+".")) || iss.Record.Format != token.FormatJWT {
		t.Fatalf("Issue(format jwt) = %q, format %v; want a signed text of its key", iss.Token, iss.Record.Format)
	}
	wantState(t, n, iss.Token, token.StateValid)
	opaque := n.issue(t, IssueRequest{Scopes: "read"})
	wantState(t, n, opaque.Token, token.StateValid)

	forged := []byte(iss.Token)
	forged[len(forged)-1] ^= 1
	wantState(t, n, string(forged), token.StateMalformed)
	// A forged text naming the key of an opaque record is not that token.
	wantState(t, n, fmt.Sprintf("sig.%s.0.%s", opaque.Record.Key, signedCodec{key: "k1"}.mac(opaque.Record.Key, 0)), token.StateUnknown)

	_, err = n.svc.Delegate(ctx, DelegateRequest{ParentToken: iss.Token,
		Delegation: token.Delegation{Type: token.TypeNotebook}})
	if !errors.Is(err, token.ErrInvalid) {
		t.Errorf("Delegate(signed parent) = %v, want ErrInvalid", err)
	}

	if err := n.svc.RevokeToken(ctx, []byte(iss.Token)); err != nil {
		t.Fatalf("RevokeToken(signed) = %v", err)
	}
	wantState(t, n, iss.Token, token.StateRevoked)
	wantState(t, n, opaque.Token, token.StateValid)
}

// TestFormatNotAccepted: a format that is not registered is refused at issue,
// with the message users saw before formats had a seam.
func TestFormatNotAccepted(t *testing.T) {
	n := newNode(t, nodeOpts{})
	_, err := n.svc.Issue(context.Background(), IssueRequest{Username: "alice", Format: token.FormatJWT})
	if !errors.Is(err, token.ErrInvalid) || err.Error() != "invalid: format jwt needs a signing key, which is not configured" {
		t.Errorf("Issue(format jwt) = %v, want ErrInvalid about a signing key", err)
	}
}
