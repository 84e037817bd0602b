package jwt

import (
	"sync"
	"testing"
)

// A verified-cache hit allocates nothing.
func TestParseCachedAllocatesNothing(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			c, clk := newTestCodec(t, alg)
			raw := []byte(mustEncode(t, c, newRecord(clk.Now())))
			mustParse(t, c, string(raw))
			n := testing.AllocsPerRun(1000, func() {
				if _, err := c.Parse(raw); err != nil {
					t.Fatal(err)
				}
			})
			if n != 0 {
				t.Errorf("Parse(cached) allocates %v times per call, want 0", n)
			}
		})
	}
}

// SetKeys racing with first validations never leaves an entry of a
// removed key behind.
func TestSetKeysRacingParse(t *testing.T) {
	clk := newTestClock()
	a, b := mustGen(t, AlgHS256), mustGen(t, AlgHS256)
	c := mustCodec(t, clk, mustSet(t, a.ID(), a, b))
	var texts []string
	for i := 0; i < 200; i++ {
		texts = append(texts, mustEncode(t, c, newRecord(clk.Now())))
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, s := range texts {
			c.Parse([]byte(s))
		}
	}()
	c.SetKeys(mustSet(t, b.ID(), b))
	wg.Wait()
	for _, s := range texts {
		wantRefused(t, c, s, ErrUnknownKey)
	}
}
