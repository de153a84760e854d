package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/postgres"
	"github.com/flashsale/flashsale/internal/redis"
)

// Sources are the parts of a serving process whose standing the metrics
// read at each scrape; a nil one is left out (Redis, the queue and the
// gate in direct mode, say). docs/metrics.md describes every metric.
type Sources struct {
	Store  *postgres.Store
	Hasher *auth.Hasher
	Redis  *redis.Client
	Queue  *redis.Queue
	Sales  *Sales
}

// RegisterMetrics registers the metrics of s on reg, beside the gRPC,
// batch and cache metrics their own packages register.
func RegisterMetrics(reg prometheus.Registerer, s Sources) {
	if s.Store != nil {
		reg.MustRegister(newStoreCollector(s.Store))
	}
	if s.Hasher != nil {
		h := s.Hasher
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "flashsale_password_hashes_in_flight",
				Help: "argon2id password hashes running now (sign-ups and sign-ins), at most AUTH_HASH_CONCURRENCY.",
			}, func() float64 { return float64(h.Stats().Running) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "flashsale_password_hashes_waiting",
				Help: "Password hashes waiting for a slot (up to AUTH_HASH_WAIT_MS).",
			}, func() float64 { return float64(h.Stats().Waiting) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "flashsale_password_hashes_refused_total",
				Help: "Sign-ups and sign-ins refused for want of a hashing slot (503 AUTH_BUSY).",
			}, func() float64 { return float64(h.Stats().Refused) }),
		)
	}
	if s.Redis != nil {
		reg.MustRegister(s.Redis.Collectors()...)
	}
	if s.Queue != nil {
		reg.MustRegister(newQueueCollector(s.Queue))
	}
	if s.Sales != nil {
		reg.MustRegister(s.Sales)
	}
}

// storeCollector reports the connection pool and the user directory.
type storeCollector struct {
	store *postgres.Store

	conns, maxConns, acquires, emptyAcquires, acquireWait *prometheus.Desc
	dirCurrent, dirLag, dirUsers                          *prometheus.Desc
}

func newStoreCollector(s *postgres.Store) *storeCollector {
	return &storeCollector{
		store: s,
		conns: prometheus.NewDesc("flashsale_db_pool_connections",
			"PostgreSQL connections in the pool by state: acquired (running a query or transaction), idle, constructing.", []string{"state"}, nil),
		maxConns: prometheus.NewDesc("flashsale_db_pool_max_connections",
			"The pool's size (pool_max_conns in DATABASE_URL).", nil, nil),
		acquires: prometheus.NewDesc("flashsale_db_pool_acquires_total",
			"Connections taken from the pool.", nil, nil),
		emptyAcquires: prometheus.NewDesc("flashsale_db_pool_empty_acquires_total",
			"Connections taken from the pool that had to wait for one (none idle).", nil, nil),
		acquireWait: prometheus.NewDesc("flashsale_db_pool_acquire_seconds_total",
			"Time spent taking connections from the pool, waits included.", nil, nil),
		dirCurrent: prometheus.NewDesc("flashsale_user_directory_current",
			"1 while the in-memory user directory answers (its heartbeat comes back within 3 s); 0 while every authenticated call reads the users table.", nil, nil),
		dirLag: prometheus.NewDesc("flashsale_user_directory_lag_seconds",
			"How long the user directory's last heartbeat took to come back: how late a change to a user (disabled, deleted) reaches this process.", nil, nil),
		dirUsers: prometheus.NewDesc("flashsale_user_directory_users",
			"Users the in-memory directory holds.", nil, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.conns, c.maxConns, c.acquires, c.emptyAcquires, c.acquireWait, c.dirCurrent, c.dirLag, c.dirUsers} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	p := c.store.PoolStats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.conns, float64(p.AcquiredConns()), "acquired")
	gauge(c.conns, float64(p.IdleConns()), "idle")
	gauge(c.conns, float64(p.ConstructingConns()), "constructing")
	gauge(c.maxConns, float64(p.MaxConns()))
	counter(c.acquires, float64(p.AcquireCount()))
	counter(c.emptyAcquires, float64(p.EmptyAcquireCount()))
	counter(c.acquireWait, p.AcquireDuration().Seconds())
	d := c.store.DirectoryStats()
	current := 0.0
	if d.Current {
		current = 1
	}
	gauge(c.dirCurrent, current)
	gauge(c.dirLag, d.Lag.Seconds())
	gauge(c.dirUsers, float64(d.Users))
}

// queueCollector reports each product's order stream (queue mode).
type queueCollector struct {
	queue *redis.Queue

	length, lag, pending, oldest, consumers, idle *prometheus.Desc
}

// consumerShown: a consumer idle longer than this, holding no entry, is
// left out (a worker long gone; their names are per process).
const consumerShown = 10 * time.Minute

func newQueueCollector(q *redis.Queue) *queueCollector {
	p := []string{"product"}
	return &queueCollector{
		queue: q,
		length: prometheus.NewDesc("flashsale_queue_length",
			"Orders in a product's stream: admitted (acknowledged 202) and not yet written and settled.", p, nil),
		lag: prometheus.NewDesc("flashsale_queue_lag",
			"Entries of a product's stream no worker has read yet.", p, nil),
		pending: prometheus.NewDesc("flashsale_queue_pending",
			"Entries of a product's stream read by a worker and not yet settled.", p, nil),
		oldest: prometheus.NewDesc("flashsale_queue_oldest_seconds",
			"Age of the oldest entry of a product's stream: how long the order waiting longest has waited for its write; 0 when empty.", p, nil),
		consumers: prometheus.NewDesc("flashsale_queue_consumers",
			"Workers that read a product's stream within the last minute.", p, nil),
		idle: prometheus.NewDesc("flashsale_queue_consumer_idle_seconds",
			"Time since a worker last read a product's stream; shown for workers seen in the last 10 minutes or holding entries.",
			[]string{"product", "consumer"}, nil),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.length, c.lag, c.pending, c.oldest, c.consumers, c.idle} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	streams, err := c.queue.Stats(ctx)
	if err != nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, st := range streams {
		p := st.ProductID.String()
		gauge(c.length, float64(st.Length), p)
		gauge(c.lag, float64(st.Lag), p)
		gauge(c.pending, float64(st.Pending), p)
		gauge(c.oldest, st.Oldest.Seconds(), p)
		active := 0
		for _, w := range st.Consumers {
			if w.Idle < time.Minute {
				active++
			}
			if w.Idle < consumerShown || w.Pending > 0 {
				gauge(c.idle, w.Idle.Seconds(), p, w.Name)
			}
		}
		gauge(c.consumers, float64(active), p)
	}
}
