package cache

import (
	"slices"
	"sort"
	"sync"

	"github.com/tokencache/tokencache/token"
)

// fifoItem is one pinned change in the fifo.
type fifoItem struct {
	index uint64
	key   token.Key
}

// fifo is the queue of pinned changes in index order. Items are appended by
// Put and Delete and removed from the front by Unpin (and, once superseded,
// by OldestPinned). It is a slice with a moving head, compacted when the
// dead prefix is at least half of it.
type fifo struct {
	mu    sync.Mutex
	items []fifoItem // items[head:] are live, sorted by index
	head  int
}

// push appends a change. Indexes arrive in order from the log; an item that
// does not (a caller breaking Put's contract) is inserted in order, so that
// the queue stays sorted.
func (f *fifo) push(index uint64, k token.Key) {
	f.mu.Lock()
	defer f.mu.Unlock()
	it := fifoItem{index: index, key: k}
	if n := len(f.items); n > f.head && f.items[n-1].index > index {
		i := f.head + f.searchLocked(index)
		f.items = slices.Insert(f.items, i, it)
		return
	}
	f.items = append(f.items, it)
}

// live returns the live items. Call with mu held.
func (f *fifo) live() []fifoItem { return f.items[f.head:] }

// searchLocked returns the position in live() of the first item with an
// index above after.
func (f *fifo) searchLocked(after uint64) int {
	live := f.live()
	return sort.Search(len(live), func(i int) bool { return live[i].index > after })
}

// popUpToLocked moves up to len(dst) front items with an index at most upTo
// into dst and returns how many it moved.
func (f *fifo) popUpToLocked(upTo uint64, dst []fifoItem) int {
	n := 0
	for n < len(dst) && f.head < len(f.items) && f.items[f.head].index <= upTo {
		dst[n] = f.items[f.head]
		n++
		f.popFrontLocked()
	}
	return n
}

// popFrontLocked drops the front item.
func (f *fifo) popFrontLocked() {
	f.items[f.head] = fifoItem{}
	f.head++
	switch live := len(f.items) - f.head; {
	case live == 0:
		f.items, f.head = f.items[:0], 0
		if cap(f.items) > 4096 {
			f.items = nil // let a burst's backing array go
		}
	case f.head >= 1024 && f.head >= live:
		if cap(f.items) > 4096 && live*4 < cap(f.items) {
			f.items = append(make([]fifoItem, 0, 2*live), f.items[f.head:]...)
		} else {
			f.items = f.items[:copy(f.items, f.items[f.head:])]
		}
		f.head = 0
	}
}

// clearLocked drops every item.
func (f *fifo) clearLocked() { f.items, f.head = nil, 0 }
