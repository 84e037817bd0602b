package lincheck

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Families shown: the test log lists the operations of the first few
// illegal families, the visualization up to maxShown.
const (
	maxListed = 3
	maxShown  = 20
)

// Verdict is the outcome of a check.
type Verdict struct {
	Result porcupine.CheckResult // Ok, Illegal, or Unknown (the check timed out)
	// Illegal lists the families with no linearization, and History the
	// operations of the first three in call order, one per line, for the
	// test log.
	Illegal []int
	History string
	// Visualization is the HTML file porcupine wrote for the illegal
	// families (empty when none was written).
	Visualization string
}

// Check checks the recorded history against Model, each family with the
// given timeout. When a family is illegal it writes porcupine's HTML
// visualization of (the first 20) illegal families (with the nemesis's faults as
// annotations) to dir/linearizability.html; dir is created and kept.
func Check(r *Recorder, dir string, timeout time.Duration) (Verdict, error) {
	model := Model()
	ops := r.Operations()
	v := Verdict{Result: porcupine.Ok}
	var listed, bad []porcupine.Operation
	for _, part := range partition(ops) {
		switch porcupine.CheckOperationsTimeout(model, part, timeout) {
		case porcupine.Illegal:
			v.Illegal = append(v.Illegal, part[0].Input.(Input).Family)
			if len(v.Illegal) <= maxListed {
				listed = append(listed, part...)
			}
			if len(v.Illegal) <= maxShown {
				bad = append(bad, part...)
			}
		case porcupine.Unknown:
			if v.Result == porcupine.Ok {
				v.Result = porcupine.Unknown
			}
		}
	}
	if len(v.Illegal) == 0 {
		return v, nil
	}
	v.Result = porcupine.Illegal
	v.History = describeHistory(listed)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return v, fmt.Errorf("cannot create %s: %w", dir, err)
	}
	_, info := porcupine.CheckOperationsVerbose(model, bad, timeout)
	r.mu.Lock()
	info.AddAnnotations(r.notes)
	r.mu.Unlock()
	path := filepath.Join(dir, "linearizability.html")
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		return v, fmt.Errorf("cannot write the visualization: %w", err)
	}
	v.Visualization = path
	return v, nil
}

// describeHistory lists operations in call order with times relative to the
// start of the run.
func describeHistory(ops []porcupine.Operation) string {
	sorted := append([]porcupine.Operation(nil), ops...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Call < sorted[j].Call })
	var b strings.Builder
	for _, op := range sorted {
		fmt.Fprintf(&b, "  [%9.3fs .. %9.3fs] c%-3d %s\n", secs(op.Call), secs(op.Return), op.ClientId,
			describeOperation(op.Input, op.Output))
	}
	return b.String()
}

func secs(ns int64) float64 { return float64(ns) / 1e9 }

// ArtifactsDir returns the directory a test keeps its artifacts in:
// $TMPDIR/tokencache-lin/<name>-<unix time>. It is not removed.
func ArtifactsDir(name string) string {
	name = strings.NewReplacer("/", "_", " ", "_").Replace(name)
	return filepath.Join(os.TempDir(), "tokencache-lin", fmt.Sprintf("%s-%d", name, time.Now().Unix()))
}
