package replica

import (
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var goldenTime = token.At(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))

// goldenCommands are fixed commands whose encoding must never change: logs
// and snapshots written by one version are read by the next.
func goldenCommands() map[string]*Command {
	k1, k2 := token.Key{1, 2, 3}, token.Key{9, 8, 7}
	full := &token.Token{
		Key: k1, Hash: token.Hash{0xaa, 0xbb}, Index: 42,
		Created: goldenTime, Expires: goldenTime.Add(time.Hour), LastUsed: goldenTime.Add(time.Minute), RevokedAt: goldenTime.Add(2 * time.Minute),
		UID: 1001, HasUID: true, Username: "alice", Realm: "default", Scopes: "read write",
		Format: token.FormatOpaque, Type: token.TypeInternal,
	}
	full.SetExtra(token.Extra{Name: "ci", Service: "svc", ClientID: "cli", Parent: k2, Credentials: []byte{1, 2}, Sealed: []byte{3}})
	plain := &token.Token{Key: k2, Hash: token.Hash{1}, Created: goldenTime, Username: "bob", Realm: "default", Type: token.TypeSession}
	// A JWT record: no hash, an audience; and a revocation tombstone of
	// a JWT that has no record of its own.
	jwt := &token.Token{
		Key: token.Key{4, 5, 6}, Index: 43, Created: goldenTime, Expires: goldenTime.Add(time.Hour),
		Username: "carol", Realm: "default", Scopes: "read", Format: token.FormatJWT, Type: token.TypeUser,
	}
	jwt.SetExtra(token.Extra{Name: "gw", Audience: "api.example.org billing"})
	tomb := &token.Token{
		Key: token.Key{7, 7, 7}, Created: goldenTime, Expires: goldenTime.Add(time.Hour), RevokedAt: goldenTime.Add(time.Minute),
		Username: "dave", Realm: "default", Format: token.FormatJWT, Type: token.TypeUser,
	}
	return map[string]*Command{
		"put":          {Op: OpPut, Time: goldenTime, Puts: []*token.Token{full, plain}, IdempotencyKey: "req-1"},
		"put_audience": {Op: OpPut, Time: goldenTime, Puts: []*token.Token{jwt, tomb}},
		"delete":       {Op: OpDelete, Time: goldenTime, Deletes: []persist.Delete{{Key: k1, MaxIndex: 7}, {Key: k2, MaxIndex: 1 << 40}}},
		"touch":        {Op: OpTouch, Time: goldenTime, Touches: []persist.Touch{{Key: k1, At: goldenTime.Add(time.Second)}}},
		"persisted":    {Op: OpPersisted, Time: goldenTime, Persisted: 123456},
		"noop":         {Op: OpNoop, Time: goldenTime},
		"cluster_id":   {Op: OpClusterID, Time: goldenTime, ClusterID: "3f2a9c0e5b7d4e61a8c2d9f0b1e3a5c7"},
	}
}

func TestCommandGolden(t *testing.T) {
	for name, cmd := range goldenCommands() {
		b, err := cmd.MarshalBinary()
		if err != nil {
			t.Fatalf("%s: MarshalBinary: %v", name, err)
		}
		path := filepath.Join("testdata", "command_"+name+".golden")
		if *update {
			if err := os.WriteFile(path, []byte(hex.EncodeToString(b)+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v (run go test ./replica -run Golden -update once)", name, err)
		}
		if got := hex.EncodeToString(b); got != strings.TrimSpace(string(want)) {
			t.Errorf("%s: encoding changed:\n got %s\nwant %s", name, got, want)
		}
		raw, _ := hex.DecodeString(strings.TrimSpace(string(want)))
		var back Command
		if err := back.UnmarshalBinary(raw); err != nil {
			t.Fatalf("%s: UnmarshalBinary(golden): %v", name, err)
		}
		if !reflect.DeepEqual(&back, normalise(cmd)) {
			t.Errorf("%s: decoded %+v, want %+v", name, back, cmd)
		}
	}
}

// normalise gives cmd the empty-slice shapes the decoder produces.
func normalise(c *Command) *Command {
	n := *c
	switch c.Op {
	case OpPut:
		if n.Puts == nil {
			n.Puts = []*token.Token{}
		}
	case OpDelete:
		if n.Deletes == nil {
			n.Deletes = []persist.Delete{}
		}
	case OpTouch:
		if n.Touches == nil {
			n.Touches = []persist.Touch{}
		}
	}
	return &n
}

func TestCommandRejectsBadInput(t *testing.T) {
	good, _ := goldenCommands()["put"].MarshalBinary()
	cases := map[string][]byte{
		"empty":                     nil,
		"bad version":               append([]byte{99}, good[1:]...),
		"unknown op":                {commandVersion, 77, 0},
		"truncated":                 good[:len(good)/2],
		"trailing":                  append(append([]byte{}, good...), 0),
		"huge count":                {commandVersion, byte(OpDelete), 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"huge string":               append([]byte{commandVersion, byte(OpPut), 0, 0}, 0xff, 0xff, 0xff, 0x7f),
		"bad flags":                 withFlags(t, 0x80),
		"audience flag without ext": withFlags(t, flagAudience),
		"one byte short":            good[:len(good)-1],
	}
	for name, b := range cases {
		var c Command
		if err := c.UnmarshalBinary(b); !errors.Is(err, ErrBadCommand) {
			t.Errorf("%s: UnmarshalBinary error = %v, want ErrBadCommand", name, err)
		}
	}
	long := &Command{Op: OpPut, IdempotencyKey: strings.Repeat("k", MaxIdempotencyKeyLen+1)}
	if _, err := long.MarshalBinary(); err == nil {
		t.Error("MarshalBinary accepted an over-long idempotency key")
	}
}

// withFlags encodes a one-record put and overwrites the record's flag byte.
func withFlags(t *testing.T, flags byte) []byte {
	t.Helper()
	tok := &token.Token{Key: token.Key{1}, Username: "u", Realm: "r"}
	b, err := (&Command{Op: OpPut, Puts: []*token.Token{tok}}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// version, op, time(1), count(1), key 16, hash 32, index 1, 4 times + uid (1 each)
	b[3+1+16+32+1+5] = flags
	return b
}

func FuzzCommandDecode(f *testing.F) {
	for _, c := range goldenCommands() {
		b, _ := c.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Command
		if err := c.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("error %v is not ErrBadCommand", err)
			}
			return
		}
		again, err := c.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encoding a decoded command: %v", err)
		}
		var c2 Command
		if err := c2.UnmarshalBinary(again); err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip changed the command: %v", err)
		}
	})
}

func TestCommandSync(t *testing.T) {
	child := &token.Token{Key: token.NewKey()}
	child.SetExtra(token.Extra{Parent: token.NewKey()})
	named := &token.Token{Key: token.NewKey()}
	named.SetExtra(token.Extra{Name: "ci"})
	for _, tt := range []struct {
		name string
		cmd  Command
		want bool
	}{
		{"plain issue", Command{Op: OpPut, Puts: []*token.Token{{Key: token.NewKey()}}}, false},
		{"revocation", Command{Op: OpPut, Puts: []*token.Token{{Key: token.NewKey(), RevokedAt: 5}}}, true},
		{"child issue", Command{Op: OpPut, Puts: []*token.Token{child}}, true},
		{"named issue", Command{Op: OpPut, Puts: []*token.Token{named}}, true},
		{"issue with an idempotency key", Command{Op: OpPut, Puts: []*token.Token{{Key: token.NewKey()}}, IdempotencyKey: "k"}, true},
		{"touch", Command{Op: OpTouch}, false},
		{"persisted", Command{Op: OpPersisted, Persisted: 3}, false},
		{"delete", Command{Op: OpDelete}, false},
		{"noop", Command{Op: OpNoop}, true},
	} {
		if got := tt.cmd.Sync(); got != tt.want {
			t.Errorf("Command.Sync(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCommandRevokes(t *testing.T) {
	revoked := &token.Token{Key: token.NewKey(), RevokedAt: 5}
	live := &token.Token{Key: token.NewKey()}
	for _, tt := range []struct {
		name string
		cmd  Command
		want bool
	}{
		{"revoke", Command{Op: OpPut, Puts: []*token.Token{revoked}}, true},
		{"cascade", Command{Op: OpPut, Puts: []*token.Token{revoked, revoked}}, true},
		{"issue", Command{Op: OpPut, Puts: []*token.Token{live}}, false},
		{"mixed", Command{Op: OpPut, Puts: []*token.Token{revoked, live}}, false},
		{"empty put", Command{Op: OpPut}, false},
		{"touch", Command{Op: OpTouch}, false},
	} {
		if got := tt.cmd.Revokes(); got != tt.want {
			t.Errorf("%s: Revokes() = %v, want %v", tt.name, got, tt.want)
		}
	}
}
