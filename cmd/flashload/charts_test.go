package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestWriteCharts draws the charts of a made-up bench and checks each is
// an SVG with its title, and that the markdown embeds them.
func TestWriteCharts(t *testing.T) {
	runs := benchRuns{}
	modes := []string{"direct", "sync", "queue"}
	for i, m := range modes {
		runs[m] = map[string]Summary{}
		for j, tr := range []string{"grpc", "rest"} {
			rush := Summary{RPS: float64(1000 * (i + 1) * (2 - j)), Ops: []OpSummary{{Op: opOrder, LatencyMS: Latency{P50: 2, P90: 5, P99: 9}}}}
			runs[m]["rush-"+tr] = rush
			wb := Summary{Timeline: []TimePoint{{0, 0}, {1, 500 * (i + 1)}, {2, 900 * (i + 1)}}}
			wb.Verify.PersistedPerSe = float64(450 * (i + 1))
			runs[m]["write-bound-"+tr] = wb
		}
	}
	dir := t.TempDir()
	if d := os.Getenv("CHARTS_DIR"); d != "" {
		dir = d
	}
	written, err := writeCharts(dir, modes, runs)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{chartRush, chartLatency, chartWriteBound}
	if !slices.Equal(written, want) {
		t.Fatalf("wrote %v, want %v", written, want)
	}
	for f, title := range map[string]string{
		chartRush: "Rush: decisions per second", chartLatency: "Rush: latency percentiles", chartWriteBound: "orders persisted over time",
	} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if s := string(b); !strings.Contains(s, "<svg") || !strings.Contains(s, title) {
			t.Errorf("%s is not an SVG titled %q", f, title)
		}
	}
}
