package clustertest

import "testing"

// Partition cuts every link between the groups in both directions and none
// inside a group; Cut cuts one direction; addresses resolve to their node;
// Heal and healNode restore links.
func TestNetCuts(t *testing.T) {
	n := newNet()
	n.register("127.0.0.1:7001", "n1")
	n.Partition([]string{"n1"}, []string{"n2", "n3"})
	for _, c := range []struct {
		from, to string
		want     bool
	}{
		{"n1", "n2", true}, {"n2", "n1", true}, {"n1", "n3", true}, {"n3", "n1", true},
		{"n2", "n3", false}, {"n3", "n2", false},
		{"n2", "127.0.0.1:7001", true}, {"n2", "127.0.0.1:7002", false},
	} {
		if got := n.Blocked(c.from, c.to); got != c.want {
			t.Errorf("after Partition, Blocked(%s, %s) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
	n.healNode("n1", []string{"n1", "n2"})
	if n.Blocked("n1", "n2") || n.Blocked("n2", "n1") || !n.Blocked("n1", "n3") {
		t.Errorf("healNode(n1, [n1 n2]) restored n1-n2 = %v, kept n1-n3 = %v; want true, true",
			!n.Blocked("n1", "n2") && !n.Blocked("n2", "n1"), n.Blocked("n1", "n3"))
	}
	n.Heal()
	n.Cut("n2", "n3")
	if !n.Blocked("n2", "n3") || n.Blocked("n3", "n2") {
		t.Errorf("Cut(n2, n3): Blocked(n2, n3) = %v, Blocked(n3, n2) = %v; want true, false", n.Blocked("n2", "n3"), n.Blocked("n3", "n2"))
	}
	var got []string
	n.SetTap(func(from, to string, p []byte) { got = append(got, from+">"+to+":"+string(p)) })
	n.Sent("n2", "127.0.0.1:7001", []byte("x"))
	if len(got) != 1 || got[0] != "n2>n1:x" {
		t.Errorf("tap saw %q, want [n2>n1:x]", got)
	}
}
