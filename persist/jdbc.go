package persist

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// persist.url is JDBC-style, and operators paste Connector/J URLs into it.
// go-sql-driver/mysql sends every parameter it does not know to the server
// as "SET name = value", so a Connector/J parameter such as useSSL=false
// would only fail at the first connection, as "Unknown system variable
// 'useSSL'". translateJDBCParams turns the common ones into the driver's
// equivalents, accepts those whose job tokencache already does, and refuses
// any other camelCase name (system variables are snake_case) with a clear
// message before anything connects.

// jdbcIgnored are Connector/J parameters accepted without effect, with the
// reason, for the log. A value that would ask for something tokencache does
// not do is refused by jdbcIgnoredCheck.
var jdbcIgnored = map[string]string{
	"useunicode":               "the connection always uses utf8mb4",
	"characterencoding":        "the connection always uses utf8mb4",
	"servertimezone":           "times are stored as integers, never as DATETIME",
	"usetimezone":              "times are stored as integers, never as DATETIME",
	"uselegacydatetimecode":    "times are stored as integers, never as DATETIME",
	"zerodatetimebehavior":     "times are stored as integers, never as DATETIME",
	"autoreconnect":            "database/sql replaces broken connections by itself",
	"maxreconnects":            "database/sql replaces broken connections by itself",
	"cacheprepstmts":           "tokencache prepares its statements once per connection",
	"useserverprepstmts":       "tokencache prepares its statements once per connection",
	"prepstmtcachesize":        "tokencache prepares its statements once per connection",
	"prepstmtcachesqllimit":    "tokencache prepares its statements once per connection",
	"rewritebatchedstatements": "tokencache writes multi-row statements itself",
	"allowpublickeyretrieval":  "the driver fetches the server's RSA key when caching_sha2_password needs it",
	"tcpkeepalive":             "connections use TCP keep-alive",
}

// jdbcIgnoredCheck refuses values of ignored parameters that ask for
// something else than what tokencache does.
func jdbcIgnoredCheck(name, v string) error {
	switch name {
	case "useunicode", "tcpkeepalive":
		if b, err := strconv.ParseBool(v); err != nil || !b {
			return fmt.Errorf("parameter %s=%s is not supported (only true)", name, v)
		}
	case "characterencoding":
		switch strings.ToLower(strings.ReplaceAll(v, "-", "")) {
		case "utf8", "utf8mb4":
		default:
			return fmt.Errorf("parameter characterEncoding=%s is not supported: tokencache needs utf8mb4 (UTF-8)", v)
		}
	}
	return nil
}

// jdbcMapped lists the Connector/J parameters translated to driver
// parameters, by their lower-case name.
var jdbcMapped = map[string]bool{
	"usessl": true, "requiressl": true, "verifyservercertificate": true, "sslmode": true,
	"connecttimeout": true, "sockettimeout": true, "usecompression": true,
}

// driverParams are the parameters go-sql-driver/mysql v1.10 itself reads
// (everything else becomes a session variable).
var driverParams = map[string]bool{
	"allowAllFiles": true, "allowCleartextPasswords": true, "allowFallbackToPlaintext": true,
	"allowNativePasswords": true, "allowOldPasswords": true, "charset": true, "checkConnLiveness": true,
	"clientFoundRows": true, "collation": true, "columnsWithAlias": true, "compress": true,
	"connectionAttributes": true, "interpolateParams": true, "loc": true, "maxAllowedPacket": true,
	"multiStatements": true, "parseTime": true, "readTimeout": true, "rejectReadOnly": true,
	"serverPubKey": true, "timeTruncate": true, "timeout": true, "tls": true, "writeTimeout": true,
}

// translateJDBCParams rewrites q in place: Connector/J parameters become
// driver parameters or are dropped (with a note), and unknown camelCase
// names are refused.
func translateJDBCParams(q url.Values) ([]string, error) {
	var notes []string
	lower := make(map[string]string, len(q)) // lower-case name → name as given
	for k := range q {
		lower[strings.ToLower(k)] = k
	}
	get := func(name string) (string, bool) {
		k, ok := lower[name]
		if !ok {
			return "", false
		}
		return q.Get(k), true
	}
	drop := func(name string) {
		if k, ok := lower[name]; ok {
			q.Del(k)
		}
	}
	set := func(param, value, from string) error {
		if _, taken := q[param]; taken {
			return fmt.Errorf("parameters %s and %s both set the driver's %s: keep one", from, param, param)
		}
		q.Set(param, value)
		notes = append(notes, fmt.Sprintf("JDBC %s → %s=%s", from, param, value))
		return nil
	}
	boolParam := func(name string) (bool, bool, error) {
		v, ok := get(name)
		if !ok {
			return false, false, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, true, fmt.Errorf("parameter %s=%q is not a boolean", lower[name], v)
		}
		return b, true, nil
	}

	for _, k := range slices.Sorted(maps.Keys(q)) {
		n := strings.ToLower(k)
		if reason, ok := jdbcIgnored[n]; ok {
			if err := jdbcIgnoredCheck(n, q.Get(k)); err != nil {
				return nil, err
			}
			notes = append(notes, fmt.Sprintf("JDBC %s ignored: %s", k, reason))
			q.Del(k)
			continue
		}
		if jdbcMapped[n] || driverParams[k] {
			continue
		}
		if want, ok := lowerDriverParams[n]; ok {
			return nil, fmt.Errorf("parameter %q: did you mean %s? (driver parameters are case-sensitive)", k, want)
		}
		if isMixedCase(k) {
			return nil, fmt.Errorf("parameter %q is neither a go-sql-driver/mysql parameter nor a Connector/J parameter tokencache translates, "+
				"and MySQL system variables are snake_case: remove it", k)
		}
	}

	// TLS: sslMode wins over the older useSSL/requireSSL/verifyServerCertificate.
	if v, ok := get("sslmode"); ok {
		var tls string
		switch strings.ToUpper(v) {
		case "DISABLED":
			tls = "false"
		case "PREFERRED":
			tls = "preferred"
		case "REQUIRED":
			tls = "skip-verify"
		case "VERIFY_IDENTITY":
			tls = "true"
		case "VERIFY_CA":
			return nil, errors.New("parameter sslMode=VERIFY_CA is not supported: use sslMode=VERIFY_IDENTITY (tls=true), which also checks the host name")
		default:
			return nil, fmt.Errorf("parameter sslMode=%q is not one of DISABLED, PREFERRED, REQUIRED, VERIFY_IDENTITY", v)
		}
		for _, old := range []string{"usessl", "requiressl", "verifyservercertificate"} {
			if _, dup := get(old); dup {
				return nil, fmt.Errorf("parameters sslMode and %s both set TLS: keep sslMode", lower[old])
			}
		}
		if err := set("tls", tls, lower["sslmode"]+"="+v); err != nil {
			return nil, err
		}
		drop("sslmode")
	} else {
		use, hasUse, err := boolParam("usessl")
		if err != nil {
			return nil, err
		}
		req, hasReq, err := boolParam("requiressl")
		if err != nil {
			return nil, err
		}
		verify, hasVerify, err := boolParam("verifyservercertificate")
		if err != nil {
			return nil, err
		}
		if hasUse || hasReq || hasVerify {
			tls := "false"
			switch {
			case use || req:
				tls = "true"
				if hasVerify && !verify {
					tls = "skip-verify"
				}
			case hasVerify && !hasUse && !hasReq:
				return nil, errors.New("parameter verifyServerCertificate needs useSSL=true or requireSSL=true (or use sslMode)")
			}
			from := strings.Join(slices.DeleteFunc([]string{lower["usessl"], lower["requiressl"], lower["verifyservercertificate"]},
				func(s string) bool { return s == "" }), ",")
			if err := set("tls", tls, from); err != nil {
				return nil, err
			}
			drop("usessl")
			drop("requiressl")
			drop("verifyservercertificate")
		}
	}

	// Timeouts: Connector/J counts milliseconds; socketTimeout bounds every
	// read and write, as the driver's readTimeout and writeTimeout do.
	ms := func(name string) (string, bool, error) {
		v, ok := get(name)
		if !ok {
			return "", false, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return "", true, fmt.Errorf("parameter %s=%q is not a number of milliseconds", lower[name], v)
		}
		return (time.Duration(n) * time.Millisecond).String(), true, nil
	}
	if d, ok, err := ms("connecttimeout"); err != nil {
		return nil, err
	} else if ok {
		if err := set("timeout", d, lower["connecttimeout"]); err != nil {
			return nil, err
		}
		drop("connecttimeout")
	}
	if d, ok, err := ms("sockettimeout"); err != nil {
		return nil, err
	} else if ok {
		from := lower["sockettimeout"]
		if err := set("readTimeout", d, from); err != nil {
			return nil, err
		}
		if err := set("writeTimeout", d, from); err != nil {
			return nil, err
		}
		drop("sockettimeout")
	}
	if b, ok, err := boolParam("usecompression"); err != nil {
		return nil, err
	} else if ok {
		if err := set("compress", strconv.FormatBool(b), lower["usecompression"]); err != nil {
			return nil, err
		}
		drop("usecompression")
	}
	return notes, nil
}

var lowerDriverParams = func() map[string]string {
	m := make(map[string]string, len(driverParams))
	for k := range driverParams {
		m[strings.ToLower(k)] = k
	}
	return m
}()

// isMixedCase reports whether s has both lower- and upper-case ASCII
// letters (useSSL), which no MySQL system variable name has.
func isMixedCase(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' }) &&
		strings.ContainsFunc(s, func(r rune) bool { return r >= 'A' && r <= 'Z' })
}

// checkCharset requires the connection character set to be utf8mb4:
// usernames, realms and names are UTF-8 and may hold any character.
func checkCharset(q url.Values) error {
	if v := q.Get("charset"); v != "" {
		first, _, _ := strings.Cut(v, ",")
		if !strings.EqualFold(first, "utf8mb4") {
			return fmt.Errorf("parameter charset=%s is not supported: tokencache needs utf8mb4", v)
		}
	}
	if v := q.Get("collation"); v != "" && !strings.HasPrefix(strings.ToLower(v), "utf8mb4_") {
		return fmt.Errorf("parameter collation=%s is not supported: tokencache needs a utf8mb4 collation", v)
	}
	return nil
}
