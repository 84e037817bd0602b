package cluster

import (
	"bytes"
	"errors"
	"testing"
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
