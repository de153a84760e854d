package redis

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// clientMetrics are a Client's Prometheus metrics; Collectors exposes them
// for registering, once, whatever the number of connection attempts.
type clientMetrics struct {
	scriptSeconds *prometheus.HistogramVec
	scripts       map[string]prometheus.Observer // by script name, resolved once

	reconciles   prometheus.Counter
	driftUnits   prometheus.Counter
	driftBuyers  prometheus.Counter
	rebuilt      prometheus.Counter
	lastDriftAbs prometheus.Gauge
}

// scriptNames are the names exec is given, one label value each.
var scriptNames = []string{"admit", "settle", "load", "reconcile", "queue-prepare", "rate-limit", "login-backoff"}

func newClientMetrics() *clientMetrics {
	m := &clientMetrics{
		scriptSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flashsale_redis_script_seconds",
			Help:    "Time to run one Lua script in Redis, round trip included, by script (admit, settle, load, reconcile, queue-prepare, rate-limit, login-backoff).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"script"}),
		reconciles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flashsale_reconcile_runs_total",
			Help: "Products whose gate state a reconcile rebuilt from PostgreSQL (periodic, after a Redis restart, or asked for).",
		}),
		driftUnits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flashsale_reconcile_drift_units_total",
			Help: "Units of stock the gate held that reconciles corrected (the absolute difference, summed); 0 while Redis and PostgreSQL agree.",
		}),
		driftBuyers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flashsale_reconcile_drift_buyers_total",
			Help: "Buyers the gate recorded that reconciles corrected (the net change in each sale's buyers, absolute, summed).",
		}),
		rebuilt: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flashsale_reconcile_rebuilt_total",
			Help: "Reconciles that found no gate state for the product (Redis lost it) and rebuilt it whole.",
		}),
		lastDriftAbs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flashsale_reconcile_last_drift_units",
			Help: "Units of stock the last reconcile corrected.",
		}),
	}
	m.scripts = make(map[string]prometheus.Observer, len(scriptNames))
	for _, n := range scriptNames {
		m.scripts[n] = m.scriptSeconds.WithLabelValues(n)
	}
	return m
}

func (m *clientMetrics) observeScript(name string, d time.Duration) {
	if o, ok := m.scripts[name]; ok {
		o.Observe(d.Seconds())
	}
}

// reconciled counts one reconcile's corrections from loadScript's result.
func (m *clientMetrics) reconciled(stock, stockBefore, buyersBefore, buyersAfter int64) {
	m.reconciles.Inc()
	if stockBefore < 0 {
		m.rebuilt.Inc()
		m.lastDriftAbs.Set(0)
		return
	}
	units := abs(stock - stockBefore)
	m.driftUnits.Add(float64(units))
	m.driftBuyers.Add(float64(abs(buyersAfter - buyersBefore)))
	m.lastDriftAbs.Set(float64(units))
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// Collectors are the client's metrics: script latency and reconcile drift.
func (c *Client) Collectors() []prometheus.Collector {
	m := c.metrics
	return []prometheus.Collector{m.scriptSeconds, m.reconciles, m.driftUnits, m.driftBuyers, m.rebuilt, m.lastDriftAbs}
}
