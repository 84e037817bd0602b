package persist

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// SQLiteMemory is the path of a private in-memory SQLite database
// ("jdbc:sqlite::memory:"), for tests.
const SQLiteMemory = ":memory:"

// URL is a parsed persist.url.
type URL struct {
	// Kind is StoreSQLite or StoreMySQL.
	Kind string
	// Path is the SQLite database file, absolute (or SQLiteMemory).
	Path string
	// MySQL is the go-sql-driver/mysql configuration: network, address,
	// database and the URL's parameters, without credentials (Open sets
	// User and Passwd from persist.username and persist.password).
	MySQL *mysql.Config
	// Notes says, for the log, which JDBC parameters of the URL were
	// translated to driver parameters or accepted without effect.
	Notes []string
}

// ParseURL parses a JDBC-style persist.url:
//
//	jdbc:sqlite:<path>          relative paths are relative to dataDir
//	jdbc:sqlite::memory:        a private in-memory database (tests)
//	jdbc:mysql://host[:port]/db[?param=value&…]
//
// A SQLite URL takes no parameters: tokencache chooses the pragmas itself.
// For MySQL the port defaults to 3306, the database name is required, and
// the parameters are handed to go-sql-driver/mysql, which validates the
// ones it knows (timeout, readTimeout, tls, charset, …) and sends the others
// as session variables (SET name = value on every new connection). The
// usual Connector/J parameters are translated (useSSL, sslMode,
// connectTimeout, socketTimeout, …) or accepted without effect where
// tokencache already does what they ask (see jdbcParams); any other
// camelCase parameter is refused here, since it could only fail at the
// first connection as an unknown system variable. The character set must
// be utf8mb4. User names and passwords are refused in the URL
// (userinfo or user/password parameters): they belong in persist.username
// and persist.password, so that the URL can be logged and the password can
// come from the environment. Errors wrap ErrBadURL and never contain a
// password.
func ParseURL(raw, dataDir string) (URL, error) {
	rest, ok := strings.CutPrefix(raw, "jdbc:")
	if !ok {
		return URL{}, fmt.Errorf("%w: %q must start with jdbc:sqlite: or jdbc:mysql://", ErrBadURL, RedactURL(raw))
	}
	switch {
	case strings.HasPrefix(rest, "sqlite:"):
		p, err := parseSQLitePath(strings.TrimPrefix(rest, "sqlite:"), dataDir)
		if err != nil {
			return URL{}, err
		}
		return URL{Kind: StoreSQLite, Path: p}, nil
	case strings.HasPrefix(rest, "mysql:"):
		c, notes, err := parseMySQL(rest)
		if err != nil {
			return URL{}, err
		}
		return URL{Kind: StoreMySQL, MySQL: c, Notes: notes}, nil
	}
	return URL{}, fmt.Errorf("%w: %q: unsupported database (want jdbc:sqlite: or jdbc:mysql://)", ErrBadURL, RedactURL(raw))
}

// DefaultSQLiteURL is the default persist.url for SQLite: tokens.db in the
// data dir (a relative path is relative to the data dir).
const DefaultSQLiteURL = "jdbc:sqlite:" + DefaultSQLiteFile

func parseSQLitePath(p, dataDir string) (string, error) {
	switch {
	case p == "":
		return "", fmt.Errorf("%w: jdbc:sqlite: needs a file path (or :memory:)", ErrBadURL)
	case p == SQLiteMemory:
		return SQLiteMemory, nil
	case strings.HasPrefix(p, "file:"):
		return "", fmt.Errorf("%w: jdbc:sqlite:%s: give a plain path, not a file: URI", ErrBadURL, p)
	case strings.ContainsAny(p, "?#"):
		return "", fmt.Errorf("%w: jdbc:sqlite:%s: SQLite URLs take no parameters (tokencache sets the pragmas)", ErrBadURL, p)
	case strings.ContainsRune(p, 0):
		return "", fmt.Errorf("%w: jdbc:sqlite: path contains a NUL byte", ErrBadURL)
	case strings.HasSuffix(p, "/") || strings.HasSuffix(p, string(filepath.Separator)):
		return "", fmt.Errorf("%w: jdbc:sqlite:%s is a directory, not a file", ErrBadURL, p)
	}
	if !filepath.IsAbs(p) {
		if dataDir == "" {
			return "", fmt.Errorf("%w: jdbc:sqlite:%s is relative and no data dir was given", ErrBadURL, p)
		}
		p = filepath.Join(dataDir, p)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("%w: cannot make jdbc:sqlite:%s absolute: %w", ErrBadURL, p, err)
	}
	return abs, nil
}

// mysqlForbiddenParams are URL parameters refused for MySQL: credentials
// (which belong in persist.username/password) and "strict", which
// go-sql-driver/mysql answers with a panic.
var mysqlForbiddenParams = map[string]string{
	"user":     "put the user name in persist.username",
	"username": "put the user name in persist.username",
	"password": "put the password in persist.password (or its environment variable)",
	"passwd":   "put the password in persist.password (or its environment variable)",
	"strict":   "strict mode was removed from go-sql-driver/mysql",
}

func parseMySQL(rest string) (*mysql.Config, []string, error) {
	// rest is "mysql://…"; url.Parse needs the scheme to split the authority.
	u, err := url.Parse(rest)
	if err != nil {
		if strings.Contains(rest, "@") {
			// The parser's message may quote part of a password.
			return nil, nil, fmt.Errorf("%w: %s cannot be parsed (credentials do not belong in the URL: use persist.username and persist.password)", ErrBadURL, RedactURL("jdbc:"+rest))
		}
		return nil, nil, fmt.Errorf("%w: %s cannot be parsed: %w", ErrBadURL, RedactURL("jdbc:"+rest), errors.Unwrap(err))
	}
	shown := RedactURL("jdbc:" + rest)
	if u.Opaque != "" || !strings.HasPrefix(rest, "mysql://") {
		return nil, nil, fmt.Errorf("%w: %s: want jdbc:mysql://host:port/db", ErrBadURL, shown)
	}
	if u.User != nil {
		if _, hasPass := u.User.Password(); hasPass {
			return nil, nil, fmt.Errorf("%w: %s contains a password: remove it from the URL and set persist.password (or its environment variable) instead", ErrBadURL, shown)
		}
		return nil, nil, fmt.Errorf("%w: %s contains a user name: set persist.username instead", ErrBadURL, shown)
	}
	if u.Fragment != "" {
		return nil, nil, fmt.Errorf("%w: %s: unexpected #fragment", ErrBadURL, shown)
	}
	if strings.Contains(u.Host, ",") {
		// Connector/J reads host1,host2 as a failover list; the Go driver
		// takes one address, and would look the whole list up as one name.
		return nil, nil, fmt.Errorf("%w: %s names several hosts (%s); tokencache connects to one: name a single host:port (put a proxy or a virtual IP in front of a failover pair)", ErrBadURL, shown, u.Host)
	}
	host := u.Hostname()
	if host == "" {
		return nil, nil, fmt.Errorf("%w: %s: host is missing", ErrBadURL, shown)
	}
	port := u.Port()
	if port == "" {
		if strings.HasSuffix(u.Host, ":") {
			return nil, nil, fmt.Errorf("%w: %s: port is empty", ErrBadURL, shown)
		}
		port = "3306"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, nil, fmt.Errorf("%w: %s: port %q is not between 1 and 65535", ErrBadURL, shown, port)
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" {
		return nil, nil, fmt.Errorf("%w: %s: database name is missing (jdbc:mysql://host:port/db)", ErrBadURL, shown)
	}
	if strings.Contains(db, "/") {
		return nil, nil, fmt.Errorf("%w: %s: database name %q contains a slash", ErrBadURL, shown, db)
	}
	query, err := url.ParseQuery(u.RawQuery)
	for k := range query {
		// A password first: its message is the one that matters.
		if secretParam(k) {
			return nil, nil, fmt.Errorf("%w: %s: parameter %q is not allowed: put the password in persist.password (or its environment variable)", ErrBadURL, shown, k)
		}
	}
	if err != nil {
		// The parser's message would quote the bad escape, perhaps part of
		// a secret.
		return nil, nil, fmt.Errorf("%w: %s: bad parameters: a %%-escape is invalid", ErrBadURL, shown)
	}
	for k := range query {
		if why, bad := mysqlForbiddenParams[strings.ToLower(k)]; bad {
			return nil, nil, fmt.Errorf("%w: %s: parameter %q is not allowed: %s", ErrBadURL, shown, k, why)
		}
	}
	notes, err := translateJDBCParams(query)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrBadURL, shown, err)
	}
	// Let the driver parse the parameters: it knows which ones exist and
	// how to read their values. Its DSN wants values query-escaped and
	// splits on '&' and '='; commas (charset lists) must stay as they are.
	var b strings.Builder
	b.WriteString("tcp(")
	b.WriteString(net.JoinHostPort(host, port))
	b.WriteString(")/")
	b.WriteString(url.PathEscape(db))
	sep := byte('?')
	for _, k := range slices.Sorted(maps.Keys(query)) {
		for _, v := range query[k] {
			b.WriteByte(sep)
			sep = '&'
			b.WriteString(url.QueryEscape(k))
			b.WriteByte('=')
			b.WriteString(strings.ReplaceAll(url.QueryEscape(v), "%2C", ","))
		}
	}
	cfg, err := mysql.ParseDSN(b.String())
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrBadURL, shown, err)
	}
	if err := checkCharset(query); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrBadURL, shown, err)
	}
	return cfg, notes, nil
}

// RedactURL returns raw with any password in its userinfo and the value of
// every secret parameter (see secretParam) replaced, for error messages,
// logs and `tokencache config show`: the one redactor of database URLs. Text that is not a URL is returned as is: it
// cannot carry a userinfo password that url.Parse would find either.
func RedactURL(raw string) string {
	raw = redactQuery(raw)
	rest, ok := strings.CutPrefix(raw, "jdbc:")
	if !ok {
		rest = raw
	}
	if !strings.Contains(rest, "@") {
		return raw
	}
	u, err := url.Parse(rest)
	if err != nil || u.User == nil {
		// Cannot tell where a password would be: hide everything up to
		// the last '@'.
		i := strings.LastIndexByte(raw, '@')
		return redacted + raw[i:]
	}
	if ok {
		return "jdbc:" + u.Redacted()
	}
	return u.Redacted()
}

// redactQuery replaces the value of every parameter of raw's query that
// may hold a secret (see secretParam), keeping the rest as written. It
// works on the text, so that a URL the parser refuses is redacted too.
func redactQuery(raw string) string {
	q := strings.IndexByte(raw, '?')
	if q < 0 {
		return raw
	}
	params := strings.Split(raw[q+1:], "&")
	changed := false
	for i, p := range params {
		k, _, hasValue := strings.Cut(p, "=")
		if name, err := url.QueryUnescape(k); err == nil {
			k = name
		}
		if hasValue && secretParam(k) {
			params[i] = p[:strings.IndexByte(p, '=')+1] + redacted
			changed = true
		}
	}
	if !changed {
		return raw
	}
	return raw[:q+1] + strings.Join(params, "&")
}

// secretParam reports whether a URL parameter may carry a secret:
// password, passwd, pwd, pass, and any name containing "password" or
// "secret" (Connector/J's trustCertificateKeyStorePassword, say). Case is
// ignored.
func secretParam(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "pwd", "pass", "passwd":
		return true
	}
	return strings.Contains(n, "password") || strings.Contains(n, "secret")
}
