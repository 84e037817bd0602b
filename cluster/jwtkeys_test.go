package cluster

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// TestMetaJWTKeys checks the version-3 metadata: the JWT key digest round
// trips, a node without JWT keys still sends version 2 (older binaries read
// it), and a version 3 without a digest or with a cut one is refused.
func TestMetaJWTKeys(t *testing.T) {
	m := nodeMeta{ID: "n1", RaftID: "n1@0a0b", RaftAddr: "127.0.0.1:8300", HTTPAddr: "127.0.0.1:8080",
		Fingerprint: "0123456789abcdef", Cluster: "prod", Expect: 3, ClusterID: "c1", HasState: true}
	v2 := mustEncode(t, m)
	if v2[0] != metaVersionNoJWT {
		t.Errorf("encode without JWT keys: version %d, want %d", v2[0], metaVersionNoJWT)
	}
	m.JWTKeys = "9f86d081884c7d65"
	v3 := mustEncode(t, m)
	if v3[0] != metaVersion {
		t.Errorf("encode with JWT keys: version %d, want %d", v3[0], metaVersion)
	}
	if got, err := decodeMeta(v3); err != nil || got != m {
		t.Fatalf("decodeMeta(v3) = %+v, %v; want %+v", got, err, m)
	}
	m.JWTKeys = string(bytes.Repeat([]byte{'k'}, maxJWTKeysLen+1))
	if _, err := m.encode(); err == nil {
		t.Errorf("encode of a %d-byte digest succeeded", maxJWTKeysLen+1)
	}
	emptyV3 := append([]byte{metaVersion}, v2[1:]...)
	emptyV3 = append(emptyV3, 0)
	for name, in := range map[string][]byte{
		"v3 without digest":  append([]byte{metaVersion}, v2[1:]...),
		"v3 empty digest":    emptyV3,
		"v3 digest cut":      v3[:len(v3)-1],
		"v3 trailing":        append(bytes.Clone(v3), 'x'),
		"v2 with a digest":   append([]byte{metaVersionNoJWT}, v3[1:]...),
		"v2 flag then bytes": append(bytes.Clone(v2), 1, 'a'),
	} {
		if _, err := decodeMeta(in); !errors.Is(err, errBadMeta) {
			t.Errorf("decodeMeta(%s) = %v, want errBadMeta", name, err)
		}
	}
}

// TestStatusJWTKeysDisagree checks that GET /v1/cluster reports the JWT
// key digest of every member and whether they agree, and that a
// disagreement (a rotation half done) keeps every node ready.
func TestStatusJWTKeysDisagree(t *testing.T) {
	tc := newTestCluster(t, 3, clusterOpts{})
	for _, tn := range tc.nodes {
		tn.node.SetJWTKeys("aaaa")
	}
	ctx := context.Background()
	agree := func(n *Node, want bool, digests map[string]string) bool {
		st := n.Status(ctx)
		if st.JWTKeysAgree != want {
			return false
		}
		for _, m := range st.Members {
			if m.JWTKeys != digests[m.ID] {
				return false
			}
		}
		return true
	}
	all := map[string]string{"n1": "aaaa", "n2": "aaaa", "n3": "aaaa"}
	waitFor(t, 10*time.Second, "every node reports the same JWT keys", func() bool {
		for _, tn := range tc.nodes {
			if !agree(tn.node, true, all) {
				return false
			}
		}
		return true
	})
	tc.nodes[1].node.SetJWTKeys("bbbb")
	mixed := map[string]string{"n1": "aaaa", "n2": "bbbb", "n3": "aaaa"}
	waitFor(t, 10*time.Second, "every node reports n2's different JWT keys", func() bool {
		for _, tn := range tc.nodes {
			if !agree(tn.node, false, mixed) {
				return false
			}
		}
		return true
	})
	for _, tn := range tc.nodes {
		if err := tn.node.Ready(ctx, false); err != nil {
			t.Errorf("%s: Ready() = %v while JWT keys differ, want nil (a rotation must not take nodes out)", tn.id, err)
		}
		if st := tn.node.Status(ctx); st.NotReady != "" || st.JWTKeys != mixed[tn.id] {
			t.Errorf("%s: Status() = not_ready %q, jwt_keys %q; want ready and %q", tn.id, st.NotReady, st.JWTKeys, mixed[tn.id])
		}
	}
}
