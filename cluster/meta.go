package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// nodeMeta is what a node announces in memberlist's node metadata. Gossip
// carries no token state: only who a node is and how to reach it.
//
// Encoding (version 2): version byte, then the strings id, raft_id,
// raft_addr, http_addr, fingerprint, cluster (each a one-byte length and
// bytes), then bootstrap_expect as a uvarint, then the cluster id (a
// one-byte length and bytes, empty while the node belongs to no cluster)
// and a flags byte (bit 0: the node holds Raft state; other bits zero).
// Version 3 appends the digest of the node's JWT keys (a one-byte length
// and bytes); a node without JWT keys still sends version 2, so that a
// cluster that does not use JWTs stays readable by older binaries during a
// rolling upgrade (they refuse a version they do not know).
// Version 1 is version 2 without the cluster id and flags; it is still
// decoded (a node running an older binary), with State unknown (Legacy set).
// Memberlist caps metadata at 512 bytes and panics beyond; the limits on
// each field keep it under 512 (510 bytes at most).
type nodeMeta struct {
	ID          string
	RaftID      string
	RaftAddr    string
	HTTPAddr    string
	Fingerprint string
	Cluster     string
	Expect      int
	// ClusterID is the identity of the cluster whose Raft state the node
	// holds ("" = none known).
	ClusterID string
	// HasState: the node holds Raft state (a log, a snapshot, a term).
	HasState bool
	// JWTKeys is the digest of the JWT keys the node signs and verifies
	// with (jwt.KeySet.Digest; "" = none). Nodes compare it only to report
	// a difference (Status): it never keeps a node out, since a rolling key
	// rotation passes through nodes that differ.
	JWTKeys string
	// Legacy: decoded from version 1, which says nothing of ClusterID and
	// HasState.
	Legacy bool
}

const (
	metaVersion       = 3   // with JWTKeys
	metaVersionNoJWT  = 2   // sent while JWTKeys is ""
	metaMaxSize       = 512 // memberlist.MetaMaxSize
	maxClusterIDLen   = 32  // 128 bits in hex (identity.go)
	metaFlagHasState  = 1 << 0
	metaFlagsKnown    = metaFlagHasState
	metaVersionLegacy = 1
)

var errBadMeta = errors.New("malformed node metadata")

func (m nodeMeta) encode() ([]byte, error) {
	version := byte(metaVersion)
	if m.JWTKeys == "" {
		version = metaVersionNoJWT
	}
	b := []byte{version}
	for _, f := range []struct {
		s   string
		max int
	}{
		{m.ID, maxIDLen}, {m.RaftID, maxRaftIDLen}, {m.RaftAddr, maxAddrLen},
		{m.HTTPAddr, maxAddrLen}, {m.Fingerprint, maxFingerprintLen}, {m.Cluster, maxClusterNameLen},
	} {
		if len(f.s) > f.max {
			return nil, fmt.Errorf("cannot encode node metadata: field %q longer than %d bytes", f.s, f.max)
		}
		b = append(b, byte(len(f.s)))
		b = append(b, f.s...)
	}
	if m.Expect < 0 {
		return nil, fmt.Errorf("cannot encode node metadata: negative bootstrap_expect %d", m.Expect)
	}
	b = binary.AppendUvarint(b, uint64(m.Expect))
	if len(m.ClusterID) > maxClusterIDLen {
		return nil, fmt.Errorf("cannot encode node metadata: cluster id longer than %d bytes", maxClusterIDLen)
	}
	b = append(b, byte(len(m.ClusterID)))
	b = append(b, m.ClusterID...)
	var flags byte
	if m.HasState {
		flags |= metaFlagHasState
	}
	b = append(b, flags)
	if version == metaVersion {
		if len(m.JWTKeys) > maxJWTKeysLen {
			return nil, fmt.Errorf("cannot encode node metadata: JWT key digest longer than %d bytes", maxJWTKeysLen)
		}
		b = append(b, byte(len(m.JWTKeys)))
		b = append(b, m.JWTKeys...)
	}
	if len(b) >= metaMaxSize {
		return nil, fmt.Errorf("cannot encode node metadata: %d bytes, over memberlist's %d", len(b), metaMaxSize)
	}
	return b, nil
}

// decodeMeta decodes metadata from the network. It never panics; anything
// but a well-formed version-1 or version-2 encoding is an error (a future
// version, or an unknown flag, is refused rather than half-understood).
// Version 3 with an empty JWTKeys is refused too: it is sent as version 2.
func decodeMeta(b []byte) (nodeMeta, error) {
	var m nodeMeta
	if len(b) == 0 {
		return m, fmt.Errorf("%w: empty", errBadMeta)
	}
	if len(b) > metaMaxSize {
		return m, fmt.Errorf("%w: %d bytes", errBadMeta, len(b))
	}
	version := b[0]
	if version != metaVersion && version != metaVersionNoJWT && version != metaVersionLegacy {
		return m, fmt.Errorf("%w: unknown version %d", errBadMeta, b[0])
	}
	b = b[1:]
	read := func(max int) (string, bool) {
		if len(b) < 1 {
			return "", false
		}
		n := int(b[0])
		if n > max || len(b) < 1+n {
			return "", false
		}
		s := string(b[1 : 1+n])
		b = b[1+n:]
		return s, true
	}
	var ok [6]bool
	m.ID, ok[0] = read(maxIDLen)
	m.RaftID, ok[1] = read(maxRaftIDLen)
	m.RaftAddr, ok[2] = read(maxAddrLen)
	m.HTTPAddr, ok[3] = read(maxAddrLen)
	m.Fingerprint, ok[4] = read(maxFingerprintLen)
	m.Cluster, ok[5] = read(maxClusterNameLen)
	for _, o := range ok {
		if !o {
			return nodeMeta{}, fmt.Errorf("%w: truncated field", errBadMeta)
		}
	}
	v, n := binary.Uvarint(b)
	if n <= 0 || v > 1<<16 {
		return nodeMeta{}, fmt.Errorf("%w: bad bootstrap_expect", errBadMeta)
	}
	m.Expect = int(v)
	b = b[n:]
	if version == metaVersionLegacy {
		m.Legacy = true
	} else {
		id, ok := read(maxClusterIDLen)
		if !ok || len(b) < 1 {
			return nodeMeta{}, fmt.Errorf("%w: truncated cluster id or flags", errBadMeta)
		}
		if b[0]&^metaFlagsKnown != 0 {
			return nodeMeta{}, fmt.Errorf("%w: unknown flags %#x", errBadMeta, b[0])
		}
		m.ClusterID, m.HasState = id, b[0]&metaFlagHasState != 0
		b = b[1:]
	}
	if version == metaVersion {
		keys, ok := read(maxJWTKeysLen)
		if !ok || keys == "" {
			return nodeMeta{}, fmt.Errorf("%w: truncated or empty JWT key digest", errBadMeta)
		}
		m.JWTKeys = keys
	}
	if len(b) != 0 {
		return nodeMeta{}, fmt.Errorf("%w: %d trailing bytes", errBadMeta, len(b))
	}
	if err := validID(m.ID); err != nil {
		return nodeMeta{}, fmt.Errorf("%w: node id: %w", errBadMeta, err)
	}
	if nodeOfRaftID(m.RaftID) != m.ID || m.RaftID == m.ID {
		return nodeMeta{}, fmt.Errorf("%w: raft id %q does not belong to node %q", errBadMeta, m.RaftID, m.ID)
	}
	if m.RaftAddr == "" {
		return nodeMeta{}, fmt.Errorf("%w: no raft address", errBadMeta)
	}
	return m, nil
}
