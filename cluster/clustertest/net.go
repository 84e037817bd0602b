package clustertest

import (
	"sync"

	"github.com/tokencache/tokencache/cluster"
)

// Net is the partition hook of a test cluster: it cuts links between nodes
// (Raft, RPC and gossip; a link is cut for what its sender sends) and shows
// every byte sent to a tap. Nodes are named by id; addresses registered by
// the cluster resolve to their node. It is safe for concurrent use.
type Net struct {
	mu    sync.Mutex
	cut   map[[2]string]bool
	addrs map[string]string // host:port -> node id
	tap   func(from, to string, p []byte)
}

var _ cluster.NetworkHooks = (*Net)(nil)

func newNet() *Net {
	return &Net{cut: make(map[[2]string]bool), addrs: make(map[string]string)}
}

func (tn *Net) register(addr, node string) {
	tn.mu.Lock()
	tn.addrs[addr] = node
	tn.mu.Unlock()
}

func (tn *Net) resolve(s string) string {
	if id, ok := tn.addrs[s]; ok {
		return id
	}
	return s
}

// Blocked reports whether traffic from one node to another is cut
// (cluster.NetworkHooks).
func (tn *Net) Blocked(from, to string) bool {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return tn.cut[[2]string{tn.resolve(from), tn.resolve(to)}]
}

// Sent hands p to the tap, if any (cluster.NetworkHooks).
func (tn *Net) Sent(from, to string, p []byte) {
	tn.mu.Lock()
	tap := tn.tap
	tn.mu.Unlock()
	if tap != nil {
		tap(from, tn.resolve(to), p)
	}
}

// SetTap sets the function that sees every byte a node sends to another
// (nil: none). It is called from many goroutines at once.
func (tn *Net) SetTap(f func(from, to string, p []byte)) {
	tn.mu.Lock()
	tn.tap = f
	tn.mu.Unlock()
}

// Cut cuts what from sends to to, in that direction only.
func (tn *Net) Cut(from, to string) {
	tn.mu.Lock()
	tn.cut[[2]string{from, to}] = true
	tn.mu.Unlock()
}

// CutLink cuts a-b in both directions.
func (tn *Net) CutLink(a, b string) {
	tn.mu.Lock()
	tn.cut[[2]string{a, b}] = true
	tn.cut[[2]string{b, a}] = true
	tn.mu.Unlock()
}

// Partition cuts every link between the groups.
func (tn *Net) Partition(groups ...[]string) {
	for i, g := range groups {
		for _, h := range groups[i+1:] {
			for _, a := range g {
				for _, b := range h {
					tn.CutLink(a, b)
				}
			}
		}
	}
}

// Heal restores every link.
func (tn *Net) Heal() {
	tn.mu.Lock()
	tn.cut = make(map[[2]string]bool)
	tn.mu.Unlock()
}

// healNode restores every link of node id with the others.
func (tn *Net) healNode(id string, others []string) {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	for _, other := range others {
		delete(tn.cut, [2]string{id, other})
		delete(tn.cut, [2]string{other, id})
	}
}
