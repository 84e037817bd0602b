package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokencache/tokencache/internal/lincheck"
)

// Faults of the process-level linearizability run.
const (
	faultKillFollower = "sigkill-follower"
	faultKillLeader   = "sigkill-leader"
	faultStopFollower = "sigstop-follower"
	faultStopLeader   = "sigstop-leader"
	// A fresh node with TOKENCACHE_TOKENS_EXPIRY=30m (another settings
	// fingerprint) and the default bootstrap_expect joins (issue 9
	// scenario 1); clients send it reads and writes.
	faultJoinMismatchedProc = "join-mismatched"
	// Two servers are SIGKILLed; a fresh node with the default
	// bootstrap_expect joins the survivor while no leader exists
	// (scenario 2); then the two restart.
	faultJoinLeaderlessProc = "join-leaderless"
)

// TestLinearizableHistoriesProcesses records the history of concurrent HTTP
// clients (issue, child issue, DELETE and POST /v1/revoke, local and
// consistent validation on every node) against three tokencache processes
// on loopback, under SIGKILL and SIGSTOP of the leader and of followers
// (SIGSTOP is this test's partition: the node neither sends nor answers),
// restarts, and joins of a mismatched node and of a fresh node into a
// leaderless cluster, and checks it with porcupine (lincheck.Model).
// TOKENCACHE_CHAOS=1 runs five minutes of faults; TOKENCACHE_LIN_SEED
// replays a seed; TOKENCACHE_LIN_FAULTS picks fault kinds.
func TestLinearizableHistoriesProcesses(t *testing.T) {
	seed := lincheck.Seed(t)
	faults := lincheck.Faults(t, faultKillFollower, faultKillLeader, faultStopFollower, faultStopLeader,
		faultJoinMismatchedProc, faultJoinLeaderlessProc)
	length := lincheck.Length(25 * time.Second)
	c := startProcCluster(t, 3)
	c.leader(30 * time.Second)
	join := c.nodes[0].arg("--join")
	tgt := &procTarget{c: c, admin: c.admin, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	tgt.setNodes(c.nodes)

	rec := lincheck.NewRecorder()
	clients := lincheck.Workload{Seed: seed}.NewClients(rec, tgt)
	stop := clients.Start()

	nm := &procNemesis{t: t, c: c, tgt: tgt, rec: rec, join: join, rnd: rand.New(rand.NewPCG(seed, 0x6e656d))}
	err := nm.run(faults, length)
	nm.heal()
	time.Sleep(3 * time.Second) // traffic after the heal
	stop()

	lincheck.Finish(t, clients, rec, seed, faults, err, nm.converged(60*time.Second))
}

// procTarget sends the workload's requests over HTTP to the processes.
type procTarget struct {
	c      *procCluster
	admin  string
	client *http.Client
	mu     sync.Mutex
	nodes  map[string]*node // by node id: the servers and any extra node
}

func (p *procTarget) setNodes(ns []*node) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nodes == nil {
		p.nodes = map[string]*node{}
	}
	for _, n := range ns {
		p.nodes[nodeID(n)] = n
	}
}

func (p *procTarget) remove(n *node) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.nodes, nodeID(n))
}

// Nodes returns every node process that has been started and not removed
// (a SIGSTOPped or SIGKILLed one too: requests to it time out or fail).
func (p *procTarget) Nodes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for id := range p.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (p *procTarget) addr(id string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n, ok := p.nodes[id]; ok {
		return n.addr
	}
	return ""
}

// do sends a request; status 0 means no answer (reset, timeout), -1 that
// the request was never sent (the connection was refused).
func (p *procTarget) do(ctx context.Context, node, method, path, bearer, ctype string, body io.Reader, hdr map[string]string) (int, apiAnswer) {
	base := p.addr(node)
	if base == "" {
		return 0, apiAnswer{}
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return 0, apiAnswer{}
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		if op := (*net.OpError)(nil); errors.As(err, &op) && op.Op == "dial" {
			return -1, apiAnswer{Error: err.Error()}
		}
		return 0, apiAnswer{Error: err.Error()}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a apiAnswer
	_ = json.Unmarshal(raw, &a)
	return resp.StatusCode, a
}

type apiAnswer struct {
	Token string `json:"token"`
	Key   string `json:"key"`
	Error string `json:"error"`
}

// writeOutcome classifies the answer to a write: only 503 no_leader (and a
// request that never reached a node) promise nothing was applied.
func writeOutcome(code int, a apiAnswer) lincheck.Output {
	detail := fmt.Sprintf("%d %s", code, a.Error)
	switch {
	case code >= 200 && code < 300:
		return lincheck.Output{Result: lincheck.OK, Detail: detail}
	case code == -1 || (code == 503 && a.Error == "no_leader"):
		return lincheck.Output{Result: lincheck.Failed, Detail: detail}
	case code == 400 || code == 401 || code == 403:
		return lincheck.Output{Result: lincheck.Other, Detail: detail}
	}
	return lincheck.Output{Result: lincheck.Ambiguous, Detail: detail}
}

func (p *procTarget) Issue(ctx context.Context, node string, parent *lincheck.Token, idem string) (string, string, lincheck.Output) {
	body := map[string]any{"username": "lin", "scopes": []string{"read"}}
	if parent != nil {
		body["parent"] = parent.Key
	}
	b, _ := json.Marshal(body)
	hdr := map[string]string{}
	if idem != "" {
		hdr["Idempotency-Key"] = idem
	}
	code, a := p.do(ctx, node, "POST", "/v1/tokens", p.admin, "application/json", strings.NewReader(string(b)), hdr)
	detail := fmt.Sprintf("%d %s", code, a.Error)
	switch {
	case code == 201:
		return a.Key, a.Token, lincheck.Output{Result: lincheck.OK, Detail: detail}
	case code == 404 && a.Error == "parent_not_found":
		return "", "", lincheck.Output{Result: lincheck.NotFound, Detail: detail}
	case code == 409 && a.Error == "parent_not_valid":
		return "", "", lincheck.Output{Result: lincheck.ParentNotValid, Detail: detail}
	case code == 409 && a.Error == "idempotency_conflict":
		return "", "", lincheck.Output{Result: lincheck.Conflict, Detail: detail}
	}
	return "", "", writeOutcome(code, a)
}

func (p *procTarget) Revoke(ctx context.Context, node string, tok lincheck.Token, rfc7009 bool) lincheck.Output {
	if rfc7009 {
		form := url.Values{"token": {tok.Text}}.Encode()
		code, a := p.do(ctx, node, "POST", "/v1/revoke", "", "application/x-www-form-urlencoded", strings.NewReader(form), nil)
		return writeOutcome(code, a)
	}
	code, a := p.do(ctx, node, "DELETE", "/v1/tokens/"+tok.Key, p.admin, "", nil, nil)
	if code == 404 {
		return lincheck.Output{Result: lincheck.NotFound, Detail: fmt.Sprintf("%d %s", code, a.Error)}
	}
	return writeOutcome(code, a)
}

func (p *procTarget) Validate(ctx context.Context, node string, tok lincheck.Token, consistent bool) lincheck.Output {
	path := "/v1/validate"
	if consistent {
		path += "?consistency=consistent"
	}
	code, a := p.do(ctx, node, "GET", path, tok.Text, "", nil, nil)
	detail := fmt.Sprintf("%d %s", code, a.Error)
	switch {
	case code == 200:
		return lincheck.Output{Result: lincheck.Valid, Detail: detail}
	case code == 401 && a.Error == "revoked":
		return lincheck.Output{Result: lincheck.Revoked, Detail: detail}
	case code == 401 && a.Error == "unknown":
		return lincheck.Output{Result: lincheck.Unknown, Detail: detail}
	case code <= 0 || code == 503:
		return lincheck.Output{Result: lincheck.Refused, Detail: detail}
	}
	return lincheck.Output{Result: lincheck.Other, Detail: detail}
}

// procNemesis injects one fault at a time into the processes.
type procNemesis struct {
	t     *testing.T
	c     *procCluster
	tgt   *procTarget
	rec   *lincheck.Recorder
	join  string // the servers' gossip addresses
	rnd   *rand.Rand
	extra []*node // mismatched and fresh joiners started so far
}

func (nm *procNemesis) sleep(lo, hi time.Duration) { lincheck.Pause(nm.rnd, lo, hi) }

// run injects faults for length (lincheck.Schedule), waiting after each
// until the servers agree on a ready leader.
func (nm *procNemesis) run(kinds []string, length time.Duration) error {
	return lincheck.Schedule(nm.rnd, kinds, length, nm.inject, func() error { return nm.recover(45 * time.Second) })
}

// leader returns the server the running servers agree leads, or nil.
func (nm *procNemesis) leader() *node {
	id := ""
	for _, n := range nm.c.nodes {
		if !n.running() {
			continue
		}
		st, ok := nm.c.status(n)
		if !ok || st.LeaderID == "" || (id != "" && st.LeaderID != id) {
			return nil
		}
		id = st.LeaderID
	}
	for _, n := range nm.c.nodes {
		if n.running() && nodeID(n) == id {
			return n
		}
	}
	return nil
}

func (nm *procNemesis) pick(leader bool) *node {
	l := nm.leader()
	if leader {
		return l
	}
	var fs []*node
	for _, n := range nm.c.nodes {
		if n != l {
			fs = append(fs, n)
		}
	}
	return fs[nm.rnd.IntN(len(fs))]
}

func kill(n *node) {
	if n.running() {
		n.cmd.Process.Signal(syscall.SIGCONT)
		n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.done
	}
}

// extraNode starts a fresh node that joins the servers, with extra env.
func (nm *procNemesis) extraNode(id, join string, env ...string) *node {
	n := newProcNode(nm.t, id, "", freePorts(nm.t), append(slices.Clone(nm.c.nodes[0].env), env...), "--join", join)
	n.launch()
	nm.extra = append(nm.extra, n)
	nm.tgt.setNodes([]*node{n})
	return n
}

func (nm *procNemesis) inject(kind string) error {
	switch kind {
	case faultKillFollower, faultKillLeader:
		victim := nm.pick(kind == faultKillLeader)
		if victim == nil {
			return nil
		}
		end := nm.rec.Fault(kind, nodeID(victim)+" SIGKILLed and restarted")
		kill(victim)
		nm.sleep(500*time.Millisecond, 2*time.Second)
		victim.launch()
		end()
	case faultStopFollower, faultStopLeader:
		victim := nm.pick(kind == faultStopLeader)
		if victim == nil {
			return nil
		}
		end := nm.rec.Fault(kind, nodeID(victim)+" SIGSTOPped, then SIGCONT")
		victim.cmd.Process.Signal(syscall.SIGSTOP)
		nm.sleep(time.Second, 4*time.Second)
		victim.cmd.Process.Signal(syscall.SIGCONT)
		end()
	case faultJoinMismatchedProc:
		id := fmt.Sprintf("m%d", len(nm.extra)+1)
		end := nm.rec.Fault(kind, id+" (TOKENCACHE_TOKENS_EXPIRY=30m, default bootstrap_expect) joins")
		n := nm.extraNode(id, nm.join, "TOKENCACHE_TOKENS_EXPIRY=30m")
		nm.sleep(3*time.Second, 5*time.Second)
		nm.tgt.remove(n)
		kill(n)
		end()
	case faultJoinLeaderlessProc:
		survivor := nm.pick(false)
		var gone []*node
		for _, n := range nm.c.nodes {
			if n != survivor {
				gone = append(gone, n)
			}
		}
		id := fmt.Sprintf("f%d", len(nm.extra)+1)
		end := nm.rec.Fault(kind, fmt.Sprintf("%s and %s SIGKILLed; %s (default bootstrap_expect) joins %s; they restart",
			nodeID(gone[0]), nodeID(gone[1]), id, nodeID(survivor)))
		for _, n := range gone {
			kill(n)
		}
		n := nm.extraNode(id, survivor.arg("--gossip-addr"))
		nm.sleep(3*time.Second, 5*time.Second)
		for _, g := range gone {
			g.launch()
		}
		nm.sleep(3*time.Second, 5*time.Second)
		nm.tgt.remove(n)
		kill(n)
		end()
	default:
		return fmt.Errorf("unknown fault %q", kind)
	}
	return nil
}

// recover waits until the servers agree on a leader and each is ready.
func (nm *procNemesis) recover(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if nm.leader() != nil {
			ready := true
			for _, n := range nm.c.nodes {
				if !n.running() {
					out := n.logs.String()
					if i := strings.LastIndex(out, "\n{"); i >= 0 {
						out = out[i+1:] // what followed the last log line: a panic's trace
					}
					return fmt.Errorf("%s exited: %w; its output after the last log line:\n%.6000s", nodeID(n), n.exitErr, out)
				}
				if code, _ := n.callQuiet("GET", "/readyz", "", nil); code != 200 {
					ready = false
				}
			}
			if ready {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the servers did not agree on a ready leader within %s", timeout)
}

// heal resumes and restarts every server and stops the extra nodes.
func (nm *procNemesis) heal() {
	for _, n := range nm.extra {
		nm.tgt.remove(n)
		kill(n)
	}
	for _, n := range nm.c.nodes {
		if n.running() {
			n.cmd.Process.Signal(syscall.SIGCONT)
		} else {
			n.launch()
		}
	}
}

// converged waits until a leader is agreed, every server is ready, and
// they report the same applied index.
func (nm *procNemesis) converged(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		if err := nm.recover(time.Second); err == nil {
			var applied []string
			for _, n := range nm.c.nodes {
				var st struct {
					Applied uint64 `json:"applied_index"`
					Commit  uint64 `json:"commit_index"`
				}
				n.callQuiet("GET", "/v1/cluster", nm.c.admin, &st)
				applied = append(applied, fmt.Sprint(st.Applied))
			}
			if len(slices.Compact(slices.Clone(applied))) == 1 {
				return nil
			}
			last = "applied indexes " + strings.Join(applied, ", ")
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("not converged within %s: %s", timeout, last)
}
