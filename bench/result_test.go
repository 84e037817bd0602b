package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampleResult is a fixed result for JSON and compare tests.
func sampleResult(name string, scale float64) *Result {
	lat := func(p50 int64) Latency {
		s := func(v int64) int64 { return int64(float64(v) * scale) }
		return Latency{Count: 1000, Min: s(40), Mean: float64(s(p50)) * 1.1, StdDev: 12.5, P50: s(p50), P90: s(p50 * 2), P99: s(p50 * 4), P999: s(p50 * 8), Max: s(p50 * 20)}
	}
	return &Result{
		Schema:  SchemaVersion,
		Name:    name,
		Started: time.Date(2026, 11, 23, 1, 2, 3, 0, time.UTC),
		Target:  TargetInfo{Kind: "tokencache", Endpoints: []string{"http://127.0.0.1:8080"}, Nodes: 1, Spawned: true, Version: "version dev"},
		Config: RunConfig{Mix: "validate=90,issue=10", Mode: "closed", Connections: 64, Pipeline: 1, Workers: 64,
			Warmup: "5s", Duration: "30s", Timeout: "10s", Tokens: 10000, Hot: 10000},
		Machine:      MachineInfo{GOOS: "linux", GOARCH: "amd64", GoVersion: "go1.26.8", NumCPU: 2, GOMAXPROCS: 2},
		Seconds:      30,
		Requests:     int64(900000 / scale),
		Throughput:   30000 / scale,
		Errors:       3,
		ErrorsByKind: map[ErrorKind]int64{KindTimeout: 1, KindStatus5xx: 2},
		Latency:      lat(800),
		Workloads: map[Workload]*WorkloadResult{
			Validate: {Requests: int64(810000 / scale), Throughput: 27000 / scale, Latency: lat(700)},
			Issue:    {Requests: int64(90000 / scale), Throughput: 3000 / scale, Errors: 3, ErrorsByKind: map[ErrorKind]int64{KindTimeout: 1, KindStatus5xx: 2}, Latency: lat(2500)},
		},
		Series:  []Point{{T: 1, Requests: 30000, Throughput: 30000, P50: 800, P99: 3200, P999: 6400, Max: 16000}},
		Seeding: &SeedInfo{Items: 10000, Seconds: 2.5, PerSec: 4000},
	}
}

func TestResultJSONRoundTrip(t *testing.T) {
	want := sampleResult("A", 1)
	path := filepath.Join(t.TempDir(), "sub", "r.json")
	if err := want.WriteFile(path); err != nil {
		t.Fatalf("WriteFile error = %v", err)
	}
	got, err := ReadResult(path)
	if err != nil {
		t.Fatalf("ReadResult error = %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadResult(WriteFile(r)) = %+v, want %+v", got, want)
	}
	// The documented field names (bench/README.md) are the JSON's.
	b, _ := os.ReadFile(path)
	for _, field := range []string{`"schema": "tokencache-bench/v1"`, `"throughput"`, `"p99_us"`, `"p999_us"`, `"errors_by_kind"`,
		`"gomaxprocs"`, `"series"`, `"workloads"`, `"validate"`, `"timeout": 1`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("result JSON lacks %s", field)
		}
	}
	if strings.Contains(string(b), "hostname") {
		t.Error("result JSON names the host")
	}
	rs, err := ReadResults(path)
	if err != nil || len(rs) != 1 || !reflect.DeepEqual(rs[0], want) {
		t.Errorf("ReadResults(single) = %v, %v, want the result", rs, err)
	}
}

func TestReadResultRefusesOtherSchema(t *testing.T) {
	r := sampleResult("A", 1)
	r.Schema = "tokencache-bench/v0"
	path := filepath.Join(t.TempDir(), "r.json")
	if err := r.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadResult(path); err == nil || !strings.Contains(err.Error(), "tokencache-bench/v1") {
		t.Errorf("ReadResult(v0) error = %v, want a schema error", err)
	}
	if _, err := ReadResults(path); err == nil {
		t.Error("ReadResults(v0) error = nil, want a schema error")
	}
}

func TestSuiteJSONRoundTrip(t *testing.T) {
	s := &SuiteResult{Schema: SuiteSchemaVersion, Kind: "compare", Rounds: 3, Runs: []*Result{sampleResult("A", 1), sampleResult("B", 2)},
		Table: []MedianRow{{Case: "validate c=64", Side: "tokencache", Rounds: 3, Throughput: 30000, P50: 800, P99: 3200}}}
	path := filepath.Join(t.TempDir(), "s.json")
	if err := s.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	rs, err := ReadResults(path)
	if err != nil {
		t.Fatalf("ReadResults(suite) error = %v", err)
	}
	if len(rs) != 2 || !reflect.DeepEqual(rs[1], s.Runs[1]) {
		t.Errorf("ReadResults(suite) = %d runs, want the 2 written", len(rs))
	}
	var back SuiteResult
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back.Table, s.Table) {
		t.Errorf("suite table round trip = %+v, %v, want %+v", back.Table, err, s.Table)
	}
}
