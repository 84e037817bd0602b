package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// SchemaVersion identifies the layout of a Result in JSON. A change that
// renames or removes a field, or changes a unit, gets a new version;
// ReadResult refuses other versions.
const SchemaVersion = "tokencache-bench/v1"

// Result is the outcome of one run, as written by --out. Latencies are in
// microseconds; throughputs in requests per second.
type Result struct {
	Schema  string      `json:"schema"`
	Name    string      `json:"name"`
	Started time.Time   `json:"started"`
	Target  TargetInfo  `json:"target"`
	Config  RunConfig   `json:"config"`
	Machine MachineInfo `json:"machine"`

	// Seconds is the measured duration (warm-up excluded).
	Seconds float64 `json:"seconds"`
	// Requests started in the measured window, answered or failed.
	Requests int64 `json:"requests"`
	// Throughput is successful requests per second.
	Throughput float64 `json:"throughput"`
	// Errors is the number of failed requests; ErrorsByKind splits it.
	Errors       int64               `json:"errors"`
	ErrorsByKind map[ErrorKind]int64 `json:"errors_by_kind,omitempty"`
	// Latency of successful requests: from the intended send time in the
	// open loop (corrected for coordinated omission), from the send
	// otherwise.
	Latency Latency `json:"latency"`
	// ServiceTime (open loop only) is measured from the actual send: the
	// difference to Latency is the time requests waited for a free
	// connection because the target was slower than the schedule.
	ServiceTime *Latency `json:"service_time,omitempty"`
	// Workloads holds the same figures per workload.
	Workloads map[Workload]*WorkloadResult `json:"workloads"`
	// Series is one point per Config.Interval of the measured window.
	Series []Point `json:"series"`
	// Histogram is the latency histogram of every successful request
	// (HdrHistogram V2 compressed, base64; DecodeHistogram).
	Histogram string `json:"histogram,omitempty"`
	// TargetCounters is how much the target's own counters grew during the
	// measured window (tokencache: cache_hits, cache_misses,
	// cache_negative_hits, cache_filter_rejects, cache_evictions, summed
	// over the nodes, scraped from /metrics), when the target has them.
	TargetCounters map[string]float64 `json:"target_counters,omitempty"`
	// Seeding is how long creating the token population took.
	Seeding *SeedInfo `json:"seeding,omitempty"`
}

// Check reports what makes r implausible as a measured run: no throughput,
// requests or latencies; percentiles out of order or zero; no time series,
// or one whose request counts do not add up to Requests. Nil when none.
func (r *Result) Check() error {
	var errs []error
	l := r.Latency
	if r.Throughput <= 0 || r.Requests <= 0 || l.Count <= 0 {
		errs = append(errs, fmt.Errorf("%s: throughput %v, requests %d, latencies %d: want all > 0", r.Name, r.Throughput, r.Requests, l.Count))
	}
	if !(0 < l.Min && l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		errs = append(errs, fmt.Errorf("%s: latency %+v, want 0 < min ≤ p50 ≤ p90 ≤ p99 ≤ p99.9 ≤ max", r.Name, l))
	}
	if len(r.Series) == 0 {
		errs = append(errs, fmt.Errorf("%s: no time series", r.Name))
	}
	var sum int64
	for _, p := range r.Series {
		sum += p.Requests
	}
	if sum != r.Requests {
		errs = append(errs, fmt.Errorf("%s: the series counts %d requests, the result %d", r.Name, sum, r.Requests))
	}
	return errors.Join(errs...)
}

// WorkloadResult is the part of a Result for one workload.
type WorkloadResult struct {
	Requests     int64               `json:"requests"`
	Throughput   float64             `json:"throughput"`
	Errors       int64               `json:"errors"`
	ErrorsByKind map[ErrorKind]int64 `json:"errors_by_kind,omitempty"`
	Latency      Latency             `json:"latency"`
	ServiceTime  *Latency            `json:"service_time,omitempty"`
}

// Point is one interval of the time series.
type Point struct {
	// T is the end of the interval in seconds since the measured start.
	T          float64 `json:"t"`
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	Throughput float64 `json:"throughput"`
	P50        int64   `json:"p50_us"`
	P99        int64   `json:"p99_us"`
	P999       int64   `json:"p999_us"`
	Max        int64   `json:"max_us"`
}

// SeedInfo describes the seeding of the population.
type SeedInfo struct {
	Items   int     `json:"items"`
	Seconds float64 `json:"seconds"`
	PerSec  float64 `json:"per_second"`
}

// RunConfig is the part of Config recorded in a Result.
type RunConfig struct {
	Mix         string  `json:"mix"`
	Mode        string  `json:"mode"` // "closed" or "open"
	Connections int     `json:"connections"`
	Pipeline    int     `json:"pipeline"`
	Workers     int     `json:"workers"`
	Rate        float64 `json:"rate,omitempty"`
	Warmup      string  `json:"warmup"`
	Duration    string  `json:"duration"`
	Timeout     string  `json:"timeout"`
	Tokens      int     `json:"tokens"`
	Hot         int     `json:"hot"`
	Cold        int     `json:"cold"`
	RevokePool  int     `json:"revoke_pool"`
	ValueSize   int     `json:"value_size,omitempty"`
	CacheCap    int     `json:"cache_capacity,omitempty"`
}

// MachineInfo describes where the load generator ran (no host name).
type MachineInfo struct {
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	GoVersion  string `json:"go_version"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	// CPUModel is the first "model name" of /proc/cpuinfo, when readable.
	CPUModel string `json:"cpu_model,omitempty"`
}

// currentMachine describes this machine.
func currentMachine() MachineInfo {
	return MachineInfo{
		GOOS:       runtime.GOOS,
		GOARCH:     runtime.GOARCH,
		GoVersion:  runtime.Version(),
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		CPUModel:   cpuModel(),
	}
}

// WriteFile writes r as indented JSON to path (creating its directory),
// through a temp file and a rename.
func (r *Result) WriteFile(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode result: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("cannot create directory of %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write result: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot write result: %w", err)
	}
	return nil
}

// ReadResult reads a result written by WriteFile.
func ReadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read result: %w", err)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("cannot parse result %s: %w", path, err)
	}
	if r.Schema != SchemaVersion {
		return nil, fmt.Errorf("cannot read result %s: schema %q, want %q", path, r.Schema, SchemaVersion)
	}
	return &r, nil
}
