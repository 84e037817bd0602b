package cluster

import (
	"sync"
	"time"
)

// peerTracker is what the leader knows about each Raft server's health:
// Raft-level contact (from raft's heartbeat observations) and the last
// stats answered over the internal RPC. It is reset on every new leadership
// term. Safe for concurrent use.
type peerTracker struct {
	mu sync.Mutex
	// failing: servers whose heartbeats fail, with the last time raft had
	// contact with them. A server absent from the map is in contact.
	failing map[string]time.Time
	stats   map[string]*peerStats // by raft id
	// removed: servers removed from the configuration recently, kept for
	// WaitApplied (their fence may still be open).
	removed map[string]removedServer
	// left: servers that asked to leave for good. A raft id names one
	// incarnation of a node (a node coming back starts with an empty data
	// dir and a new id), so an id that left is never added again, even
	// while gossip still reports it alive.
	left map[string]bool
	// foreign: servers refused because they hold another cluster's Raft
	// state, with why (a raft id is one incarnation: it stays refused).
	foreign map[string]string
}

type peerStats struct {
	at           time.Time // when the last poll answered
	resp         statsResponse
	healthySince time.Time // zero when not healthy
	failedPolls  int
}

type removedServer struct {
	addr string // host:port
	at   time.Time
}

func newPeerTracker() *peerTracker {
	return &peerTracker{
		failing: make(map[string]time.Time),
		stats:   make(map[string]*peerStats),
		removed: make(map[string]removedServer),
		left:    make(map[string]bool),
		foreign: make(map[string]string),
	}
}

// reset forgets Raft contact state (a new term: a new leader's replication).
func (p *peerTracker) reset() {
	p.mu.Lock()
	p.failing = make(map[string]time.Time)
	p.mu.Unlock()
}

func (p *peerTracker) heartbeatFailed(id string, lastContact time.Time) {
	p.mu.Lock()
	p.failing[id] = lastContact
	p.mu.Unlock()
}

func (p *peerTracker) heartbeatResumed(id string) {
	p.mu.Lock()
	delete(p.failing, id)
	p.mu.Unlock()
}

// replicationStarted forgets id's failing mark: raft started a new
// replication to it (it was added, or added back after a removal). The mark
// belonged to the previous replication, whose heartbeat loop ended; the new
// loop reports its own failures (on every failed heartbeat) but a resume
// only after such a failure, so a stale mark would never be cleared and the
// server would look silent (never promoted) until the next term.
func (p *peerTracker) replicationStarted(id string) {
	p.mu.Lock()
	delete(p.failing, id)
	p.mu.Unlock()
}

// silentFor returns how long raft has had no contact with id (0 when in
// contact, as far as this leader knows).
func (p *peerTracker) silentFor(id string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	last, ok := p.failing[id]
	if !ok {
		return 0
	}
	if last.IsZero() {
		return time.Duration(1<<63 - 1)
	}
	return time.Since(last)
}

// lastContact returns the last time raft had contact with id and whether
// its heartbeats are failing.
func (p *peerTracker) lastContact(id string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	last, ok := p.failing[id]
	return last, ok
}

// statsOf returns the stats kept for the peer id, created empty on first
// use. p.mu must be held.
func (p *peerTracker) statsOf(id string) *peerStats {
	s := p.stats[id]
	if s == nil {
		s = &peerStats{}
		p.stats[id] = s
	}
	return s
}

// recordStats stores a stats poll result; healthy tells whether the answer
// shows a healthy follower.
func (p *peerTracker) recordStats(id string, resp *statsResponse, healthy bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.statsOf(id)
	if resp == nil {
		s.failedPolls++
		s.healthySince = time.Time{}
		return
	}
	s.failedPolls = 0
	s.at = time.Now()
	s.resp = *resp
	switch {
	case !healthy:
		s.healthySince = time.Time{}
	case s.healthySince.IsZero():
		s.healthySince = s.at
	}
}

// recordApplied stores a stats answer obtained outside the health poll
// (GET /v1/cluster refreshing applied indexes). It never judges health:
// counting it as unhealthy restarted the stabilization of every server
// each time an operator looked at the cluster between two polls, and a
// re-added server, watched closely, stayed a non-voter for minutes.
func (p *peerTracker) recordApplied(id string, resp *statsResponse) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.statsOf(id)
	s.at = time.Now()
	s.resp = *resp
}

// healthyFor returns how long id has been continuously healthy (0 = not).
func (p *peerTracker) healthyFor(id string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats[id]
	if s == nil || s.healthySince.IsZero() {
		return 0
	}
	return time.Since(s.healthySince)
}

// appliedIndex returns the last polled applied index of id.
func (p *peerTracker) appliedIndex(id string, maxAge time.Duration) (uint64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats[id]
	if s == nil || s.at.IsZero() || time.Since(s.at) > maxAge {
		return 0, false
	}
	return s.resp.Applied, true
}

func (p *peerTracker) markRemoved(id, addr string) {
	p.mu.Lock()
	p.removed[id] = removedServer{addr: addr, at: time.Now()}
	delete(p.stats, id)
	p.mu.Unlock()
}

// markLeft records that id asked to leave the cluster for good.
func (p *peerTracker) markLeft(id string) {
	p.mu.Lock()
	p.left[id] = true
	p.mu.Unlock()
}

// markForeign records that id holds another cluster's Raft state.
func (p *peerTracker) markForeign(id, why string) {
	p.mu.Lock()
	p.foreign[id] = why
	p.mu.Unlock()
}

// foreignReason returns why id was refused as foreign ("" when it was not).
func (p *peerTracker) foreignReason(id string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.foreign[id]
}

// hasLeft reports whether id asked to leave the cluster.
func (p *peerTracker) hasLeft(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.left[id]
}

// recentlyRemoved returns servers removed less than keep ago.
func (p *peerTracker) recentlyRemoved(keep time.Duration) map[string]removedServer {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]removedServer)
	for id, r := range p.removed {
		if time.Since(r.at) < keep {
			out[id] = r
		} else {
			delete(p.removed, id)
		}
	}
	return out
}
