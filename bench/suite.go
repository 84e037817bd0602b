package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// SuiteSchemaVersion identifies the layout of a SuiteResult in JSON.
const SuiteSchemaVersion = "tokencache-bench-suite/v1"

// SuiteResult is the outcome of `bench suite standard` or `bench suite
// compare`: every run, and for compare the table of medians.
type SuiteResult struct {
	Schema  string      `json:"schema"`
	Kind    string      `json:"kind"` // "standard" or "compare"
	Started time.Time   `json:"started"`
	Machine MachineInfo `json:"machine"`
	Rounds  int         `json:"rounds,omitempty"`
	Runs    []*Result   `json:"runs"`
	Table   []MedianRow `json:"table,omitempty"`
	Skipped []string    `json:"skipped,omitempty"`
}

// MedianRow is one line of the compare table: the medians over the rounds
// of one side of one case, and its ratios to the case's first side.
type MedianRow struct {
	Case       string  `json:"case"`
	Side       string  `json:"side"`
	Rounds     int     `json:"rounds"`
	Throughput float64 `json:"throughput"`
	P50        int64   `json:"p50_us"`
	P99        int64   `json:"p99_us"`
	Errors     int64   `json:"errors"`
	// ThroughputRatio and P99Ratio are this side's median divided by the
	// first side's (tokencache); 0 for the first side itself.
	ThroughputRatio float64 `json:"throughput_ratio"`
	P99Ratio        float64 `json:"p99_ratio"`
}

// WriteFile writes s as indented JSON to path.
func (s *SuiteResult) WriteFile(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode suite result: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("cannot create directory of %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write suite result: %w", err)
	}
	return nil
}

// ReadResults reads a Result or a SuiteResult file and returns its runs.
func ReadResults(path string) ([]*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read result: %w", err)
	}
	var head struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("cannot parse result %s: %w", path, err)
	}
	switch head.Schema {
	case SchemaVersion:
		r, err := ReadResult(path)
		if err != nil {
			return nil, err
		}
		return []*Result{r}, nil
	case SuiteSchemaVersion:
		var s SuiteResult
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("cannot parse suite result %s: %w", path, err)
		}
		return s.Runs, nil
	}
	return nil, fmt.Errorf("cannot read result %s: schema %q, want %q or %q", path, head.Schema, SchemaVersion, SuiteSchemaVersion)
}

// SuiteOptions configures the standard suite and RunCompare (the
// baselines of the compare suite are bench/baselines' own options).
type SuiteOptions struct {
	// Targets are tokencache URLs to drive instead of spawned nodes
	// (standard suite only).
	Targets    []string
	AdminToken string
	Binary     string
	Warmup     time.Duration
	Duration   time.Duration
	// Rounds of the compare suite (A B A B …).
	Rounds int
	// Tokens, Hot and RevokePool size the standard suite's population
	// (0 = SuiteTokens, SuiteHot, 20000).
	Tokens, Hot, RevokePool int
	// Cases selects compare cases by name (validate, unknown, validate-miss, issue,
	// issue-single); empty runs them all.
	Cases []string
	// BaselineArgs start this executable's baseline server (Config.BaselineArgs).
	BaselineArgs []string
	// ChartsDir, when set, receives a chart per run.
	ChartsDir string
	Progress  io.Writer
	Log       io.Writer // one line per run
}
