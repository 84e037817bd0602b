// Package testport hands tests the loopback ports they give the servers
// they start (cluster nodes, tokencache processes, gateways), where a server
// must be told its address before it binds.
//
// A port the kernel picked for 127.0.0.1:0 and that was then closed is a
// poor choice: the kernel hands it out again, to the next :0 listener (two
// nodes of one test got the same port) or as the source port of an outgoing
// connection, before the server binds it ("address already in use"). Free
// walks ports below Linux's ephemeral range (32768–60999) instead, from a
// random start per process, never hands out one twice in a process, and
// checks that TCP and UDP (gossip) are both free on it.
package testport

import (
	"math/rand/v2"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
)

const (
	first = 20000
	count = 12000 // first+count is below the ephemeral range
)

// next walks the ports Free tries, from a random start, so that two test
// processes at once rarely try the same ones.
var next = func() *atomic.Int64 {
	var p atomic.Int64
	p.Store(rand.Int64N(count))
	return &p
}()

// Free returns a port of 127.0.0.1 free for both TCP and UDP a moment ago,
// and one this process was not handed before (within 12,000 calls).
func Free(tb testing.TB) int {
	tb.Helper()
	for range 200 {
		port := int(next.Add(1))%count + first
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port
	}
	tb.Fatal("cannot find a free loopback port")
	return 0
}
