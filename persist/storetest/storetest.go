// Package storetest is the conformance suite of persist.Store: every store
// (memory, SQLite, MySQL) runs the same tests through Run, so that they
// answer alike.
//
// A store that can damage its own rows in place (a SQL store wrapped by its
// test) implements Corrupter, and Run then also checks that no damaged row
// is ever returned as a token.
package storetest

import (
	"testing"

	"github.com/tokencache/tokencache/persist"
	"github.com/tokencache/tokencache/token"
)

// Corrupter is implemented by stores that can overwrite one column of a
// stored row with a raw value, bypassing every check, to simulate a row
// damaged on disk or written by something else. column is a column of the
// tokens table; value is a string, []byte or int64.
type Corrupter interface {
	Corrupt(tb testing.TB, k token.Key, column string, value any)
}

// Run runs the suite. open must return a new, empty, open store on each
// call and close it when the test ends (tb.Cleanup); closing it twice must
// be harmless.
func Run(t *testing.T, open func(t *testing.T) persist.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s persist.Store)
	}{
		{"GetMissing", testGetMissing},
		{"RoundTrip", testRoundTrip},
		{"ReturnsCopies", testReturnsCopies},
		{"IdempotentReplay", testIdempotentReplay},
		{"OlderIndexNeverOverwrites", testOlderIndexNeverOverwrites},
		{"DeleteGuard", testDeleteGuard},
		{"TouchForwardOnly", testTouchForwardOnly},
		{"PersistedIndex", testPersistedIndex},
		{"BatchOrder", testBatchOrder},
		{"DuplicatesInBatch", testDuplicatesInBatch},
		{"InvalidBatchWritesNothing", testInvalidBatchWritesNothing},
		{"List", testList},
		{"BadLimits", testBadLimits},
		{"Children", testChildren},
		{"Named", testNamed},
		{"Orphaned", testOrphaned},
		{"Stats", testStats},
		{"Ended", testEnded},
		{"NewestPaging", testNewestPaging},
		{"Scan", testScan},
		{"Reset", testReset},
		{"UnicodeUsernames", testUnicodeUsernames},
		{"KeysDifferingInOneBitOrCase", testKeysDifferingSlightly},
		{"LargeBatch", testLargeBatch},
		{"ConcurrentReadersDuringWrites", testConcurrentReaders},
		{"CanceledContext", testCanceledContext},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
	// Whether a store can inject damage is a property of the store, so
	// the corruption tests exist only for those that can.
	if _, ok := open(t).(Corrupter); ok {
		t.Run("CorruptRows", func(t *testing.T) { testCorruptRows(t, open) })
	} else {
		t.Log("store does not implement storetest.Corrupter: corrupt-row tests not applicable")
	}
}

// t0 is a fixed, arbitrary instant; every time in the suite is relative to it.
