package token

import "unique"

// Intern returns s with its bytes shared by every other interned string of
// the same value. The decoders (Raft commands, snapshots, SQL rows) intern
// the realm and the scopes of every record they build: a cache of a million
// tokens holds a handful of distinct realms and scope sets, and otherwise
// one copy of each per token (8 and 32–48 heap bytes with the usual
// values).
//
// It uses the runtime's canonicalisation map (package unique). A value
// whose handles are all gone may be canonicalised again into a new copy
// after a garbage collection; strings already interned keep the bytes they
// point to, so the sharing degrades to one copy per value per collection,
// never to a wrong value.
func Intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}
