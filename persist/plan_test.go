package persist

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestQueryPlans asks SQLite how it runs each query and checks that every
// one is served by an index: no scan of the table, and no sort for the
// queries that page through many rows. It fails when an index is dropped
// or a query stops matching one.
func TestQueryPlans(t *testing.T) {
	s, err := openSQLite(testCtx(t), DefaultConfig(), filepath.Join(t.TempDir(), "t.db"), discardLog(), sqliteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := make([]byte, 16)
	tests := []struct {
		name   string
		query  string
		args   []any
		index  string // the plan must use it
		sortOK bool   // a temp b-tree is fine (few rows: one user's, one parent's)
	}{
		{"get", s.q.get, []any{k}, "sqlite_autoindex_tokens_1", false},
		{"list user+type", s.q.listUserType, []any{"a", "session", 10}, "tokens_user_type_created", false},
		{"list user", s.q.listUser, []any{"a", 10}, "tokens_user_type_created", true},
		{"list type", s.q.listType, []any{"user", 10}, "tokens_type_created", false},
		{"list all", s.q.listAll, []any{10}, "tokens_created_key", false},
		{"named", s.q.named, []any{"a", "b"}, "tokens_user_name", true},
		{"ended", s.q.ended, []any{1, 10}, "tokens_end_of_use", false},
		{"newest", s.q.newestFirst, []any{10}, "tokens_created_key", false},
		{"newest after", s.q.newestAfter, []any{1, 1, k, 10}, "tokens_created_key", false},
		{"children", childrenSQL(s.d, 3), []any{k, k, k}, "tokens_parent", true},
		{"stats", s.q.stats, []any{1, 1}, "tokens_live", true},
		{"delete", s.q.delete[2], []any{k, 1, k, 1, k, 1, k, 1}, "sqlite_autoindex_tokens_1", false},
		{"touch", s.q.touch[1], []any{k, 1, k, 1, k, k}, "sqlite_autoindex_tokens_1", false},
		{"upsert", s.q.upsert[0], make([]any, len(columns)), "", false},
	}
	for _, tc := range tests {
		rows, err := s.rdb.QueryContext(testCtx(t), "EXPLAIN QUERY PLAN "+tc.query, tc.args...)
		if err != nil {
			t.Fatalf("EXPLAIN %s = %v", tc.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		text := strings.Join(plan, "; ")
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN tokens") && !strings.Contains(step, "INDEX") {
				t.Errorf("%s scans the table: %s", tc.name, text)
			}
		}
		if !strings.Contains(text, tc.index) {
			t.Errorf("%s does not use %s: %s", tc.name, tc.index, text)
		}
		if !tc.sortOK && strings.Contains(text, "TEMP B-TREE") {
			t.Errorf("%s sorts instead of reading an index in order: %s", tc.name, text)
		}
	}
}
