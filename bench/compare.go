package bench

import (
	"fmt"
	"strings"
	"text/tabwriter"
)

// Compare renders two results side by side: throughput and latency
// percentiles of A and B and the ratio B/A, for the whole run and for each
// workload the two share. A ratio above 1 means B is higher: better for
// throughput, worse for latency and errors.
func Compare(a, b *Result) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "A: %s\n   %s\n", a.Name, describe(a))
	fmt.Fprintf(&sb, "B: %s\n   %s\n", b.Name, describe(b))
	if a.Machine != b.Machine {
		fmt.Fprintf(&sb, "note: the runs come from different machines or Go versions (A: %s; B: %s)\n", machineLine(a.Machine), machineLine(b.Machine))
	}
	sb.WriteByte('\n')
	writeCompareTable(&sb, "all requests", a.Throughput, b.Throughput, a.Requests, b.Requests, a.Errors, b.Errors, a.Latency, b.Latency)
	for _, w := range Workloads {
		wa, wb := a.Workloads[w], b.Workloads[w]
		if wa == nil || wb == nil || (len(a.Workloads) == 1 && len(b.Workloads) == 1) {
			continue
		}
		sb.WriteByte('\n')
		writeCompareTable(&sb, string(w), wa.Throughput, wb.Throughput, wa.Requests, wb.Requests, wa.Errors, wb.Errors, wa.Latency, wb.Latency)
	}
	return sb.String()
}

// describe is the one-line summary of a run's target and load.
func describe(r *Result) string {
	t := r.Target.Kind
	if r.Target.Nodes > 1 {
		t += fmt.Sprintf(" (%d nodes)", r.Target.Nodes)
	}
	if r.Target.Version != "" {
		t += " " + r.Target.Version
	}
	load := fmt.Sprintf("closed loop, %d connections", r.Config.Connections)
	if r.Config.Mode == "open" {
		load = fmt.Sprintf("open loop, %s req/s, up to %d in flight", FormatCount(r.Config.Rate), r.Config.Workers)
	}
	if r.Config.Pipeline > 1 {
		load += fmt.Sprintf(", pipeline %d", r.Config.Pipeline)
	}
	return fmt.Sprintf("%s; %s; %s; %s measured", t, r.Config.Mix, load, r.Config.Duration)
}

func machineLine(m MachineInfo) string {
	return fmt.Sprintf("%s/%s %s, %d CPUs, GOMAXPROCS %d", m.GOOS, m.GOARCH, m.GoVersion, m.NumCPU, m.GOMAXPROCS)
}

func writeCompareTable(sb *strings.Builder, title string, ta, tb float64, ra, rb, ea, eb int64, la, lb Latency) {
	var buf strings.Builder
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
	// Labels padded to a fixed width read left-aligned in right-aligned cells.
	const label = "%-18s"
	fmt.Fprintf(tw, label+"\tA\tB\tB/A\t\n", title)
	fmt.Fprintf(tw, label+"\t%s\t%s\t%s\t\n", "throughput (req/s)", FormatCount(ta), FormatCount(tb), ratio(ta, tb))
	lat := []struct {
		name string
		a, b int64
	}{
		{"p50", la.P50, lb.P50}, {"p90", la.P90, lb.P90}, {"p99", la.P99, lb.P99},
		{"p99.9", la.P999, lb.P999}, {"max", la.Max, lb.Max},
	}
	for _, l := range lat {
		fmt.Fprintf(tw, label+"\t%s\t%s\t%s\t\n", l.name, FormatMicros(l.a), FormatMicros(l.b), ratio(float64(l.a), float64(l.b)))
	}
	fmt.Fprintf(tw, label+"\t%s\t%s\t\t\n", "errors", errorCell(ea, ra), errorCell(eb, rb))
	tw.Flush()
	sb.WriteString(trimLines(buf.String()))
}

// trimLines removes the trailing blanks tabwriter leaves on each line.
func trimLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// ratio renders b/a, or "-" when a is zero.
func ratio(a, b float64) string {
	if a == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", b/a)
}

func errorCell(errs, reqs int64) string {
	if reqs == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%.2f%%)", errs, 100*float64(errs)/float64(reqs))
}
