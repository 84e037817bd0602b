package cluster

import (
	"math/big"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/tokencache/tokencache/internal/nodecert"
)

// The internals that the external tests (package cluster_test, which start
// in-process clusters with package clustertest) look at. Test builds only.

// Constants and functions.
const (
	LogCacheSize       = logCacheSize
	MaxAppendEntries   = maxAppendEntries
	CatchUpTimeout     = catchUpTimeout
	MaxRPCRequest      = maxRPCRequest
	MaxRPCConnsPerPeer = maxRPCConnsPerPeer
	MuxRPC             = muxRPC
	RPCForward         = rpcForward
	CodeOK             = codeOK
)

var (
	NodeOfRaftID    = nodeOfRaftID
	DeriveClusterID = deriveClusterID
	LoadIdentity    = loadIdentity
	RaftAddress     = raftAddress
	NewTLSManager   = newTLSManager
	NewTestPKI      = newTestPKI
)

// Types.
type (
	TLSManager         = tlsManager
	TestPKI            = testPKI
	ForwardRequest     = forwardRequest
	LeaveRequest       = leaveRequest
	WaitAppliedRequest = waitAppliedRequest
	Member             = member
	Proposer           = proposer
)

// Alive reports whether gossip holds m alive.
func (m member) Alive() bool { return m.status == statusAlive }

// AppliedAtLeast, CommitKnown and NoteCommit are the proposer's
// applied-index bookkeeping (propose.go).
func (p *proposer) AppliedAtLeast(target uint64) bool { return p.appliedAtLeast(target) }
func (p *proposer) CommitKnown() uint64               { return p.commitKnown() }
func (p *proposer) NoteCommit(index uint64)           { p.noteCommit(index) }

// NodeTLS, Write and CA give the external tests the development CA
// (security_unit_test.go).
func (p *testPKI) NodeTLS(node, certID string, validity time.Duration) TLSConfig {
	return p.node(node, certID, validity)
}
func (p *testPKI) Write(name string, b []byte) string { return p.write(name, b) }
func (p *testPKI) CA() nodecert.Files                 { return p.ca }

// The node's parts.
func (n *Node) Raft() *raft.Raft                        { return n.raft }
func (n *Node) RaftAdv() string                         { return n.raftAdv }
func (n *Node) RaftDir() string                         { return n.raftDir() }
func (n *Node) RaftLogs() raft.LogStore                 { return n.stores.logs }
func (n *Node) Transport() *raft.NetworkTransport       { return n.trans }
func (n *Node) HasRaftState() bool                      { return n.hasRaftState() }
func (n *Node) HadState() bool                          { return n.hadState }
func (n *Node) Proposer() *proposer                     { return n.proposer }
func (n *Node) FastForwarded() uint64                   { return n.fastForwarded.Load() }
func (n *Node) FSMForeign() bool                        { return n.fsm.foreign.Load() }
func (n *Node) LastSnapshotIndex() uint64               { return n.lastSnapshotIndex() }
func (n *Node) ForgetClusterID()                        { n.clusterID.Store(nil) }
func (n *Node) LearnClusterIDFromLog() bool             { return n.learnClusterIDFromLog() }
func (n *Node) ForeignState(has bool, id string) string { return n.foreignState(has, id) }
func (n *Node) HandleWaitApplied(req *waitAppliedRequest, peer string) waitAppliedResponse {
	return n.handleWaitApplied(req, peer)
}

// MuxMemberIP is what the node told its mux of the members' addresses
// (nil: nothing yet).
func (n *Node) MuxMemberIP() *func(ip string) bool { return n.mux.memberIP.Load() }

func (n *Node) HandleLeave(req *leaveRequest, peer string) leaveResponse {
	return n.handleLeave(req, peer)
}

// Gossip.
func (n *Node) Memberlist() *memberlist.Memberlist    { return n.disc.ml }
func (n *Node) GossipAdvertise() string               { return n.disc.advertise }
func (n *Node) GossipMember(id string) (member, bool) { return n.disc.member(id) }
func (n *Node) GossipSnapshot() map[string]member     { return n.disc.snapshot() }
func (n *Node) GossipKeyring() *memberlist.Keyring    { return n.disc.keyring() }

// TLS.
func (n *Node) SetTLS(m *tlsManager)                                { n.tls = m }
func (n *Node) TLSSerial() *big.Int                                 { return n.tls.cur.Load().leaf.SerialNumber }
func (n *Node) TLSClient(c net.Conn, want string) (net.Conn, error) { return n.tls.client(c, want) }

// HideFromBootstrapView makes n plan its bootstrap as if it did not see the
// members for which hide reports true (set before Start).
func (n *Node) HideFromBootstrapView(hide func(id string) bool) {
	n.bootstrapView = func(ms map[string]member) {
		for id := range ms {
			if hide(id) {
				delete(ms, id)
			}
		}
	}
}
