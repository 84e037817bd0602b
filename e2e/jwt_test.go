package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// jwtCluster is a procCluster whose nodes each read their own JWT keys
// file (as every node of a real cluster does).
type jwtCluster struct {
	*procCluster
	keys map[string]string // node id -> its keys file
	// master is the file the operator edits with the CLI and copies to
	// every node.
	master string
}

func startJWTCluster(t *testing.T) *jwtCluster {
	t.Helper()
	dir := t.TempDir()
	jc := &jwtCluster{keys: map[string]string{}, master: filepath.Join(dir, "master-keys.pem")}
	jc.cli(t, "jwt", "keygen", "--kid", "a", "--out", jc.master)
	for _, id := range []string{"n1", "n2", "n3"} {
		jc.keys[id] = filepath.Join(dir, id+"-keys.pem")
		copyKeys(t, jc.master, jc.keys[id])
	}
	jc.procCluster = startProcClusterWith(t, 3, func(id string) []string {
		return []string{"TOKENCACHE_TOKENS_JWT_KEYS_FILE=" + jc.keys[id]}
	},
		"TOKENCACHE_TOKENS_FORMAT=jwt",
		"TOKENCACHE_TOKENS_JWT_ISSUER=https://tokencache.e2e.example",
		"TOKENCACHE_TOKENS_JWT_LEEWAY=1s",
	)
	return jc
}

// cli runs the tokencache CLI and returns its standard output.
func (jc *jwtCluster) cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(binary, args...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("tokencache %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// copyKeys installs src as dst the way a deployment should: a 0600 file
// renamed over the old one, so a node never reads half a file.
func copyKeys(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// jwtStatus is the part of GET /v1/cluster about JWT keys.
type jwtStatus struct {
	JWTKeys      string `json:"jwt_keys"`
	JWTKeysAgree bool   `json:"jwt_keys_agree"`
	NotReady     string `json:"not_ready"`
	Members      []struct {
		ID      string `json:"id"`
		JWTKeys string `json:"jwt_keys"`
	} `json:"members"`
}

func (jc *jwtCluster) jwtStatus(n *node) jwtStatus {
	var st jwtStatus
	n.callQuiet("GET", "/v1/cluster", jc.admin, &st)
	return st
}

// waitKeys waits until every node reports digest for itself and for every
// member, and agreement.
func (jc *jwtCluster) waitKeys(t *testing.T, what, digest string) {
	t.Helper()
	waitFor(t, 30*time.Second, what, func() bool {
		for _, n := range jc.nodes {
			st := jc.jwtStatus(n)
			if st.JWTKeys != digest || !st.JWTKeysAgree || len(st.Members) != 3 {
				return false
			}
			for _, m := range st.Members {
				if m.JWTKeys != digest {
					return false
				}
			}
		}
		return true
	})
}

// digest returns the digest of the master keys file (jwt keys -o json).
func (jc *jwtCluster) digest(t *testing.T) string {
	t.Helper()
	var out struct {
		Digest string `json:"digest"`
	}
	if err := json.Unmarshal([]byte(jc.cli(t, "jwt", "keys", "--keys-file", jc.master, "-o", "json")), &out); err != nil {
		t.Fatal(err)
	}
	return out.Digest
}

// roll copies the master keys file to every node, one after the other,
// signalling each with SIGHUP when hup is set (otherwise the nodes notice
// the change themselves).
func (jc *jwtCluster) roll(t *testing.T, hup bool) {
	t.Helper()
	for _, n := range jc.nodes {
		copyKeys(t, jc.master, jc.keys[nodeID(n)])
		if hup {
			if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// kidOf returns the kid of a JWT's header.
func kidOf(t *testing.T, tok string) string {
	t.Helper()
	h, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatalf("JWT header: %v", err)
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	json.Unmarshal(b, &hdr)
	return hdr.Kid
}

// validator validates, over and over on every node in turn, the tokens it
// is told are valid, and records every answer that says otherwise (401 or
// 403: a failed validation). A 503 is a node that cannot decide at that
// moment (a process starved of CPU on a loaded machine is briefly stale),
// not a verdict on the token: those are counted apart.
type validator struct {
	mu        sync.Mutex
	start     time.Time
	live      map[string]time.Time // token -> stop validating it at
	names     map[string]string    // token -> its name in messages
	failures  []string
	undecided []string
	count     int
	stop      chan struct{}
	done      chan struct{}
}

func startValidator(nodes []*node) *validator {
	v := &validator{start: time.Now(), live: map[string]time.Time{}, names: map[string]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(v.done)
		for i := 0; ; i++ {
			select {
			case <-v.stop:
				return
			default:
			}
			v.mu.Lock()
			var toks []string
			now := time.Now()
			for tok, until := range v.live {
				if now.Before(until) {
					toks = append(toks, tok)
				}
			}
			v.mu.Unlock()
			n := nodes[i%len(nodes)]
			for _, tok := range toks {
				code, reason := n.validateQuiet(tok)
				v.mu.Lock()
				v.count++
				if code != 200 && time.Now().Before(v.live[tok]) {
					what := fmt.Sprintf("%s on %s at +%s: %d %s", v.names[tok], nodeID(n), time.Since(v.start).Round(time.Millisecond), code, reason)
					if code == 503 {
						v.undecided = append(v.undecided, what)
					} else {
						v.failures = append(v.failures, what)
					}
				}
				v.mu.Unlock()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return v
}

// add validates tok (called name in messages) until until.
func (v *validator) add(name, tok string, until time.Time) {
	v.mu.Lock()
	v.live[tok] = until
	v.names[tok] = name
	v.mu.Unlock()
}

func (v *validator) finish() (count int, failures, undecided []string) {
	close(v.stop)
	<-v.done
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.count, v.failures, v.undecided
}

func jwksKids(t *testing.T, n *node) []string {
	t.Helper()
	resp, err := http.Get(n.addr + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&set) != nil {
		t.Fatalf("GET /.well-known/jwks.json on %s = %d", nodeID(n), resp.StatusCode)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
		t.Errorf("JWKS Cache-Control on %s = %q, want a max-age", nodeID(n), cc)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	slices.Sort(kids)
	return kids
}

// TestJWTKeyRotationCluster rotates the JWT signing key of a running
// 3-process cluster end to end, with the CLI and signals, while a client
// validates continuously on every node and never sees a failed validation:
// add key b (verify only) everywhere, make b active everywhere, issue with
// b, and remove a once a's tokens have expired. On the way: the nodes
// report that their keys differ without becoming unready, every node
// serves the JWKS, and a revoked JWT answers revoked on every node.
func TestJWTKeyRotationCluster(t *testing.T) {
	jc := startJWTCluster(t)
	digestA := jc.digest(t)
	jc.waitKeys(t, "every node on key a", digestA)
	for _, n := range jc.nodes {
		if kids := jwksKids(t, n); !slices.Equal(kids, []string{"a"}) {
			t.Fatalf("JWKS of %s = %v, want [a]", nodeID(n), kids)
		}
	}

	// Long enough for steps 1 to 3 on a loaded machine (about 6 s here).
	const lifeA = 25 * time.Second
	var toksA []string
	// Every a-token expires at or after expA (issued after this line) and
	// before endA (issued before that one).
	expA := time.Now().Add(lifeA)
	for _, n := range jc.nodes {
		iss := n.issue(jc.admin, map[string]any{"username": "alice", "scopes": []string{"read"}, "expires_in": int(lifeA / time.Second)})
		if kid := kidOf(t, iss.Token); kid != "a" {
			t.Fatalf("token issued on %s has kid %q, want a", nodeID(n), kid)
		}
		toksA = append(toksA, iss.Token)
	}
	endA := time.Now().Add(lifeA)
	v := startValidator(jc.nodes)
	for i, tok := range toksA {
		v.add(fmt.Sprintf("a-token %d", i), tok, expA.Add(-3*time.Second)) // validated while surely valid
	}

	// Step 1: b, verify only, on every node. Half way, the nodes differ:
	// reported, and nobody becomes unready.
	jc.cli(t, "jwt", "keygen", "--kid", "b", "--alg", "ES256", "--out", jc.master)
	digestAB := jc.digest(t)
	copyKeys(t, jc.master, jc.keys["n1"])
	jc.nodes[0].cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 20*time.Second, "the nodes report differing JWT keys", func() bool {
		st := jc.jwtStatus(jc.nodes[1])
		return !st.JWTKeysAgree && len(st.Members) == 3 && st.Members[0].JWTKeys == digestAB && st.Members[1].JWTKeys == digestA
	})
	for _, n := range jc.nodes {
		if resp, err := http.Get(n.addr + "/readyz"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("/readyz on %s while keys differ: %v %v, want 200", nodeID(n), resp, err)
		}
	}
	jc.roll(t, true)
	jc.waitKeys(t, "every node on keys a+b", digestAB)
	for _, n := range jc.nodes {
		if kids := jwksKids(t, n); !slices.Equal(kids, []string{"a", "b"}) {
			t.Fatalf("JWKS of %s = %v, want [a b]", nodeID(n), kids)
		}
	}

	// Step 2: b active, picked up from the file change alone (no signal).
	jc.cli(t, "jwt", "activate", "--keys-file", jc.master, "b")
	digestB := jc.digest(t)
	jc.roll(t, false)
	jc.waitKeys(t, "every node signing with b", digestB)

	// Step 3: tokens of b from every node; a's and b's valid everywhere.
	var toksB []string
	for _, n := range jc.nodes {
		iss := n.issue(jc.admin, map[string]any{"username": "bob", "scopes": []string{"read"}, "expires_in": 600})
		if kid := kidOf(t, iss.Token); kid != "b" {
			t.Fatalf("token issued on %s after the switch has kid %q, want b", nodeID(n), kid)
		}
		toksB = append(toksB, iss.Token)
		v.add(fmt.Sprintf("b-token %d", len(toksB)-1), iss.Token, time.Now().Add(time.Hour))
	}
	if time.Now().After(expA.Add(-2 * time.Second)) {
		t.Fatalf("the rotation took longer than the tokens of a live (%s); the test cannot check them", lifeA)
	}
	for i, tok := range toksA {
		jc.wantValidate(jc.nodes, "a-token "+jc.nodes[i].addr, tok, "valid")
	}
	for i, tok := range toksB {
		jc.wantValidate(jc.nodes, "b-token "+jc.nodes[i].addr, tok, "valid")
	}

	// A revoked JWT answers revoked on every node.
	v.add("b-token 2", toksB[2], time.Time{}) // no longer expected valid
	resp, err := http.PostForm(jc.nodes[1].addr+"/v1/revoke", url.Values{"token": {toksB[2]}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /v1/revoke of a JWT = %v %v", resp, err)
	}
	resp.Body.Close()
	jc.wantValidate(jc.nodes, "revoked b-token", toksB[2], "revoked")

	// Step 4: once a's tokens have expired, a goes.
	time.Sleep(time.Until(endA.Add(2 * time.Second)))
	// Past its exp a JWT answers expired: within the leeway its record
	// says so, past it its own verified text does.
	for _, tok := range toksA {
		for _, n := range jc.nodes {
			if code, reason := n.validate(tok); code != 401 || reason != "expired" {
				t.Fatalf("validate(expired a-token) on %s = %d %s, want 401 expired", nodeID(n), code, reason)
			}
		}
	}
	jc.cli(t, "jwt", "remove", "--keys-file", jc.master, "a")
	digestOnlyB := jc.digest(t)
	jc.roll(t, true)
	jc.waitKeys(t, "every node on key b alone", digestOnlyB)
	for _, n := range jc.nodes {
		if kids := jwksKids(t, n); !slices.Equal(kids, []string{"b"}) {
			t.Fatalf("JWKS of %s after removing a = %v, want [b]", nodeID(n), kids)
		}
		for _, tok := range toksA {
			code, reason := n.validate(tok)
			if code != 401 || (reason != "malformed" && reason != "unknown") {
				t.Errorf("validate(a-token) on %s after a was removed = %d %s, want 401 malformed or unknown", nodeID(n), code, reason)
			}
		}
	}
	for _, tok := range toksB[:2] {
		jc.wantValidate(jc.nodes, "b-token after a was removed", tok, "valid")
	}

	count, failures, undecided := v.finish()
	if len(failures) > 0 {
		t.Errorf("the continuous client saw %d failed validations of valid tokens (of %d): %v", len(failures), count, failures)
	} else {
		t.Logf("continuous client: %d validations during the rotation, none failed; %d answered 503 (undecided) %v", count, len(undecided), undecided)
	}
	if len(undecided) > count/100 {
		t.Errorf("the continuous client got 503 for %d of %d validations, more than 1%%: %v", len(undecided), count, undecided)
	}
	if count < 100 {
		t.Errorf("the continuous client validated only %d times", count)
	}
}
