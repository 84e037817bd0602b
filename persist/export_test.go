package persist

import (
	"context"
	"testing"
	"time"
)

// MySQLSessionForTest returns session variables of a connection of the
// MySQL store s.
func MySQLSessionForTest(t testing.TB, s Store) map[string]string {
	t.Helper()
	ss, ok := s.(*SQLStore)
	if !ok || ss.d.name() != "mysql" {
		t.Fatalf("%T is not a MySQL store", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vars := []string{"sql_mode", "character_set_client", "character_set_connection", "character_set_results", "collation_connection"}
	out := make(map[string]string, len(vars))
	for _, v := range vars {
		var val string
		if err := ss.rdb.QueryRowContext(ctx, "SELECT @@SESSION."+v).Scan(&val); err != nil {
			t.Fatalf("SELECT @@SESSION.%s = %v", v, err)
		}
		out[v] = val
	}
	return out
}
