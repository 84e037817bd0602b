package cache

import "testing"

func TestFifo(t *testing.T) {
	var f fifo
	const n = 5000
	for i := 1; i <= n; i++ {
		f.push(uint64(2*i), keyN(i))
	}
	f.push(3, keyN(0)) // out of order: inserted in place
	f.mu.Lock()
	defer f.mu.Unlock()
	live := f.live()
	for i := 1; i < len(live); i++ {
		if live[i-1].index > live[i].index {
			t.Fatalf("fifo not sorted at %d: %d > %d", i, live[i-1].index, live[i].index)
		}
	}
	if live[1].index != 3 || live[1].key != keyN(0) {
		t.Errorf("live()[1] = %+v, want index 3 of the out-of-order push", live[1])
	}
	if got := f.searchLocked(3); got != 2 {
		t.Errorf("searchLocked(3) = %d, want 2", got)
	}

	var buf [unpinBatch]fifoItem
	popped := 0
	for {
		m := f.popUpToLocked(uint64(n), buf[:]) // the first half
		popped += m
		if m < len(buf) {
			break
		}
	}
	if popped != n/2+1 {
		t.Errorf("popped %d items up to %d, want %d", popped, n, n/2+1)
	}
	if f.head >= 1024 && f.head >= len(f.live()) {
		t.Errorf("fifo not compacted: head %d, %d live", f.head, len(f.live()))
	}
	if first := f.live()[0].index; first != n+2 {
		t.Errorf("first live index = %d, want %d", first, n+2)
	}
	for len(f.live()) > 0 {
		f.popFrontLocked()
	}
	if cap(f.items) > 4096 || f.head != 0 {
		t.Errorf("empty fifo keeps a backing array of %d items (head %d), want at most 4096", cap(f.items), f.head)
	}
}
