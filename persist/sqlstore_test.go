package persist

import (
	"errors"
	"slices"
	"testing"
)

func TestChunks(t *testing.T) {
	for _, max := range []int{1, 4, 256} {
		for n := range 1100 {
			var sizes []int
			off := 0
			err := chunks(n, max, func(o, size int) error {
				if o != off {
					t.Fatalf("chunks(%d, %d): offset %d, want %d", n, max, o, off)
				}
				off += size
				sizes = append(sizes, size)
				return nil
			})
			if err != nil || off != n {
				t.Fatalf("chunks(%d, %d) covered %d rows (%v), want %d", n, max, off, err, n)
			}
			seen := map[int]bool{}
			for i, sz := range sizes {
				if sz < 1 || sz > max || sz&(sz-1) != 0 {
					t.Fatalf("chunks(%d, %d) = %v: size %d is not a power of two up to %d", n, max, sizes, sz, max)
				}
				if i > 0 && sz > sizes[i-1] {
					t.Fatalf("chunks(%d, %d) = %v: sizes grow", n, max, sizes)
				}
				if sz < max && seen[sz] {
					t.Fatalf("chunks(%d, %d) = %v: size %d repeats", n, max, sizes, sz)
				}
				seen[sz] = true
			}
			if len(sizes) > n/max+log2(max)+1 {
				t.Fatalf("chunks(%d, %d) = %d statements, too many", n, max, len(sizes))
			}
		}
	}
	stop := errors.New("stop")
	calls := 0
	if err := chunks(10, 4, func(int, int) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("chunks with a failing fn = %v after %d calls, want the error after 1", err, calls)
	}
}

func TestPow2(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 2, 3: 2, 255: 128, 256: 256, 1000: 512, 1638: 1024} {
		if got := pow2Below(n); got != want {
			t.Errorf("pow2Below(%d) = %d, want %d", n, got, want)
		}
		if got := 1 << log2(want); got != want {
			t.Errorf("1<<log2(%d) = %d", want, got)
		}
	}
	q := buildQueries(sqliteDialect{})
	if len(q.upsert) != log2(q.putChunk)+1 || q.putChunk != putChunk {
		t.Errorf("buildQueries: %d upsert statements for chunks of %d", len(q.upsert), q.putChunk)
	}
	if !slices.IsSorted([]int{len(q.upsert[0]), len(q.upsert[1]), len(q.upsert[len(q.upsert)-1])}) {
		t.Error("buildQueries: upsert statements not ordered by size")
	}
}
