package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v2"
)

// Where the operator files live, from this package's directory.
const (
	dashboardFile = "../../deploy/grafana/flashsale.json"
	alertsFile    = "../../deploy/prometheus/alerts.yml"
	metricsDoc    = "../../docs/metrics.md"
)

// scrapeSeries are the series Prometheus makes for each target itself,
// which no server exports.
var scrapeSeries = []string{"up"}

// TestOperatorFilesUseExportedMetrics: every metric the Grafana dashboard
// and the alert rules query is exported by a running server (in queue
// mode, with an order placed and written, so the per-sale and per-stream
// series exist), every flashsale metric it exports is described in
// docs/metrics.md, and the dashboard has its row per concern.
func TestOperatorFilesUseExportedMetrics(t *testing.T) {
	s := startServer(t, "ORDER_MODE=queue")
	product, _, _ := saleOpenNow(t, s, 5)
	token := registerUsers(t, s, 1)[0]
	if code, body := httpDo(t, "POST", s.baseURL+"/v1/products/"+product+"/orders", token, "{}"); code != 202 {
		t.Fatalf("PlaceOrder: %d %v", code, body)
	}
	waitFor(t, 10*time.Second, "the queued order written", func() (bool, string) {
		return metricValue(t, s.baseURL, "flashsale_order_batch_seconds_count") > 0, ""
	})
	// Written, so a worker has read the stream: its series are there.
	exported := scrape(t, s.baseURL)

	used := map[string][]string{} // metric -> where it is used
	for where, expr := range dashboardExprs(t) {
		for _, m := range metricNames(expr) {
			used[m] = append(used[m], where)
		}
	}
	for where, expr := range ruleExprs(t) {
		for _, m := range metricNames(expr) {
			used[m] = append(used[m], where)
		}
	}
	if len(used) < 20 {
		t.Fatalf("found only %d metrics in the operator files: %v", len(used), used)
	}
	for m, where := range used {
		if !exported[m] && !slices.Contains(scrapeSeries, m) {
			t.Errorf("%s, used by %v, is not exported", m, where)
		}
	}

	doc, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	for m := range exported {
		family := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
		if strings.HasPrefix(m, "flashsale_") && !strings.Contains(string(doc), "`"+family+"`") {
			t.Errorf("%s is exported but not described in docs/metrics.md", family)
		}
	}
}

// TestDashboardRows: the dashboard has a row per concern, each with panels.
func TestDashboardRows(t *testing.T) {
	var d struct {
		Panels []struct {
			Type  string `json:"type"`
			Title string `json:"title"`
			ID    int    `json:"id"`
		} `json:"panels"`
	}
	readJSON(t, dashboardFile, &d)
	want := []string{"Traffic and outcomes", "Latency", "Queue (ORDER_MODE=queue)", "Database", "Redis", "Process"}
	var rows []string
	ids := map[int]bool{}
	inRow := 0
	for i, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			if i > 0 && inRow == 0 {
				t.Errorf("row %q is empty", rows[len(rows)-1])
			}
			rows = append(rows, p.Title)
			inRow = 0
			continue
		}
		if len(rows) == 0 {
			t.Errorf("panel %q comes before any row", p.Title)
		}
		inRow++
	}
	if !slices.Equal(rows, want) {
		t.Errorf("rows = %q, want %q", rows, want)
	}
}

// scrape returns the names of the series /metrics exports (with the
// _bucket, _sum and _count of histograms).
func scrape(t *testing.T, baseURL string) map[string]bool {
	t.Helper()
	resp, err := http.Get(baseURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		names[name] = true
	}
	return names
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// dashboardExprs is every PromQL expression of the dashboard (panels and
// template variables), by where it is.
func dashboardExprs(t *testing.T) map[string]string {
	t.Helper()
	var d any
	readJSON(t, dashboardFile, &d)
	out := map[string]string{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if title, ok := v["title"].(string); ok {
				path = "dashboard panel " + title
			} else if name, ok := v["name"].(string); ok {
				path = "dashboard variable " + name
			}
			for k, c := range v {
				if s, ok := c.(string); ok && (k == "expr" || k == "query" || k == "definition") {
					out[path+" "+k+" "+s] = s
					continue
				}
				walk(path, c)
			}
		case []any:
			for _, c := range v {
				walk(path, c)
			}
		}
	}
	walk("dashboard", d)
	return out
}

// ruleExprs is every expression of the alert rules, by alert.
func ruleExprs(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert, Record, Expr string
			}
		}
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	out := map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out["alert "+r.Alert+r.Record] = r.Expr
		}
	}
	return out
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promLabels   = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(?`)
	promFuncArgs = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)
)

// metricNames are the metric names a PromQL expression (or a Grafana
// label_values query) reads: its identifiers once strings, label
// matchers, ranges and grouping clauses are gone, that call nothing and
// are not keywords.
func metricNames(expr string) []string {
	var out []string
	for _, m := range promFuncArgs.FindAllStringSubmatch(expr, -1) {
		out = append(out, m[1])
	}
	e := promString.ReplaceAllString(expr, "")
	e = promMatchers.ReplaceAllString(e, "")
	e = promRange.ReplaceAllString(e, "")
	e = promLabels.ReplaceAllString(e, "")
	for _, id := range promIdent.FindAllString(e, -1) {
		if strings.HasSuffix(id, "(") {
			continue // a function or aggregation
		}
		switch id = strings.TrimSpace(id); id {
		case "and", "or", "unless", "bool", "offset", "group_left", "group_right", "le", "instance", "sale":
			continue
		}
		if id == "up" || strings.Contains(id, "_") {
			out = append(out, id)
		}
	}
	return out
}

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`up{job="flashsale"} == 0`, []string{"up"}},
		{`histogram_quantile(0.99, sum by (instance, le) (rate(flashsale_order_batch_seconds_bucket[5m]))) > 0.25`,
			[]string{"flashsale_order_batch_seconds_bucket"}},
		{`sum by (grpc_code) (rate(grpc_server_handled_total{grpc_service=~"flashsale.v1.*", grpc_code="Internal"}[1m])) / on (instance) group_left max(flashsale_db_pool_max_connections)`,
			[]string{"grpc_server_handled_total", "flashsale_db_pool_max_connections"}},
		{`max by (product) (flashsale_queue_length) > 0 unless max by (product) (flashsale_queue_consumers) > 0`,
			[]string{"flashsale_queue_length", "flashsale_queue_consumers"}},
		{`label_values(flashsale_sale_remaining, sale)`, []string{"flashsale_sale_remaining", "flashsale_sale_remaining"}},
	}
	for _, tt := range tests {
		if got := metricNames(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("metricNames(%s) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}
