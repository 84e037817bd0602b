// Package chart draws the time series of a load-test result (throughput,
// latency percentiles) with gonum/plot, as PNG or SVG. It is the
// bench.ChartFunc that bench/baselines registers in tokencache-bench.
package chart

import (
	"errors"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	_ "gonum.org/v1/plot/vg/vgimg" // registers png
	_ "gonum.org/v1/plot/vg/vgsvg" // registers svg

	"github.com/tokencache/tokencache/bench"
)

// Write draws the time series of r into path: throughput on top,
// latency percentiles (p50, p99, p99.9, log scale) below, one point per
// interval. The format follows the extension: .png or .svg.
func Write(r *bench.Result, path string) error {
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	if format != "png" && format != "svg" {
		return fmt.Errorf("cannot draw chart %s: the name must end in .png or .svg", path)
	}
	if len(r.Series) == 0 {
		return errors.New("cannot draw a chart: the result has no time series")
	}
	top, err := throughputPlot(r)
	if err != nil {
		return err
	}
	bottom, err := latencyPlot(r)
	if err != nil {
		return err
	}
	const w, h = 9 * vg.Inch, 7 * vg.Inch
	cw, err := draw.NewFormattedCanvas(w, h, format)
	if err != nil {
		return fmt.Errorf("cannot draw chart: %w", err)
	}
	dc := draw.New(cw)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(12), PadY: vg.Points(14)}
	canvases := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, dc)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("cannot create directory of %s: %w", path, err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot write chart: %w", err)
	}
	if _, err := cw.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("cannot write chart %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write chart %s: %w", path, err)
	}
	return nil
}

var (
	colThroughput = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	colP50        = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	colP99        = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	colP999       = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
)

func throughputPlot(r *bench.Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = chartTitle(r)
	p.X.Label.Text = "seconds"
	p.Y.Label.Text = "requests/s"
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	pts := make(plotter.XYs, len(r.Series))
	for i, s := range r.Series {
		pts[i] = plotter.XY{X: s.T, Y: s.Throughput}
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return nil, fmt.Errorf("cannot draw throughput: %w", err)
	}
	l.Color = colThroughput
	l.Width = vg.Points(1.5)
	p.Add(l)
	p.Legend.Add(fmt.Sprintf("throughput (mean %s/s)", bench.FormatCount(r.Throughput)), l)
	p.X.Min = 0
	top := 0.0
	for _, s := range r.Series {
		top = max(top, s.Throughput)
	}
	p.Y.Max = top * 1.3 // room for the legend
	p.Legend.Top = true
	p.Legend.Left = true
	return p, nil
}

func latencyPlot(r *bench.Result) (*plot.Plot, error) {
	p := plot.New()
	p.X.Label.Text = "seconds"
	p.Y.Label.Text = "latency (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	series := []struct {
		name string
		col  color.Color
		get  func(bench.Point) int64
		all  int64
	}{
		{"p50", colP50, func(pt bench.Point) int64 { return pt.P50 }, r.Latency.P50},
		{"p99", colP99, func(pt bench.Point) int64 { return pt.P99 }, r.Latency.P99},
		{"p99.9", colP999, func(pt bench.Point) int64 { return pt.P999 }, r.Latency.P999},
	}
	drawn := 0
	p.X.Min = 0
	var lo, hi float64
	for _, s := range series {
		var pts plotter.XYs
		for _, pt := range r.Series {
			if v := s.get(pt); v > 0 {
				pts = append(pts, plotter.XY{X: pt.T, Y: float64(v) / 1000})
			}
		}
		if len(pts) == 0 {
			continue
		}
		for _, pt := range pts {
			if lo == 0 || pt.Y < lo {
				lo = pt.Y
			}
			hi = max(hi, pt.Y)
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("cannot draw latency: %w", err)
		}
		l.Color = s.col
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (whole run %s)", s.name, bench.FormatMicros(s.all)), l)
		drawn++
	}
	if drawn == 0 { // no successful request: keep the log axis valid
		p.Y.Scale = plot.LinearScale{}
		p.Y.Tick.Marker = plot.DefaultTicks{}
	} else {
		// A decade below and a factor 8 above the data: room for the legend.
		p.Y.Min, p.Y.Max = lo/2, hi*8
	}
	p.Legend.Top = true
	p.Legend.Left = true
	return p, nil
}

func chartTitle(r *bench.Result) string {
	mode := fmt.Sprintf("closed loop, %d connections", r.Config.Connections)
	if r.Config.Mode == "open" {
		mode = fmt.Sprintf("open loop, %s req/s scheduled, up to %d in flight", bench.FormatCount(r.Config.Rate), r.Config.Workers)
	}
	return fmt.Sprintf("%s — %s (%s)", r.Name, r.Config.Mix, mode)
}

// Write is a bench.ChartFunc.
var _ bench.ChartFunc = Write
