package persist_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
)

// TestNoSecretInSQLiteFile issues opaque tokens the way the service does
// (token.NewSecret, a Hasher with and without a pepper), writes their
// records, and greps every file SQLite left in the directory for each
// secret: its text, its raw bytes, and their standard base64. None may be
// found. The key and the hash must be found, which proves the grep sees
// the rows at all.
func TestNoSecretInSQLiteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.db")
	s := openSQLite(t, "jdbc:sqlite:"+path)

	type issued struct {
		key    token.Key
		secret string
		hash   token.Hash
	}
	var all []issued
	var batch persist.Batch
	created := token.At(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC))
	for i, h := range []*token.Hasher{token.NewHasher(nil), token.NewHasher([]byte("server pepper"))} {
		for j := range 200 {
			k, secret := token.NewKey(), token.NewSecret()
			hash := h.Sum(k, []byte(secret))
			all = append(all, issued{k, secret, hash})
			batch.Puts = append(batch.Puts, &token.Token{
				Key: k, Hash: hash, Index: uint64(i*1000 + j + 1), Created: created, Expires: created.Add(time.Hour),
				Username: "alice", Realm: token.DefaultRealm, Scopes: "read:all", Type: token.TypeSession,
			})
		}
	}
	batch.Index = 2000
	if err := s.Write(t.Context(), &batch); err != nil {
		t.Fatalf("Write = %v", err)
	}

	check := func(when string) {
		t.Helper()
		var files [][]byte
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, b)
		}
		found := func(needle []byte) bool {
			for _, f := range files {
				if bytes.Contains(f, needle) {
					return true
				}
			}
			return false
		}
		for _, is := range all {
			raw, err := base64.RawURLEncoding.DecodeString(is.secret)
			if err != nil {
				t.Fatal(err)
			}
			for _, needle := range [][]byte{
				[]byte(is.secret), raw,
				[]byte(base64.StdEncoding.EncodeToString(raw)),
				[]byte(base64.RawStdEncoding.EncodeToString(raw)),
				[]byte(token.Encode(token.DefaultPrefix, is.key, is.secret)),
			} {
				if found(needle) {
					t.Fatalf("%s: secret of token %s found in the SQLite files", when, is.key)
				}
			}
			if !found(is.key[:]) || !found(is.hash[:]) {
				t.Fatalf("%s: key or hash of token %s not found: the grep does not see the rows", when, is.key)
			}
		}
	}
	check("while open (rows in the WAL)")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check("after close (rows checkpointed into the database file)")
}
