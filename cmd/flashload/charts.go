package main

import (
	"fmt"
	"image/color"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Chart files written next to docs/benchmarks.md and embedded in it.
const (
	chartRush       = "benchmarks-rush.svg"
	chartLatency    = "benchmarks-latency.svg"
	chartWriteBound = "benchmarks-write-bound.svg"
)

// palette: one color per series, told apart in grey too.
var palette = []color.Color{
	color.RGBA{0x0b, 0x57, 0xd0, 0xff}, // blue
	color.RGBA{0xe3, 0x74, 0x00, 0xff}, // orange
	color.RGBA{0x11, 0x63, 0x29, 0xff}, // green
	color.RGBA{0x8a, 0x2b, 0xe2, 0xff}, // violet
}

// benchRuns are a bench folder's summaries by mode, scenario and transport.
type benchRuns map[string]map[string]Summary // mode -> "scenario-transport" -> summary

func (r benchRuns) get(mode, scenario, transport string) (Summary, bool) {
	s, ok := r[mode][scenario+"-"+transport]
	return s, ok
}

// writeCharts draws the bench's charts as SVG files into dir: decisions per
// second in the rush by mode and transport, the rush's latency
// percentiles, and the write-bound scenario's persisted orders over time.
// It returns the files written, for the markdown to embed.
func writeCharts(dir string, modes []string, runs benchRuns) ([]string, error) {
	var written []string
	transports := []string{"grpc", "rest"}

	// Rush throughput: a group per mode, a bar per transport.
	p := newPlot("Rush: decisions per second", "decisions/s")
	w := vg.Points(18)
	for i, tr := range transports {
		vals := make(plotter.Values, len(modes))
		for j, m := range modes {
			if s, ok := runs.get(m, "rush", tr); ok {
				vals[j] = s.RPS
			}
		}
		if err := addBars(p, vals, w, i, len(transports), palette[i], transportName(tr)); err != nil {
			return nil, err
		}
	}
	p.NominalX(modes...)
	headroom(p)
	if err := save(p, dir, chartRush, &written); err != nil {
		return nil, err
	}

	// Rush latency: a group per mode and transport, a bar per percentile.
	p = newPlot("Rush: latency percentiles", "milliseconds")
	var groups []string
	pcts := [3]plotter.Values{}
	for _, m := range modes {
		for _, tr := range transports {
			s, ok := runs.get(m, "rush", tr)
			if !ok || len(s.Ops) == 0 {
				continue
			}
			groups = append(groups, m+" "+transportName(tr))
			l := s.Ops[0].LatencyMS
			pcts[0], pcts[1], pcts[2] = append(pcts[0], l.P50), append(pcts[1], l.P90), append(pcts[2], l.P99)
		}
	}
	if len(groups) > 0 {
		for i, name := range []string{"p50", "p90", "p99"} {
			if err := addBars(p, pcts[i], vg.Points(12), i, 3, palette[i], name); err != nil {
				return nil, err
			}
		}
		p.NominalX(groups...)
		headroom(p)
		if err := save(p, dir, chartLatency, &written); err != nil {
			return nil, err
		}
	}

	// Write-bound: orders in PostgreSQL over time, a line per mode (gRPC).
	p = newPlot("Write-bound: orders persisted over time (gRPC)", "orders in PostgreSQL")
	p.X.Label.Text = "seconds since the load began"
	lines := 0
	for i, m := range modes {
		s, ok := runs.get(m, "write-bound", "grpc")
		if !ok || len(s.Timeline) == 0 {
			continue
		}
		xys := make(plotter.XYs, len(s.Timeline))
		for j, pt := range s.Timeline {
			xys[j] = plotter.XY{X: pt.Seconds, Y: float64(pt.Persisted)}
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (%.0f persisted/s)", m, s.Verify.PersistedPerSe), l)
		lines++
	}
	if lines > 0 {
		p.Add(plotter.NewGrid())
		headroom(p)
		if err := save(p, dir, chartWriteBound, &written); err != nil {
			return nil, err
		}
	}
	return written, nil
}

func newPlot(title, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.Padding = vg.Points(6)
	p.Y.Label.Text = yLabel
	p.Y.Min = 0
	p.Y.Tick.Marker = plainTicks{}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(8)
	return p
}

// headroom raises the top of the y axis above the data, where the legend goes.
func headroom(p *plot.Plot) {
	p.Y.Max *= 1.3
}

// plainTicks are plot's default ticks labelled without trailing zeros.
type plainTicks struct{}

func (plainTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', -1, 64)
		}
	}
	return ts
}

// addBars adds one series of a grouped bar chart: bar i of n in each group.
func addBars(p *plot.Plot, vals plotter.Values, w vg.Length, i, n int, c color.Color, name string) error {
	b, err := plotter.NewBarChart(vals, w)
	if err != nil {
		return err
	}
	b.Color = c
	b.LineStyle.Width = 0
	b.Offset = w * vg.Length(2*i-n+1) / 2
	p.Add(b)
	p.Legend.Add(name, b)
	return nil
}

func save(p *plot.Plot, dir, name string, written *[]string) error {
	if err := p.Save(7*vg.Inch, 3.5*vg.Inch, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("chart %s: %w", name, err)
	}
	*written = append(*written, name)
	return nil
}

func transportName(tr string) string {
	if tr == "grpc" {
		return "gRPC"
	}
	return "REST"
}
