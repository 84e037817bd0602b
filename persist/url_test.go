package persist

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseURLSQLite(t *testing.T) {
	dataDir := t.TempDir()
	tests := []struct {
		raw, want string
	}{
		{"jdbc:sqlite:/var/lib/tc/tokens.db", "/var/lib/tc/tokens.db"},
		{"jdbc:sqlite:tokens.db", filepath.Join(dataDir, "tokens.db")},
		{"jdbc:sqlite:sub/dir/t.db", filepath.Join(dataDir, "sub/dir/t.db")},
		{"jdbc:sqlite:./t.db", filepath.Join(dataDir, "t.db")},
		{"jdbc:sqlite:../t.db", filepath.Join(filepath.Dir(dataDir), "t.db")},
		{"jdbc:sqlite:/a/../b/t.db", "/b/t.db"},
		{"jdbc:sqlite:/dir with space/100%.db", "/dir with space/100%.db"},
		{"jdbc:sqlite::memory:", SQLiteMemory},
		{DefaultSQLiteURL, filepath.Join(dataDir, "tokens.db")},
	}
	for _, tc := range tests {
		u, err := ParseURL(tc.raw, dataDir)
		if err != nil {
			t.Errorf("ParseURL(%q) = %v, want %q", tc.raw, err, tc.want)
			continue
		}
		if u.Kind != StoreSQLite || u.Path != tc.want || u.MySQL != nil {
			t.Errorf("ParseURL(%q) = %+v, want sqlite %q", tc.raw, u, tc.want)
		}
	}
}

func TestParseURLMySQL(t *testing.T) {
	tests := []struct {
		raw, addr, db string
		params        map[string]string
		check         func(t *testing.T, u URL)
	}{
		{raw: "jdbc:mysql://db.example:3307/tokens", addr: "db.example:3307", db: "tokens"},
		{raw: "jdbc:mysql://db/tokens", addr: "db:3306", db: "tokens"},
		{raw: "jdbc:mysql://127.0.0.1/t", addr: "127.0.0.1:3306", db: "t"},
		{raw: "jdbc:mysql://[::1]:33306/t", addr: "[::1]:33306", db: "t"},
		{raw: "jdbc:mysql://[fe80::1]/t", addr: "[fe80::1]:3306", db: "t"},
		{raw: "jdbc:mysql://db/my%20db", addr: "db:3306", db: "my db"},
		{
			raw:  "jdbc:mysql://db:3306/tc?timeout=5s&readTimeout=2s&writeTimeout=3s&tls=skip-verify&charset=utf8mb4,utf8&loc=Europe%2FParis&collation=utf8mb4_bin",
			addr: "db:3306", db: "tc",
			check: func(t *testing.T, u URL) {
				c := u.MySQL
				if c.Timeout != 5*time.Second || c.ReadTimeout != 2*time.Second || c.WriteTimeout != 3*time.Second {
					t.Errorf("timeouts = %s %s %s, want 5s 2s 3s", c.Timeout, c.ReadTimeout, c.WriteTimeout)
				}
				if c.TLSConfig != "skip-verify" || c.Collation != "utf8mb4_bin" || c.Loc.String() != "Europe/Paris" {
					t.Errorf("tls, collation, loc = %q %q %q", c.TLSConfig, c.Collation, c.Loc)
				}
				// charset is unexported in the driver; it must survive a
				// round trip through the driver's own DSN form.
				if dsn := c.FormatDSN(); !strings.Contains(dsn, "charset=utf8mb4,utf8") {
					t.Errorf("FormatDSN() = %s, want charset=utf8mb4,utf8", dsn)
				}
			},
		},
		{raw: "jdbc:mysql://db/tc?sql_mode=%27TRADITIONAL%27&time_zone=%27%2B00:00%27", addr: "db:3306", db: "tc",
			params: map[string]string{"sql_mode": "'TRADITIONAL'", "time_zone": "'+00:00'"}},
	}
	for _, tc := range tests {
		u, err := ParseURL(tc.raw, "")
		if err != nil {
			t.Errorf("ParseURL(%q) = %v", tc.raw, err)
			continue
		}
		c := u.MySQL
		if u.Kind != StoreMySQL || c == nil || c.Net != "tcp" || c.Addr != tc.addr || c.DBName != tc.db {
			t.Errorf("ParseURL(%q) = %+v (%+v), want tcp %s db %q", tc.raw, u, c, tc.addr, tc.db)
			continue
		}
		if c.User != "" || c.Passwd != "" {
			t.Errorf("ParseURL(%q) set credentials %q/%q, want none", tc.raw, c.User, c.Passwd)
		}
		for k, v := range tc.params {
			if c.Params[k] != v {
				t.Errorf("ParseURL(%q).Params[%q] = %q, want %q", tc.raw, k, c.Params[k], v)
			}
		}
		if tc.check != nil {
			tc.check(t, u)
		}
	}
}

func TestParseURLErrors(t *testing.T) {
	tests := []struct {
		raw, want string
	}{
		{"", "must start with jdbc:"},
		{"sqlite:/x.db", "must start with jdbc:"},
		{"/x.db", "must start with jdbc:"},
		{"jdbc:postgresql://db/x", "unsupported database"},
		{"jdbc:sqlite:", "needs a file path"},
		{"jdbc:sqlite:x.db?_pragma=foo", "take no parameters"},
		{"jdbc:sqlite:x.db#frag", "take no parameters"},
		{"jdbc:sqlite:file:x.db", "plain path"},
		{"jdbc:sqlite:/var/lib/", "is a directory"},
		{"jdbc:sqlite:a\x00b", "NUL"},
		{"jdbc:mysql:db/x", "want jdbc:mysql://host:port/db"},
		{"jdbc:mysql://", "host is missing"},
		{"jdbc:mysql:///tc", "host is missing"},
		{"jdbc:mysql://db", "database name is missing"},
		{"jdbc:mysql://db/", "database name is missing"},
		{"jdbc:mysql://db/a/b", "contains a slash"},
		{"jdbc:mysql://db:0/x", "not between 1 and 65535"},
		{"jdbc:mysql://db:70000/x", "not between 1 and 65535"},
		{"jdbc:mysql://db:/x", "port is empty"},
		{"jdbc:mysql://db:abc/x", "cannot be parsed"},
		{"jdbc:mysql://tc@db/x", "set persist.username"},
		{"jdbc:mysql://db/x#f", "fragment"},
		{"jdbc:mysql://db/x?timeout=soon", "invalid persist.url"},
		{"jdbc:mysql://db/x?tls=maybe&parseTime=perhaps", "invalid bool"},
		{"jdbc:mysql://db/x?password=s3cret", "persist.password"},
		{"jdbc:mysql://db/x?User=root", "persist.username"},
		{"jdbc:mysql://db/x?strict=true", "strict mode"},
		{"jdbc:mysql://db/x?a=%zz", "bad parameters"},
		{"jdbc:mysql://db1:3306,db2:3306/tok", "several hosts"},
		{"jdbc:mysql://db1,db2/tok", "several hosts"},
	}
	for _, tc := range tests {
		u, err := ParseURL(tc.raw, "/data")
		if !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseURL(%q) = %+v, %v; want an ErrBadURL mentioning %q", tc.raw, u, err, tc.want)
		}
	}
	if _, err := ParseURL("jdbc:sqlite:rel.db", ""); !errors.Is(err, ErrBadURL) {
		t.Errorf("ParseURL(relative, no data dir) = %v, want ErrBadURL", err)
	}
}

// TestParseURLPasswordRefused checks that a password in the URL is refused
// with a pointer to persist.password, and never repeated in the error.
func TestParseURLPasswordRefused(t *testing.T) {
	const pw = "Pa55:w0rd%21"
	for _, raw := range []string{
		"jdbc:mysql://tc:" + pw + "@db:3306/tokens",
		"jdbc:mysql://tc:" + pw + "@db/tokens?timeout=1s",
		"jdbc:mysql://tc:p%zz" + pw + "@db/tokens", // unparsable escape inside the password
		"jdbc:mysql://:" + pw + "@db/tokens",
		"tc:" + pw + "@tcp(db:3306)/tokens", // the driver's own DSN form
		// In the query, the form Connector/J documents.
		"jdbc:mysql://db:3306/tokens?user=tc&password=" + pw,
		"jdbc:mysql://db:3306/tokens?password=" + pw + "&user=tc",
		"jdbc:mysql://db:3306/tokens?PWD=" + pw,
		"jdbc:mysql://db:3306/tokens?passwd=" + pw,
		"jdbc:mysql://db:3306/tokens?trustCertificateKeyStorePassword=" + pw + "&password=" + pw,
		"jdbc:mysql://db:3306/tokens?timeout=bogus&password=" + pw,
		"jdbc:mysql://db:3306/tokens?password=" + pw + "&timeout=%zz",
	} {
		_, err := ParseURL(raw, "")
		if !errors.Is(err, ErrBadURL) {
			t.Errorf("ParseURL(%q) = %v, want ErrBadURL", raw, err)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, pw) || strings.Contains(msg, "Pa55") {
			t.Errorf("ParseURL error repeats the password: %s", msg)
		}
		if strings.HasPrefix(raw, "jdbc:") && !strings.Contains(msg, "persist.password") {
			t.Errorf("ParseURL(%q) = %s, want it to point to persist.password", raw, msg)
		}
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"jdbc:sqlite:/x.db", "jdbc:sqlite:/x.db"},
		{"jdbc:mysql://db/x", "jdbc:mysql://db/x"},
		{"jdbc:mysql://u:secret@db/x", "jdbc:mysql://u:xxxxx@db/x"},
		{"u:secret@tcp(db)/x", redacted + "@tcp(db)/x"},
		{"jdbc:mysql://db/x?user=u&password=secret&tls=true", "jdbc:mysql://db/x?user=u&password=" + redacted + "&tls=true"},
		{"jdbc:mysql://db/x?PWD=secret", "jdbc:mysql://db/x?PWD=" + redacted},
		{"jdbc:mysql://db/x?pass=secret&passwd=secret", "jdbc:mysql://db/x?pass=" + redacted + "&passwd=" + redacted},
		{"jdbc:mysql://db/x?clientCertificateKeyStorePassword=secret", "jdbc:mysql://db/x?clientCertificateKeyStorePassword=" + redacted},
		{"jdbc:mysql://u:secret@db/x?password=secret", "jdbc:mysql://u:xxxxx@db/x?password=" + redacted},
		{"jdbc:mysql://db/x?passwordless=1&charset=utf8mb4", "jdbc:mysql://db/x?passwordless=" + redacted + "&charset=utf8mb4"},
		{"jdbc:mysql://db/x?charset=utf8mb4", "jdbc:mysql://db/x?charset=utf8mb4"},
		{"jdbc:mysql://u:s3c/ret@db:3306/tok", redacted + "@db:3306/tok"},
		{"jdbc:mysql://u:123/ret@db:3306/tok", redacted + "@db:3306/tok"},
		{"jdbc:mysql://db:3306/tok?clientSecret=s3cret", "jdbc:mysql://db:3306/tok?clientSecret=" + redacted},
		{"jdbc:mysql://u@db:3306/tc", "jdbc:mysql://u@db:3306/tc"},
	}
	for _, tc := range tests {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
