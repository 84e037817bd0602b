package cluster

// The JWT keys each node signs and verifies with are announced in gossip as
// a digest (jwt.KeySet.Digest) so that GET /v1/cluster shows nodes whose
// keys differ. A difference is reported, never enforced: a key rotation
// rolls over the nodes one by one (add the new key everywhere, switch the
// active key everywhere, remove the old one), and between two steps the
// nodes differ by design. Refusing or un-readying a node then would turn
// every rotation into an outage; and what the nodes must agree on for
// correctness (the issuer, the audiences) is in the settings fingerprint.

// SetJWTKeys sets the digest of this node's JWT keys ("" = none) and
// announces it to the other nodes. Digests longer than 32 bytes are cut to
// 32 (gossip metadata is small). Safe for concurrent use; it does not block
// on the network for longer than a gossip TCP timeout.
func (n *Node) SetJWTKeys(digest string) {
	if len(digest) > maxJWTKeysLen {
		digest = digest[:maxJWTKeysLen]
	}
	if old := n.jwtKeys.Load(); old != nil && *old == digest {
		return
	}
	n.jwtKeys.Store(&digest)
	if n.disc != nil {
		n.disc.announce()
	}
}

// JWTKeys returns the digest set by SetJWTKeys ("" = none).
func (n *Node) JWTKeys() string {
	if p := n.jwtKeys.Load(); p != nil {
		return *p
	}
	return ""
}
