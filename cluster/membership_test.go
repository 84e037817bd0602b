package cluster

import (
	"github.com/hashicorp/raft"

	"testing"
	"time"
)

func TestNextAction(t *testing.T) {
	const (
		stab    = 10 * time.Second
		cleanup = time.Minute
		left    = 2 * time.Second
	)
	alive := func(id string, voter bool) serverView {
		return serverView{ID: id + "@1", Node: id, Addr: raft.ServerAddress("a/" + id), InConfig: true, Voter: voter, Status: statusAlive, HealthyFor: time.Hour}
	}
	with := func(s serverView, f func(*serverView)) serverView { f(&s); return s }
	dead := func(id string, voter bool, deadFor, silent time.Duration) serverView {
		return with(alive(id, voter), func(s *serverView) {
			s.Status, s.DeadFor, s.SilentFor, s.HealthyFor = statusDead, deadFor, silent, 0
		})
	}
	newMember := func(id string) serverView {
		return serverView{ID: id + "@1", Node: id, NewAddr: raft.ServerAddress("a/" + id), Status: statusAlive}
	}
	self := alive("n1", true)
	for _, tt := range []struct {
		name    string
		target  int
		servers []serverView
		want    actionKind
		wantID  string
	}{
		{"steady three voters", 3, []serverView{self, alive("n2", true), alive("n3", true)}, actNone, ""},
		{"promote a stable non-voter", 3, []serverView{self, alive("n2", true), alive("n3", false)}, actPromote, "n3@1"},
		{"promote lowest node id first", 3, []serverView{self, alive("n2", true), alive("n5", false), alive("n4", false)}, actPromote, "n4@1"},
		{"not before stabilization", 3, []serverView{self, alive("n2", true),
			with(alive("n3", false), func(s *serverView) { s.HealthyFor = stab / 2 })}, actNone, ""},
		{"never an unhealthy non-voter", 3, []serverView{self, alive("n2", true),
			with(alive("n3", false), func(s *serverView) { s.HealthyFor = 0 })}, actNone, ""},
		{"never a mismatched node", 3, []serverView{self, alive("n2", true),
			with(alive("n3", false), func(s *serverView) { s.Mismatch = true })}, actRemove, "n3@1"},
		{"demote a mismatched voter", 3, []serverView{self, alive("n2", true),
			with(alive("n3", true), func(s *serverView) { s.Mismatch = true })}, actDemote, "n3@1"},
		{"replace a failed voter: promote first", 3, []serverView{self, alive("n2", true),
			dead("n3", true, stab, stab), alive("n4", false)}, actPromote, "n4@1"},
		{"then demote the failed voter", 3, []serverView{self, alive("n2", true),
			dead("n3", true, stab, stab), alive("n4", true)}, actDemote, "n3@1"},
		{"gossip's word alone: dead but not silent on raft", 3, []serverView{self, alive("n2", true),
			dead("n3", true, time.Hour, 0), alive("n4", false)}, actNone, ""},
		{"no replacement yet: keep a freshly dead voter", 3, []serverView{self, alive("n2", true),
			dead("n3", true, stab, stab)}, actNone, ""},
		{"long dead voter without replacement is demoted when quorum-safe", 5, []serverView{self, alive("n2", true), alive("n3", true),
			dead("n4", true, cleanup, cleanup), dead("n5", true, cleanup, cleanup)}, actDemote, "n4@1"},
		{"never below quorum", 3, []serverView{self,
			dead("n2", true, cleanup, cleanup), dead("n3", true, cleanup, cleanup)}, actNone, ""},
		{"left voter, silent on raft: demote", 3, []serverView{self, alive("n2", true),
			with(alive("n3", true), func(s *serverView) { s.Status, s.SilentFor = statusLeft, left })}, actDemote, "n3@1"},
		{"left voter still talking raft: keep", 3, []serverView{self, alive("n2", true),
			with(alive("n3", true), func(s *serverView) { s.Status = statusLeft })}, actNone, ""},
		{"add a new member as non-voter", 3, []serverView{self, alive("n2", true), alive("n3", true), newMember("n4")}, actAddNonvoter, "n4@1"},
		{"never add a mismatched member", 3, []serverView{self, alive("n2", true), alive("n3", true),
			with(newMember("n4"), func(s *serverView) { s.Mismatch = true })}, actNone, ""},
		{"remove a dead non-voter after cleanup", 3, []serverView{self, alive("n2", true), alive("n3", true),
			dead("n4", false, cleanup, cleanup)}, actRemove, "n4@1"},
		{"not before cleanup", 3, []serverView{self, alive("n2", true), alive("n3", true),
			dead("n4", false, cleanup/2, cleanup)}, actNone, ""},
		{"not while raft still reaches it", 3, []serverView{self, alive("n2", true), alive("n3", true),
			dead("n4", false, cleanup, 0)}, actNone, ""},
		{"remove a stale incarnation (non-voter)", 3, []serverView{self, alive("n2", true), alive("n3", true),
			with(alive("n4", false), func(s *serverView) { s.Stale = true })}, actRemove, "n4@1"},
		{"demote a stale incarnation (voter)", 3, []serverView{self, alive("n2", true), alive("n4", true),
			with(alive("n3", true), func(s *serverView) { s.Stale = true })}, actDemote, "n3@1"},
		{"surplus voters: demote the highest id", 3, []serverView{self, alive("n2", true), alive("n3", true), alive("n4", true)}, actDemote, "n4@1"},
		{"address change", 3, []serverView{self, alive("n2", true),
			with(alive("n3", true), func(s *serverView) { s.NewAddr = "b/n3" })}, actUpdateAddr, "n3@1"},
		{"R=-1 promotes every eligible node", -1, []serverView{self, alive("n2", true), alive("n3", false)}, actPromote, "n3@1"},
		{"R=-1 demotes a failed voter", -1, []serverView{self, alive("n2", true), alive("n3", true),
			dead("n4", true, stab, stab)}, actDemote, "n4@1"},
		{"never the leader itself", 1, []serverView{
			with(self, func(s *serverView) { s.Mismatch = true }), alive("n2", true)}, actDemote, "n2@1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := nextAction(reconcileInput{
				Self: "n1@1", Target: tt.target, Stabilization: stab, DeadCleanup: cleanup, LeftGrace: left, Servers: tt.servers,
			})
			if got.kind != tt.want || got.id != tt.wantID {
				t.Fatalf("nextAction = %v %q (%s), want %v %q", got.kind, got.id, got.reason, tt.want, tt.wantID)
			}
		})
	}
}
