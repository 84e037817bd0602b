package testport

import (
	"net"
	"strconv"
	"testing"
)

func TestFreeNeverRepeatsAndIsFree(t *testing.T) {
	seen := make(map[int]bool)
	for i := range 2000 {
		p := Free(t)
		if seen[p] {
			t.Fatalf("Free handed out %d twice (call %d)", p, i)
		}
		seen[p] = true
		if p < first || p >= first+count {
			t.Fatalf("Free = %d, outside %d–%d", p, first, first+count-1)
		}
		if i%200 == 0 {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				t.Fatalf("port %d from Free cannot be bound: %v", p, err)
			}
			l.Close()
		}
	}
}
