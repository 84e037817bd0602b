package bench

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
)

// Summary renders a result for people: what ran, throughput, latency
// percentiles and errors, overall and per workload.
func Summary(r *Result) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s\n  %s\n", r.Name, describe(r))
	if len(r.Target.Endpoints) > 0 {
		fmt.Fprintf(&sb, "  endpoints: %s\n", strings.Join(r.Target.Endpoints, ", "))
	}
	if r.Seeding != nil {
		fmt.Fprintf(&sb, "  seeded %s items in %.1fs (%s/s); %d hot, %d cold, %d revocable\n",
			FormatCount(float64(r.Seeding.Items)), r.Seeding.Seconds, FormatCount(r.Seeding.PerSec), r.Config.Hot, r.Config.Cold, r.Config.RevokePool)
	}
	fmt.Fprintf(&sb, "  machine: %s\n\n", machineLine(r.Machine))

	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "workload\treq/s\trequests\terrors\tp50\tp90\tp99\tp99.9\tmax\t\n")
	row := func(name string, thr float64, reqs, errs int64, l Latency) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t\n", name, FormatCount(thr), reqs, errs,
			FormatMicros(l.P50), FormatMicros(l.P90), FormatMicros(l.P99), FormatMicros(l.P999), FormatMicros(l.Max))
	}
	for _, w := range Workloads {
		if wr := r.Workloads[w]; wr != nil && len(r.Workloads) > 1 {
			row(string(w), wr.Throughput, wr.Requests, wr.Errors, wr.Latency)
		}
	}
	row("all", r.Throughput, r.Requests, r.Errors, r.Latency)
	if r.ServiceTime != nil {
		st := *r.ServiceTime
		fmt.Fprintf(tw, "service time (from the actual send)\t\t\t\t%s\t%s\t%s\t%s\t%s\t\n",
			FormatMicros(st.P50), FormatMicros(st.P90), FormatMicros(st.P99), FormatMicros(st.P999), FormatMicros(st.Max))
	}
	tw.Flush()
	if len(r.ErrorsByKind) > 0 {
		kinds := make([]string, 0, len(r.ErrorsByKind))
		for k, n := range r.ErrorsByKind {
			kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
		}
		slices.Sort(kinds)
		fmt.Fprintf(&sb, "\nerrors by kind: %s\n", strings.Join(kinds, " "))
	}
	return sb.String()
}
