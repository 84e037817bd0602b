package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// nodeMeta is what a node announces in memberlist's node metadata. Gossip
// carries no token state: only who a node is and how to reach it.
//
// Encoding (version 1): version byte, then the strings id, raft_id,
// raft_addr, http_addr, fingerprint, cluster (each a one-byte length and
// bytes), then bootstrap_expect as a uvarint. Memberlist caps metadata at
// 512 bytes and panics beyond; the limits on each field keep it under 400.
type nodeMeta struct {
	ID          string
	RaftID      string
	RaftAddr    string
	HTTPAddr    string
	Fingerprint string
	Cluster     string
	Expect      int
}

const (
	metaVersion = 1
	metaMaxSize = 512 // memberlist.MetaMaxSize
)

var errBadMeta = errors.New("malformed node metadata")

func (m nodeMeta) encode() ([]byte, error) {
	b := []byte{metaVersion}
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
	if len(b) >= metaMaxSize {
		return nil, fmt.Errorf("cannot encode node metadata: %d bytes, over memberlist's %d", len(b), metaMaxSize)
	}
	return b, nil
}

// decodeMeta decodes metadata from the network. It never panics; anything
// but a well-formed version-1 encoding is an error (a future version is
// refused rather than half-understood).
func decodeMeta(b []byte) (nodeMeta, error) {
	var m nodeMeta
	if len(b) == 0 {
		return m, fmt.Errorf("%w: empty", errBadMeta)
	}
	if len(b) > metaMaxSize {
		return m, fmt.Errorf("%w: %d bytes", errBadMeta, len(b))
	}
	if b[0] != metaVersion {
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
	if len(b) != n {
		return nodeMeta{}, fmt.Errorf("%w: %d trailing bytes", errBadMeta, len(b)-n)
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
