package bench

import (
	"strings"
	"testing"
)

func TestParseMix(t *testing.T) {
	tests := []struct {
		in      string
		want    string // canonical form
		weights map[Workload]int
	}{
		{"validate", "validate", map[Workload]int{Validate: 1}},
		{"validate=90,revoke=5,issue=5", "validate=90,issue=5,revoke=5", map[Workload]int{Validate: 90, Issue: 5, Revoke: 5}},
		{" validate = 3 , unknown ", "validate=3,unknown=1", map[Workload]int{Validate: 3, Unknown: 1}},
		{"validate=1,issue=0", "validate", map[Workload]int{Validate: 1}},
		{"authz=2,introspect=2,validate-miss=1,", "validate-miss=1,introspect=2,authz=2", map[Workload]int{ValidateMiss: 1, Introspect: 2, Authz: 2}},
		{"issue-jwt=1,validate-jwt=3,validate=3", "validate=3,validate-jwt=3,issue-jwt=1", map[Workload]int{Validate: 3, ValidateJWT: 3, IssueJWT: 1}},
	}
	for _, tt := range tests {
		m, err := ParseMix(tt.in)
		if err != nil {
			t.Errorf("ParseMix(%q) error = %v", tt.in, err)
			continue
		}
		if got := m.String(); got != tt.want {
			t.Errorf("ParseMix(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
		for w, n := range tt.weights {
			if got := m.Weight(w); got != n {
				t.Errorf("ParseMix(%q).Weight(%s) = %d, want %d", tt.in, w, got, n)
			}
		}
		if again, err := ParseMix(m.String()); err != nil || again.String() != m.String() {
			t.Errorf("ParseMix(%q) = %v, %v: the canonical form does not round-trip", m.String(), again, err)
		}
	}
}

func TestParseMixBadInput(t *testing.T) {
	tests := []struct {
		in   string
		want []string // every one must appear in the error
	}{
		{"", []string{"no workload with a positive weight"}},
		{"validate=0", []string{"no workload with a positive weight"}},
		{"valdate=90", []string{`unknown workload "valdate"`}},
		{"validate=-1", []string{"weight of validate must be a non-negative integer"}},
		{"validate=x", []string{"weight of validate"}},
		{"validate=1.5", []string{"weight of validate"}},
		{"validate=1,validate=2", []string{"validate appears twice"}},
		{"foo=1,issue=bar", []string{`unknown workload "foo"`, "weight of issue"}}, // every problem
	}
	for _, tt := range tests {
		_, err := ParseMix(tt.in)
		if err == nil {
			t.Errorf("ParseMix(%q) error = nil, want one", tt.in)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("ParseMix(%q) error = %q, want it to mention %q", tt.in, err, w)
			}
		}
	}
}

func TestMixPick(t *testing.T) {
	m := MustParseMix("validate=90,issue=5,revoke=5")
	counts := map[Workload]int{}
	// Every residue of the total weight once: each workload exactly its weight.
	for r := range uint64(100) {
		counts[m.Pick(r+1_000_000)]++
	}
	for w, n := range map[Workload]int{Validate: 90, Issue: 5, Revoke: 5} {
		if counts[w] != n {
			t.Errorf("Pick over one period: %s chosen %d times, want %d", w, counts[w], n)
		}
	}
}

func TestMixTextRoundTrip(t *testing.T) {
	var m Mix
	if err := m.UnmarshalText([]byte("issue=2,validate=8")); err != nil {
		t.Fatalf("UnmarshalText error = %v", err)
	}
	b, _ := m.MarshalText()
	if string(b) != "validate=8,issue=2" {
		t.Errorf("MarshalText = %q, want %q", b, "validate=8,issue=2")
	}
	if err := m.UnmarshalText([]byte("nope")); err == nil {
		t.Error("UnmarshalText(nope) error = nil, want one")
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Targets = []string{"baseline-http"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(default + baseline-http) = %v, want nil", err)
	}
	bad := DefaultConfig()
	bad.Connections, bad.Duration, bad.Pipeline = 0, 0, 0
	bad.Targets = []string{"ftp://x", "baseline-http"}
	bad.Mix = MustParseMix("validate-miss")
	bad.Hot = bad.Tokens
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate(bad) = nil, want every problem")
	}
	for _, want := range []string{"connections must be at least 1", "duration must be positive", "pipeline must be at least 1",
		`unknown target "ftp://x"`, "only tokencache URLs can be combined", "validate-miss needs cold tokens"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(bad) = %q, want it to mention %q", err, want)
		}
	}
}
