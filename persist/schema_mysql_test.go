package persist

import (
	"bytes"
	"testing"

	"github.com/tokencache/tokencache/persist/mysqltest"
	"github.com/tokencache/tokencache/token"
)

// TestMySQLUpgradeFromVersion1: a MySQL/MariaDB database of schema version
// 1 (before the audience column) opens under this binary, is migrated, keeps
// its rows, and stores a JWT's audience; the version-2 statement run again
// (an interrupted migration's re-run) is read as already applied.
func TestMySQLUpgradeFromVersion1(t *testing.T) {
	ctx := testCtx(t)
	db := mysqltest.Shared(t).NewDatabase(t)
	raw := db.DB(t)
	d := mysqlDialect{}
	ms, err := loadMigrations(d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrate(ctx, raw, d, ms[:1], true, discardLog()); err != nil {
		t.Fatal(err)
	}
	k := token.Key{1, 2, 3}
	if _, err := raw.ExecContext(ctx, `INSERT INTO tokens (token_key, idx, hash, format, type, username, realm, scopes, created, expires, end_of_use)
		VALUES (?, 5, ?, 'opaque', 'user', 'alice', 'default', 'read', 1000, 2000, 2000)`, k[:], bytes.Repeat([]byte{7}, 32)); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Store, cfg.URL, cfg.Username, cfg.Password = StoreMySQL, db.URL, db.User, db.Password
	s, err := Open(ctx, cfg, "", nil)
	if err != nil {
		t.Fatalf("open a version-1 database = %v", err)
	}
	defer s.Close()
	old, err := s.Get(ctx, k)
	if err != nil || old.Username != "alice" || old.Ext != nil {
		t.Fatalf("Get(row of version 1) = %+v, %v; want alice's row without extras", old, err)
	}
	jwt := &token.Token{Key: token.Key{4}, Index: 6, Created: 1000, Expires: 3000, Username: "bob", Realm: "default",
		Format: token.FormatJWT, Type: token.TypeUser}
	jwt.SetExtra(token.Extra{Audience: "api billing"})
	if err := s.Write(ctx, &Batch{Puts: []*token.Token{jwt}, Index: 6}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, jwt.Key); err != nil || got.Audience() != "api billing" {
		t.Fatalf("Get(jwt) = %+v, %v; want audience %q", got, err, "api billing")
	}
	_, err = raw.ExecContext(ctx, ms[1].stmts[0])
	if err == nil || !d.alreadyApplied(err) {
		t.Errorf("re-running %s = %v, want an error alreadyApplied accepts", ms[1].name, err)
	}
}
