package main

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tokencache/tokencache/cluster"
	"github.com/tokencache/tokencache/httpapi"
	"github.com/tokencache/tokencache/token"
)

// Problem is one configuration problem, attached to a key path (or, for an
// environment variable, its name).
type Problem struct {
	Key string
	Msg string
}

func (p Problem) String() string {
	if p.Key == "" {
		return p.Msg
	}
	return p.Key + ": " + p.Msg
}

// Problems is a list of problems; as an error it prints one per line.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Validate reports every problem of c, one per line as "key.path: message",
// as a Problems error (nil when there is none). Messages never contain a
// secret value.
func (c *Config) Validate() error {
	errs, _ := c.check()
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// Warnings returns settings that are allowed but probably not meant.
func (c *Config) Warnings() Problems {
	_, warns := c.check()
	return warns
}

// checker collects problems.
type checker struct {
	errs, warns Problems
}

func (ck *checker) errorf(key, format string, args ...any) {
	ck.errs = append(ck.errs, Problem{key, fmt.Sprintf(format, args...)})
}

// has reports whether a problem is already filed under key.
func (ck *checker) has(key string) bool {
	for _, p := range ck.errs {
		if p.Key == key {
			return true
		}
	}
	return false
}

func (ck *checker) warnf(key, format string, args ...any) {
	ck.warns = append(ck.warns, Problem{key, fmt.Sprintf(format, args...)})
}

func (ck *checker) positive(key string, d time.Duration) {
	if d <= 0 {
		ck.errorf(key, "must be a positive duration, got %s", formatDuration(d))
	}
}

func (ck *checker) positiveInt(key string, n int) {
	if n <= 0 {
		ck.errorf(key, "must be positive, got %d", n)
	}
}

func (ck *checker) oneOf(key, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	ck.errorf(key, "unknown value %q (want %s)", v, strings.Join(allowed, ", "))
}

// address checks a host:port. Bind addresses may leave the host empty or
// unspecified (all interfaces); advertised addresses must name a host that
// others can reach. Port 0 (pick a free port) only where allowZero.
func (ck *checker) address(key, addr string, advertise, allowZero bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		ck.errorf(key, "%q is not host:port", addr)
		return
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !allowZero) {
		lo := 1
		if allowZero {
			lo = 0
		}
		ck.errorf(key, "port %q of %q must be a number from %d to 65535", port, addr, lo)
	}
	if advertise && unspecifiedHost(host) {
		ck.errorf(key, "%q cannot be advertised: other nodes cannot reach an unspecified address; name this node's address", addr)
		return
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		ck.errorf(key, "host %q of %q is neither an IP address nor a host name", host, addr)
	}
}

func unspecifiedHost(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)

func validHostname(h string) bool { return len(h) <= 253 && hostnameRE.MatchString(h) }

var (
	nodeIDRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	clusterNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	// cookieNameRE is an RFC 6265 cookie-name (an RFC 7230 token).
	cookieNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// check returns the problems (errors) and warnings of c.
func (c *Config) check() (errs, warns Problems) {
	var ck checker
	c.checkNode(&ck)
	c.checkHTTP(&ck)
	c.checkCluster(&ck)
	c.checkCache(&ck)
	c.checkPersist(&ck)
	c.checkKeyed(&ck)
	c.checkTokens(&ck)
	c.checkJWT(&ck)
	c.checkAuthz(&ck)
	c.checkLog(&ck)
	if len(ck.errs) == 0 {
		// The packages validate their own configuration at start-up; run
		// the same checks here so that `config check` accepts exactly what
		// `serve` accepts.
		c.checkPackages(&ck)
	}
	return ck.errs, ck.warns
}

// httpConfigToCheck returns the HTTP API's configuration as serve builds
// it, with a placeholder of valid syntax for an admin token generated at
// first start.
func (c *Config) httpConfigToCheck() httpapi.Config {
	admin := c.HTTP.AdminToken.Reveal()
	if admin == "" {
		admin = "generated-at-first-start"
	}
	return httpConfig(c, admin)
}

// checkPackages validates the configuration each package receives.
func (c *Config) checkPackages(ck *checker) {
	h := c.httpConfigToCheck()
	// The JWT format as serve builds it: the keys file loaded, every
	// trusted issuer checked and its JWKS file read.
	jf, jwtErr := newJWTFormat(c, nil)
	defer jf.close()
	var formats *token.Formats
	var formatsErr error
	if jwtErr == nil {
		formats, formatsErr = tokenFormats(c, jf)
	}
	for _, err := range []error{
		jwtErr,
		formatsErr,
		persistConfig(c).Validate(),
		cacheConfig(c).Validate(),
		writerConfig(c).Validate(),
		tokensConfig(c).Validate(),
		clusterConfig(c, formats).Validate(),
		h.Validate(),
	} {
		if err == nil {
			continue
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				ck.errs = append(ck.errs, Problem{Msg: line})
			}
		}
	}
}

// checkKeyed runs the validation of the packages that own a key's rule
// (the store writer's persist.write_mode, batch_size, flush_interval and
// max_pending; the token service's tokens.* keys and cache.load_batch_size;
// the cache's cache.* keys; persist's persist.* keys; the HTTP API's http.*
// keys)
// and files each problem under the key it names. It runs whatever else is
// wrong, as these keys have no other check; a problem that names no key is
// left to checkPackages, which runs the same validations once everything
// else is right.
func (c *Config) checkKeyed(ck *checker) {
	for _, err := range []error{
		persistConfig(c).Validate(), writerConfig(c).Validate(), tokensConfig(c).Validate(), cacheConfig(c).Validate(),
		c.httpConfigToCheck().Validate(),
	} {
		if err == nil {
			continue
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			for _, part := range strings.Split(line, "; ") {
				if p, ok := keyedProblem(part); ok && !ck.has(p.Key) {
					ck.errs = append(ck.errs, p)
				}
			}
		}
	}
}

// keyedProblem files a package's problem text under the configuration key
// it starts with, after any sentinel prefix ("invalid: tokens.expiry must
// be positive" is the problem "must be positive" of tokens.expiry).
func keyedProblem(text string) (Problem, bool) {
	for range 3 { // the text, then past up to two sentinel prefixes
		key, msg, _ := strings.Cut(strings.TrimSpace(text), " ")
		if _, known := keySpecs[strings.TrimSuffix(key, ":")]; known {
			return Problem{Key: strings.TrimSuffix(key, ":"), Msg: msg}, true
		}
		var ok bool
		if _, text, ok = strings.Cut(text, ": "); !ok {
			break
		}
	}
	return Problem{}, false
}

func (c *Config) checkNode(ck *checker) {
	if !nodeIDRE.MatchString(c.Node.ID) {
		ck.errorf("node.id", "%q must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", c.Node.ID)
	}
	if c.Node.DataDir == "" {
		ck.errorf("node.data_dir", "must be set (the Raft log, SQLite file and admin token live there)")
	}
}

// checkHTTP checks the http.* keys the HTTP API has no rule for, or states
// in other words; max_body_bytes, the timeouts and drain_delay are the HTTP
// API's rules (httpapi.Config.Validate, run by checkKeyed).
func (c *Config) checkHTTP(ck *checker) {
	h := &c.HTTP
	ck.address("http.addr", h.Addr, false, true)
	if n := len(h.AdminToken); n > 0 && n < minSecretLen {
		ck.errorf("http.admin_token", "is shorter than %d characters; leave it unset to have one generated", minSecretLen)
	}
	ck.positiveInt("http.max_header_bytes", h.MaxHeaderBytes)
	ck.positiveInt("http.max_conns", h.MaxConns)
	if h.MaxConnsPerIP < 0 {
		ck.errorf("http.max_conns_per_ip", "must be 0 (no per-IP limit) or positive, got %d", h.MaxConnsPerIP)
	} else if h.MaxConnsPerIP > h.MaxConns && h.MaxConns > 0 {
		ck.warnf("http.max_conns_per_ip", "%d is above http.max_conns (%d): it never applies", h.MaxConnsPerIP, h.MaxConns)
	}
	ck.positive("http.shutdown_timeout", h.ShutdownTimeout)
}

func (c *Config) checkCluster(ck *checker) {
	cl := &c.Cluster
	if !clusterNameRE.MatchString(cl.Name) {
		ck.errorf("cluster.name", "%q must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", cl.Name)
	}
	ck.address("cluster.gossip_addr", cl.GossipAddr, false, false)
	ck.address("cluster.raft_addr", cl.RaftAddr, false, false)
	if cl.GossipAdvertise != "" {
		ck.address("cluster.gossip_advertise", cl.GossipAdvertise, true, false)
	} else if host, _, err := net.SplitHostPort(cl.GossipAddr); err == nil && unspecifiedHost(host) {
		ck.errorf("cluster.gossip_advertise", "must be set when cluster.gossip_addr (%q) binds every interface", cl.GossipAddr)
	}
	if cl.RaftAdvertise != "" {
		ck.address("cluster.raft_advertise", cl.RaftAdvertise, true, false)
	} else if host, _, err := net.SplitHostPort(cl.RaftAddr); err == nil && unspecifiedHost(host) {
		ck.errorf("cluster.raft_advertise", "must be set when cluster.raft_addr (%q) binds every interface", cl.RaftAddr)
	}
	for i, j := range cl.Join {
		ck.address(fmt.Sprintf("cluster.join[%d]", i), j, true, false)
	}
	if cl.BootstrapExpect < 1 {
		ck.errorf("cluster.bootstrap_expect", "must be at least 1, got %d", cl.BootstrapExpect)
	}
	if cl.ReplicationCount < -1 {
		ck.errorf("cluster.replication_count", "must be -1 (every node votes) or at least 0, got %d", cl.ReplicationCount)
	}
	c.checkVoters(ck)
	ck.oneOf("cluster.replication_policy", cl.ReplicationPolicy, "sync", "async")
	ck.positive("cluster.max_staleness", cl.MaxStaleness)
	if cl.EncryptKey != "" {
		b, err := base64.StdEncoding.DecodeString(cl.EncryptKey.Reveal())
		if err != nil {
			ck.errorf("cluster.encrypt_key", "is not valid base64; generate one with `openssl rand -base64 32`")
		} else if n := len(b); n != 16 && n != 24 && n != 32 {
			ck.errorf("cluster.encrypt_key", "must decode to 16, 24 or 32 bytes (AES-128/192/256), got %d; generate one with `openssl rand -base64 32`", n)
		}
	}
	c.checkClusterSecurity(ck)
	ck.oneOf("cluster.raft_store", cl.RaftStore, "boltdb", "memory")
	ck.positive("cluster.election_timeout", cl.ElectionTimeout)
	ck.positive("cluster.reconcile_interval", cl.ReconcileInterval)
	ck.positive("cluster.dead_server_cleanup", cl.DeadServerCleanup)
	// The heartbeat timeout is cluster.election_timeout (see clusterConfig).
	if cl.MaxStaleness > 0 && cl.ElectionTimeout > 0 && cl.MaxStaleness < 2*cl.ElectionTimeout {
		ck.errorf("cluster.max_staleness", "%s must be at least twice cluster.election_timeout (%s), or healthy followers fail closed during ordinary elections",
			formatDuration(cl.MaxStaleness), formatDuration(cl.ElectionTimeout))
	}
}

// checkVoters warns when the cluster would start with an even number of
// voters: it tolerates no more failures than one voter fewer.
func (c *Config) checkVoters(ck *checker) {
	r, n := c.Cluster.ReplicationCount, c.Cluster.BootstrapExpect
	if r < -1 || n < 1 {
		return
	}
	voters := n
	if r >= 0 && 2*r+1 < n {
		voters = 2*r + 1
	}
	if voters%2 == 1 {
		return
	}
	if r == -1 {
		ck.warnf("cluster.replication_count", "-1 makes every node a voter, and cluster.bootstrap_expect (%d) starts an even number of voters, which survives no more failures than %d; run an odd number of nodes",
			n, n-1)
		return
	}
	ck.warnf("cluster.replication_count", "%d wants %d voters, but cluster.bootstrap_expect (%d) starts only %d, an even number, which survives no more failures than %d",
		r, 2*r+1, n, voters, voters-1)
}

func (c *Config) checkCache(ck *checker) {
	// eviction, a shard count's power of two and negative_capacity are the
	// cache's rules (cache.Config.Validate, run by checkKeyed). The file
	// also refuses what the cache takes as "automatic" (0 shards) and a
	// capacity below the shard count. A capacity that is not positive is
	// refused here in the file's words ("must be positive, got 0"), and the
	// cache's own words for it are then not repeated (checkKeyed).
	ca := &c.Cache
	ck.positiveInt("cache.capacity", ca.Capacity)
	switch {
	case ca.Shards == 0:
		ck.errorf("cache.shards", "must be a positive power of two, got %d", ca.Shards)
	case ca.Capacity > 0 && ca.Shards > 0 && ca.Capacity < ca.Shards:
		ck.errorf("cache.capacity", "%d must be at least cache.shards (%d)", ca.Capacity, ca.Shards)
	}
}

func (c *Config) checkPersist(ck *checker) {
	// persist.store's values, max_overflow, pool_timeout and query_timeout
	// are persist's rules (persist.Config.Validate, run by checkKeyed);
	// pool_size is refused here in the file's words, and persist's words
	// for it are then not repeated.
	p := &c.Persist
	switch p.Store {
	case "mysql":
		if p.URL == "" && len(p.Shards) == 0 {
			ck.errorf("persist.url", "is required when persist.store is mysql (jdbc:mysql://host:3306/database)")
		}
	case "memory":
		ck.warnf("persist.store", "memory keeps nothing across a restart of the whole cluster")
		if p.URL != "" || len(p.Shards) > 0 {
			ck.warnf("persist.url", "is ignored by the memory store")
		}
	case "none":
		if p.URL != "" || len(p.Shards) > 0 {
			ck.warnf("persist.url", "is ignored: persist.store is none")
		}
		if !c.Tokens.JWT.Enabled() {
			ck.errorf("persist.store", "none stores no tokens, so only JWTs work: set tokens.jwt.keys_file (or tokens.jwt.trusted)")
		} else if c.Tokens.Format != "jwt" && c.Tokens.JWT.KeysFile != "" {
			ck.warnf("tokens.format", "is %s, which persist.store none cannot issue (answered 501 store_disabled); set tokens.format: jwt", c.Tokens.Format)
		}
	}
	if p.URL != "" {
		checkStoreURL(ck, "persist.url", p.URL, p.Store)
	}
	for i, u := range p.Shards {
		checkStoreURL(ck, fmt.Sprintf("persist.shards[%d]", i), u, p.Store)
	}
	if n := len(p.Password); n > 0 && p.Store == "mysql" && p.Username == "" {
		ck.warnf("persist.password", "is set but persist.username is not")
	}
	ck.positiveInt("persist.pool_size", p.PoolSize)
	if p.PoolRecycle <= 0 && p.PoolRecycle != -1 {
		ck.errorf("persist.pool_recycle", "must be a positive duration or -1 (never), got %s", formatDuration(p.PoolRecycle))
	}
	// write_mode, batch_size, flush_interval and max_pending are the store
	// writer's, checked by checkKeyed (replica.WriterConfig.Validate); a
	// queue bound below one batch
	// works but is a typo.
	if p.BatchSize > 0 && p.MaxPending > 0 && p.BatchSize > p.MaxPending {
		ck.errorf("persist.batch_size", "persist.max_pending (%d) must be at least persist.batch_size (%d)", p.MaxPending, p.BatchSize)
	}
}

// checkStoreURL checks a JDBC-style URL without ever printing it (it may
// carry a password).
func checkStoreURL(ck *checker, key, raw, store string) {
	switch {
	case strings.HasPrefix(raw, "jdbc:sqlite:"):
		if strings.TrimPrefix(raw, "jdbc:sqlite:") == "" {
			ck.errorf(key, "jdbc:sqlite: needs a file path (jdbc:sqlite:/var/lib/tokencache/tokens.db)")
		}
		if store == "mysql" {
			ck.errorf(key, "is a SQLite URL but persist.store is mysql")
		}
	case strings.HasPrefix(raw, "jdbc:mysql:"):
		u, err := url.Parse(strings.TrimPrefix(raw, "jdbc:"))
		if err != nil || u.Host == "" || strings.Trim(u.Path, "/") == "" {
			ck.errorf(key, "must look like jdbc:mysql://host:3306/database[?param=value]")
		}
		if store == "sqlite" {
			ck.errorf(key, "is a MySQL URL but persist.store is sqlite")
		}
	default:
		ck.errorf(key, "must start with jdbc:sqlite: or jdbc:mysql://")
	}
}

// checkTokens warns about short secrets. The rules of the tokens.* keys
// (and cache.load_batch_size) are the token service's own
// (tokens.Config.Validate, token.Rules.Validate), run by checkKeyed.
func (c *Config) checkTokens(ck *checker) {
	t := &c.Tokens
	if n := len(t.Pepper); n > 0 && n < minSecretLen {
		ck.warnf("tokens.pepper", "is shorter than %d characters", minSecretLen)
	}
	if n := len(t.SafePassword); n > 0 && n < minSecretLen {
		ck.warnf("tokens.safe_password", "is shorter than %d characters", minSecretLen)
	}
}

func (c *Config) checkAuthz(ck *checker) {
	a := &c.Authz
	if a.Cookie != "" && !cookieNameRE.MatchString(a.Cookie) {
		ck.errorf("authz.cookie", "%q is not a valid cookie name", a.Cookie)
	}
	seen := make(map[string]int)
	for i, r := range a.Rules {
		key := fmt.Sprintf("authz.rules[%d]", i)
		switch {
		case r.PathPrefix == "":
			ck.errorf(key+".path_prefix", "is required")
		case !strings.HasPrefix(r.PathPrefix, "/"):
			ck.errorf(key+".path_prefix", "%q must start with /", r.PathPrefix)
		default:
			if j, dup := seen[r.PathPrefix]; dup {
				ck.errorf(key+".path_prefix", "%q is already used by authz.rules[%d]", r.PathPrefix, j)
			}
			seen[r.PathPrefix] = i
		}
		for j, s := range r.Scopes {
			if err := token.ValidScope(s); err != nil {
				ck.errorf(fmt.Sprintf("%s.scopes[%d]", key, j), "%q is not a valid scope (printable ASCII without space, '\"' or '\\')", s)
			}
		}
	}
}

func (c *Config) checkLog(ck *checker) {
	if _, err := parseLevel(c.Log.Level); err != nil {
		ck.errorf("log.level", "unknown value %q (want debug, info, warn or error)", c.Log.Level)
	}
	if f := c.Log.Format; f != "" && f != "text" && f != "json" {
		ck.errorf("log.format", "unknown value %q (want text or json; empty = text on a terminal, json otherwise)", f)
	}
}

// formatDuration prints d in the largest unit that divides it ("1h", "90s";
// -1 as "-1").
func formatDuration(d time.Duration) string {
	switch {
	case d == -1:
		return "-1"
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d%time.Millisecond == 0:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	}
	return d.String()
}

// checkClusterSecurity checks the gossip keys and the TLS files, and the
// protected mode: Raft or gossip beyond loopback needs both, unless
// cluster.insecure (cluster.Config.CheckExposure).
func (c *Config) checkClusterSecurity(ck *checker) {
	cl := &c.Cluster
	for i, k := range splitKeys(cl.EncryptKeySecond.Reveal()) {
		if b, err := base64.StdEncoding.DecodeString(k); err != nil || (len(b) != 16 && len(b) != 24 && len(b) != 32) {
			ck.errorf("cluster.encrypt_key_secondary", "key %d is not base64 of 16, 24 or 32 bytes", i+1)
		}
	}
	if cl.EncryptKeySecond != "" && cl.EncryptKey == "" {
		ck.errorf("cluster.encrypt_key_secondary", "needs cluster.encrypt_key (the key gossip encrypts with)")
	}
	files := cluster.TLSConfig{CAFile: cl.TLS.CAFile, CertFile: cl.TLS.CertFile, KeyFile: cl.TLS.KeyFile}
	if files.Enabled() {
		if err := files.Check(c.Node.ID, time.Now()); err != nil {
			key := "cluster.tls.cert_file"
			switch {
			case cl.TLS.CAFile == "" || cl.TLS.CertFile == "" || cl.TLS.KeyFile == "":
				key = "cluster.tls.ca_file"
			}
			ck.errorf(key, "%v", err)
		}
	}
	cc := cluster.Config{
		RaftAddr: cl.RaftAddr, RaftAdvertise: cl.RaftAdvertise, GossipAddr: cl.GossipAddr, GossipAdvertise: cl.GossipAdvertise,
		EncryptKey: cl.EncryptKey.Reveal(), TLS: files, Insecure: cl.Insecure,
	}
	if err := cc.CheckExposure(); err != nil {
		ck.errorf("cluster.insecure", "%v", err)
	} else if cl.Insecure {
		ck.warnf("cluster.insecure", "is set: without TLS and the gossip key, anyone who reaches the Raft or gossip port can join the cluster and mint tokens")
	}
}
