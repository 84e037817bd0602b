package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
)

// The harness has two extension points, filled by bench/baselines (a
// module of its own, built into tokencache-bench): kinds of targets that
// need another system's client, and the chart, which needs a plotting
// library. The daemon links this package alone, so `tokencache bench`
// drives tokencache and the bare HTTP baseline, and refuses the rest with
// a pointer to tokencache-bench.

// TargetKind is a kind of target added with RegisterTarget.
type TargetKind struct {
	// Name is the kind in results and errors ("redis").
	Name string
	// Usage is how a --target of this kind is written ("redis://host:port").
	Usage string
	// Match reports whether a --target value is of this kind.
	Match func(target string) bool
	// Open connects to (or starts) the target; see Open.
	Open func(ctx context.Context, c *Config, target string) (Target, error)
	// ValueSize is true when the target stores values of Config.ValueSize
	// bytes; results then record the size.
	ValueSize bool
}

// ChartFunc draws the time series of r into path; the format follows the
// extension, .png or .svg (checked before it is called).
type ChartFunc func(r *Result, path string) error

var registry struct {
	mu    sync.RWMutex
	kinds []TargetKind
	chart ChartFunc
}

// RegisterTarget adds a kind of target. A kind whose Name is taken
// replaces the earlier one. It is safe for concurrent use; a program
// registers its kinds before it builds the command.
func RegisterTarget(k TargetKind) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	for i, old := range registry.kinds {
		if old.Name == k.Name {
			registry.kinds[i] = k
			return
		}
	}
	registry.kinds = append(registry.kinds, k)
}

// RegisterChart sets the function WriteChart draws with. It is safe for
// concurrent use.
func RegisterChart(f ChartFunc) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	registry.chart = f
}

// lookupTarget returns the registered kind that matches a --target value.
func lookupTarget(target string) (TargetKind, bool) {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	for _, k := range registry.kinds {
		if k.Match(target) {
			return k, true
		}
	}
	return TargetKind{}, false
}

// registeredKind returns the registered kind named name.
func registeredKind(name string) (TargetKind, bool) {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	for _, k := range registry.kinds {
		if k.Name == name {
			return k, true
		}
	}
	return TargetKind{}, false
}

// targetUsage lists the --target forms this binary accepts.
func targetUsage() string {
	forms := []string{"http://host:port", KindBaselineHTTP}
	registry.mu.RLock()
	for _, k := range registry.kinds {
		forms = append(forms, k.Usage)
	}
	n := len(registry.kinds)
	registry.mu.RUnlock()
	s := strings.Join(forms, ", ")
	if n == 0 {
		s += "; " + baselinesHint
	}
	return s
}

// baselinesHint says where the baselines and charts are when this binary
// has none registered.
const baselinesHint = "redis://, etcd://, mysql://, raft-bare and charts are in tokencache-bench: make bench-tools"

// chartFormat checks the extension of a chart file name.
func chartFormat(path string) error {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".png", ".svg":
		return nil
	}
	return fmt.Errorf("cannot draw chart %s: the name must end in .png or .svg", path)
}

// CanChart reports whether this binary draws charts (a ChartFunc is
// registered).
func CanChart() bool {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	return registry.chart != nil
}

// checkChart refuses a chart file name before a run rather than after it:
// a wrong extension, or a binary that draws no charts.
func checkChart(path string) error {
	if path == "" {
		return nil
	}
	if err := chartFormat(path); err != nil {
		return err
	}
	if !CanChart() {
		return fmt.Errorf("cannot draw chart %s: %w", path, ErrNoChart)
	}
	return nil
}

// WriteChart draws the time series of r into path (.png or .svg) with the
// registered ChartFunc: throughput on top, latency percentiles below.
// Without one it returns ErrNoChart.
func WriteChart(r *Result, path string) error {
	if err := chartFormat(path); err != nil {
		return err
	}
	registry.mu.RLock()
	f := registry.chart
	registry.mu.RUnlock()
	if f == nil {
		return fmt.Errorf("cannot draw chart %s: %w", path, ErrNoChart)
	}
	return f(r, path)
}
