package e2e

import (
	"net"
	"strconv"
	"testing"
)

// Every port a test hands its processes is one no other node of the test
// got: a port reused for two nodes (one's HTTP, another's gossip) kept the
// second from starting ("address already in use"), and the cluster never
// formed. 1,000 ports are far more than any test asks for.
func TestFreePortsAreDistinct(t *testing.T) {
	seen := make(map[int]bool)
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for i := range 1000 {
		p := freePort(t)
		if seen[p] {
			t.Fatalf("freePort handed out %d twice (call %d)", p, i)
		}
		seen[p] = true
		if i%100 == 0 { // some are bound, as a node would bind them
			if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); err == nil {
				held = append(held, l)
			}
		}
	}
}
