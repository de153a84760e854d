package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/redis"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/telemetry"
)

// catalog is the catalog's reads and writes: *redis.Catalog, or the plain
// store in direct mode.
type catalog interface {
	redis.CatalogStore
	SaleOpen(ctx context.Context, productID uuid.UUID, now time.Time) (sale.Sale, error)
}

// buildOrderPath builds the order service of the configured mode with the
// parts it runs on: nothing more than the store in direct mode; Redis (the
// gate, the sale-status and catalog cache) and the batcher in sync mode;
// Redis (the gate, the cache, the streams) in queue mode. ctx bounds the
// wait for Redis.
func (a *App) buildOrderPath(ctx context.Context) error {
	mode := order.Mode(a.cfg.OrderMode())
	if mode == order.ModeDirect {
		a.catalog = a.store
		a.sales = telemetry.NewSales(a.store, telemetry.ProductStock{Products: a.store}, a.now)
		a.orders = order.NewService(a.store, a.now, order.Config{Mode: order.ModeDirect, Log: a.log, Decisions: a.sales})
		return nil
	}
	rc, err := connectRedis(ctx, a.cfg, a.log, redis.WithTracerProvider(a.tp))
	if err != nil {
		return err
	}
	a.redis = rc
	a.gate = redis.NewGate(rc)
	a.batches = newTimedBatches(a.store, a.metrics)
	cached := redis.NewCatalog(a.store, redis.NewCache(rc))
	a.catalog = cached
	a.sales = telemetry.NewSales(cached, a.gate, a.now)
	a.metrics.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "flashsale_catalog_cache_hits_total", Help: "Catalog reads (products, sales, lists) served from the client-side cache.",
	}, func() float64 { hits, _ := cached.Stats(); return float64(hits) }))
	a.metrics.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "flashsale_catalog_cache_misses_total", Help: "Catalog reads that went to PostgreSQL.",
	}, func() float64 { _, misses := cached.Stats(); return float64(misses) }))
	oc := order.Config{
		Mode:       mode,
		Gate:       a.gate,
		Admissions: a.gate,
		Status:     newGateStatus(a.gate, a.metrics),
		Catalog:    cached,
		Log:        a.log,
		MaxQueued:  int64(a.cfg.OrdersQueueMaxQueued),
		RetryAfter: a.cfg.OrdersQueueRetryAfter(),
		Decisions:  a.sales,
	}
	switch mode {
	case order.ModeSync:
		a.batcher = order.NewBatcher(a.batches, a.cfg.OrdersBatchSize, a.cfg.OrdersBatchWait(), a.log, order.WithSettler(a.gate), order.WithTracerProvider(a.tp))
		oc.Batcher = a.batcher
	case order.ModeQueue:
		a.queue = redis.NewQueue(rc)
		a.durability = redis.NewDurability(rc, a.cfg.OrdersQueueAllowVolatile, a.log)
		oc.Accepting = a.durability.Accepting
	}
	a.orders = order.NewService(a.store, a.now, oc)
	return nil
}

// requirePersistence: queue mode acknowledges orders that live only in
// Redis until a worker writes them, so Redis must keep them across restarts
// (an AOF). serve and worker refuse to start without one unless
// ORDERS_QUEUE_ALLOW_VOLATILE=true, which is warned about at every start.
// Other modes need nothing.
func (a *App) requirePersistence(ctx context.Context) error {
	if a.durability == nil {
		return nil
	}
	if a.cfg.OrdersQueueAllowVolatile {
		a.log.Warn("ORDERS_QUEUE_ALLOW_VOLATILE=true: queue mode takes orders even when Redis keeps no append-only file; a Redis restart then loses the orders acknowledged but not yet written")
	}
	err := a.durability.Check(ctx)
	switch {
	case errors.Is(err, redis.ErrVolatile):
		return errors.New("ORDER_MODE=queue needs Redis with appendonly yes, and this Redis has appendonly no: " +
			"a restart would lose every order acknowledged but not yet written. " +
			"Turn on Redis's append-only file, or set ORDERS_QUEUE_ALLOW_VOLATILE=true to accept that loss")
	case err != nil && !a.cfg.OrdersQueueAllowVolatile:
		return fmt.Errorf("ORDER_MODE=queue needs Redis with appendonly yes, and whether it has one could not be read "+
			"(ORDERS_QUEUE_ALLOW_VOLATILE=true runs regardless): %w", err)
	case err != nil:
		a.log.Warn("could not read whether Redis keeps an append-only file", "err", err)
	}
	return nil
}

// gateStatus is the gate's published sale status for the order service
// (order.StatusCache), each sale-status read counted by whether this
// process's cache served it.
type gateStatus struct {
	gate    *redis.Gate
	lookups *prometheus.CounterVec
}

func newGateStatus(g *redis.Gate, reg prometheus.Registerer) *gateStatus {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flashsale_sale_status_lookups_total",
		Help: "Sale-status reads by result: hit (served from this process's client-side cache) or miss; the hit ratio is hit / (hit + miss).",
	}, []string{"result"})
	c.WithLabelValues("hit") // both series exist from the start, for dashboards
	c.WithLabelValues("miss")
	reg.MustRegister(c)
	return &gateStatus{gate: g, lookups: c}
}

// SaleStatus implements order.StatusCache.
func (g *gateStatus) SaleStatus(ctx context.Context, sl sale.Sale, now time.Time) (sale.State, int32, bool, error) {
	st, loaded, err := g.gate.Status(ctx, sl, now)
	if err != nil || !loaded {
		return 0, 0, false, err
	}
	result := "miss"
	if st.CacheHit {
		result = "hit"
	}
	g.lookups.WithLabelValues(result).Inc()
	return st.State, st.Remaining, true, nil
}

// SoldOut implements order.StatusCache; the order path's reads are not
// counted as sale-status lookups.
func (g *gateStatus) SoldOut(ctx context.Context, sl sale.Sale, now time.Time) bool {
	st, loaded, err := g.gate.Status(ctx, sl, now)
	return err == nil && loaded && st.State == sale.StateSoldOut
}

// timedBatches is the batch store with each batch's size and time recorded
// as flashsale_order_batch_size and flashsale_order_batch_seconds.
type timedBatches struct {
	store   order.BatchStore
	size    prometheus.Histogram
	seconds prometheus.Histogram
}

func newTimedBatches(store order.BatchStore, reg prometheus.Registerer) *timedBatches {
	t := &timedBatches{
		store: store,
		size: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flashsale_order_batch_size",
			Help:    "Orders per batch written to PostgreSQL (sync batcher and queue workers).",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
		}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flashsale_order_batch_seconds",
			Help:    "Time to write one batch of orders to PostgreSQL, commit included.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1},
		}),
	}
	reg.MustRegister(t.size, t.seconds)
	return t
}

// OrderInsertBatch implements order.BatchStore. It times the write with
// the monotonic clock, not the App's clock, which judges rules.
func (t *timedBatches) OrderInsertBatch(ctx context.Context, orders []order.Order) ([]error, error) {
	start := time.Now()
	results, err := t.store.OrderInsertBatch(ctx, orders)
	t.size.Observe(float64(len(orders)))
	t.seconds.Observe(time.Since(start).Seconds())
	return results, err
}
