package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/grpcapi"
	"github.com/flashsale/flashsale/internal/httpapi"
	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/postgres"
	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/redis"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/telemetry"
)

// orderPath is the order service of the configured mode with the parts it
// runs on, so serve and worker can start and stop them.
type orderPath struct {
	mode    order.Mode
	service *order.Service
	redis   *redis.Client // nil in direct mode
	gate    *redis.Gate
	queue   *redis.Queue
	batcher *order.Batcher
	// batches is where the batcher and the workers write: the store, timed.
	batches order.BatchStore
	status  *statusReader
	// store is what the API reads and writes: PostgreSQL, with the catalog
	// served from the client-side cache in the fast modes.
	store *cachedStore

	// durability says whether Redis keeps an AOF (queue mode only).
	durability *redis.Durability
	// tp traces batches and Redis commands; nil: nothing is traced.
	tp trace.TracerProvider
	// sales tallies each open sale's decisions, for metrics.
	sales *telemetry.Sales
}

// newOrderPath connects what the mode needs: nothing more in direct mode;
// Redis (gate, status cache) and the batcher in sync mode; Redis (gate,
// status cache, streams) in queue mode.
func newOrderPath(ctx context.Context, cfg config.Config, store *postgres.Store, log *slog.Logger, reg prometheus.Registerer, tp trace.TracerProvider) (*orderPath, error) {
	p := &orderPath{mode: order.Mode(cfg.OrderMode()), store: &cachedStore{Store: store}, tp: tp}
	if p.mode == order.ModeDirect {
		p.store.catalog = store
		p.sales = telemetry.NewSales(store, telemetry.ProductStock{Products: store}, now)
		p.service = order.NewService(store, now, order.Config{Mode: order.ModeDirect, Decisions: p.sales})
		return p, nil
	}
	rc, err := connectRedis(ctx, cfg, log, redis.WithTracerProvider(tp))
	if err != nil {
		return nil, err
	}
	p.redis = rc
	p.gate = redis.NewGate(rc)
	p.sales = telemetry.NewSales(p.store, p.gate, now)
	p.batches = newTimedBatches(store, reg)
	p.status = newStatusReader(p.gate, reg)
	p.store.loadGate = func(ctx context.Context, sl sale.Sale) error { return p.service.LoadGate(ctx, sl) }
	p.status.load = p.store.loadGate
	catalog := redis.NewCatalog(store, redis.NewCache(rc))
	p.store.catalog = catalog
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "flashsale_catalog_cache_hits_total", Help: "Catalog reads (products, sales, lists) served from the client-side cache.",
	}, func() float64 { h, _ := catalog.Stats(); return float64(h) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "flashsale_catalog_cache_misses_total", Help: "Catalog reads that went to PostgreSQL.",
	}, func() float64 { _, m := catalog.Stats(); return float64(m) }))
	oc := order.Config{
		Mode:       p.mode,
		Gate:       p.gate,
		Admissions: p.gate,
		Status:     p.status,
		MaxQueued:  int64(cfg.OrdersQueueMaxQueued),
		RetryAfter: cfg.OrdersQueueRetryAfter(),
		Decisions:  p.sales,
	}
	switch p.mode {
	case order.ModeSync:
		p.batcher = order.NewBatcher(p.batches, cfg.OrdersBatchSize, cfg.OrdersBatchWait(), log, order.WithSettler(p.gate), order.WithTracerProvider(tp))
		oc.Batcher = p.batcher
	case order.ModeQueue:
		p.queue = redis.NewQueue(rc)
		p.durability = redis.NewDurability(rc, cfg.OrdersQueueAllowVolatile, log)
		oc.Accepting = p.durability.Accepting
	}
	p.service = order.NewService(p.store, now, oc)
	return p, nil
}

// userLimiter is the per-user order-attempt bucket shared through Redis; nil
// in direct mode, which uses no Redis.
func (p *orderPath) userLimiter(cfg config.Config) (grpcapi.UserLimiter, error) {
	if p.redis == nil {
		return nil, nil
	}
	return redis.NewUserLimiter(p.redis, cfg.RLUserOrderCapacity, cfg.RLUserOrderRefill)
}

// authLimiters are the sign-in buckets per IP and the login backoff, shared
// through Redis; nil in direct mode, where the buckets are per process and
// there is no backoff.
func (p *orderPath) authLimiters(cfg config.Config) (grpcapi.KeyLimiter, grpcapi.LoginBackoff, error) {
	if p.redis == nil {
		return nil, nil, nil
	}
	ip, err := redis.NewLimiter(p.redis, "signin-ip", cfg.RLAuthIPCapacity, cfg.RLAuthIPRefill)
	if err != nil {
		return nil, nil, err
	}
	logins, err := redis.NewLoginBackoff(p.redis, cfg.RLLoginFailuresFree, cfg.RLLoginBackoffMax())
	return ip, logins, err
}

// cachedStore is the PostgreSQL store with its catalog reads and writes
// going through catalog (the client-side cache in the fast modes).
type cachedStore struct {
	*postgres.Store
	catalog catalog
	// loadGate gives a new sale's state to the gate (nil in direct mode).
	loadGate func(context.Context, sale.Sale) error
}

// catalog is the catalog's reads and writes: *redis.Catalog, or the plain
// store in direct mode.
type catalog interface {
	redis.CatalogStore
	SaleOpen(ctx context.Context, productID uuid.UUID, now time.Time) (sale.Sale, error)
}

func (s *cachedStore) ProductCreate(ctx context.Context, p product.Product) (product.Product, error) {
	return s.catalog.ProductCreate(ctx, p)
}

func (s *cachedStore) ProductGet(ctx context.Context, id uuid.UUID) (product.Product, error) {
	return s.catalog.ProductGet(ctx, id)
}

func (s *cachedStore) ProductList(ctx context.Context, after uuid.UUID, limit int) ([]product.Product, error) {
	return s.catalog.ProductList(ctx, after, limit)
}

// SaleCreate stores the sale and, in the fast modes, loads a sale that is
// open already into the gate, so its first buyers and status readers find
// it there. An upcoming sale is loaded on first use instead: the product's
// stock may still change (another sale of it) before it opens.
func (s *cachedStore) SaleCreate(ctx context.Context, sl sale.Sale) (sale.Sale, error) {
	sl, err := s.catalog.SaleCreate(ctx, sl)
	if err != nil || s.loadGate == nil || !sl.OpenAt(now()) {
		return sl, err
	}
	// The sale is stored; a failed load is repaired on first use.
	_ = s.loadGate(ctx, sl)
	return sl, nil
}

func (s *cachedStore) SaleGet(ctx context.Context, id uuid.UUID) (sale.Sale, error) {
	return s.catalog.SaleGet(ctx, id)
}

func (s *cachedStore) SalesByProduct(ctx context.Context, productID uuid.UUID) ([]sale.Sale, error) {
	return s.catalog.SalesByProduct(ctx, productID)
}

func (s *cachedStore) SaleList(ctx context.Context, f sale.ListFilter) ([]sale.Sale, error) {
	return s.catalog.SaleList(ctx, f)
}

func (s *cachedStore) SaleOpen(ctx context.Context, productID uuid.UUID, now time.Time) (sale.Sale, error) {
	return s.catalog.SaleOpen(ctx, productID, now)
}

// ready lists what /readyz pings for this mode.
func (p *orderPath) ready(store *postgres.Store) map[string]httpapi.Checker {
	r := map[string]httpapi.Checker{"postgres": store}
	if p.redis != nil {
		r["redis"] = p.redis
	}
	if p.durability != nil {
		r["redis_aof"] = p.durability // fails while queue mode refuses orders
	}
	return r
}

// close stops the batcher (writing what it holds) and closes Redis.
func (p *orderPath) close() {
	if p.batcher != nil {
		p.batcher.Close()
	}
	if p.redis != nil {
		p.redis.Close()
	}
}

// reconcileLoop rebuilds the gate state of every open sale from PostgreSQL
// now and then every interval, until ctx ends.
func (p *orderPath) reconcileLoop(ctx context.Context, store *postgres.Store, interval time.Duration, log *slog.Logger) {
	if p.gate == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := p.service.ReconcileOpen(ctx, store); err != nil && ctx.Err() == nil {
			log.Warn("reconcile", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runWorkers consumes the order streams with n workers until ctx ends; the
// channel closes when they have all stopped.
func (p *orderPath) runWorkers(ctx context.Context, n, batchSize int, claimIdle time.Duration, log *slog.Logger) <-chan struct{} {
	done := make(chan struct{})
	if p.queue == nil || n <= 0 {
		close(done)
		return done
	}
	host, _ := os.Hostname()
	var wg sync.WaitGroup
	for i := range n {
		consumer := fmt.Sprintf("%s-%d-%d", host, os.Getpid(), i)
		w := order.NewWorker(p.queue, p.batches, p.gate, consumer, batchSize, claimIdle, log, order.WithWorkerTracerProvider(p.tp))
		wg.Go(func() {
			if err := w.Run(ctx); err != nil && ctx.Err() == nil {
				log.Error("order worker stopped", "consumer", consumer, "err", err)
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	return done
}

// requirePersistence: queue mode acknowledges orders that live only in
// Redis until a worker writes them, so Redis must keep them across restarts
// (an AOF). serve and worker refuse to start without one unless
// ORDERS_QUEUE_ALLOW_VOLATILE=true, which is warned about at every start.
// Other modes need nothing.
func (p *orderPath) requirePersistence(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if p.durability == nil {
		return nil
	}
	if cfg.OrdersQueueAllowVolatile {
		log.Warn("ORDERS_QUEUE_ALLOW_VOLATILE=true: queue mode takes orders even when Redis keeps no append-only file; a Redis restart then loses the orders acknowledged but not yet written")
	}
	err := p.durability.Check(ctx)
	switch {
	case errors.Is(err, redis.ErrVolatile):
		return errors.New("ORDER_MODE=queue needs Redis with appendonly yes, and this Redis has appendonly no: " +
			"a restart would lose every order acknowledged but not yet written. " +
			"Turn on Redis's append-only file, or set ORDERS_QUEUE_ALLOW_VOLATILE=true to accept that loss")
	case err != nil && !cfg.OrdersQueueAllowVolatile:
		return fmt.Errorf("ORDER_MODE=queue needs Redis with appendonly yes, and whether it has one could not be read "+
			"(ORDERS_QUEUE_ALLOW_VOLATILE=true runs regardless): %w", err)
	case err != nil:
		log.Warn("could not read whether Redis keeps an append-only file", "err", err)
	}
	return nil
}

// watchRedis runs a redis.Watcher until ctx ends (nothing in direct mode):
// it re-checks persistence (queue mode) every few seconds, and after a
// Redis restart or failover, which without an AOF lost the gate's state,
// it re-checks persistence and calls reconcile (when not nil) until that
// succeeds. The channel closes once the watcher has stopped.
func (p *orderPath) watchRedis(ctx context.Context, reconcile func(context.Context) error, log *slog.Logger) <-chan struct{} {
	done := make(chan struct{})
	if p.redis == nil {
		close(done)
		return done
	}
	retrying := false
	w := redis.NewWatcher(p.redis, redis.WatchConfig{
		Durability: p.durability,
		OnRestart: func(ctx context.Context) error {
			if !retrying {
				log.Warn("Redis restarted or failed over (its run_id changed)")
			}
			if reconcile == nil {
				return nil
			}
			err := reconcile(ctx)
			retrying = err != nil
			if err != nil {
				log.Warn("reconcile after the Redis restart failed; retrying", "err", err)
				return err
			}
			log.Info("reconciled the open sales after the Redis restart")
			return nil
		},
	})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	return done
}

// statusReader answers GetSaleStatus from the gate's cached status key and
// counts how often the local cache served it.
type statusReader struct {
	gate    *redis.Gate
	lookups *prometheus.CounterVec
	// load gives the gate a sale it does not hold yet.
	load func(context.Context, sale.Sale) error
}

func newStatusReader(g *redis.Gate, reg prometheus.Registerer) *statusReader {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flashsale_sale_status_lookups_total",
		Help: "Sale-status reads by result: hit (served from this process's client-side cache) or miss; the hit ratio is hit / (hit + miss).",
	}, []string{"result"})
	c.WithLabelValues("hit") // both series exist from the start, for dashboards
	c.WithLabelValues("miss")
	reg.MustRegister(c)
	return &statusReader{gate: g, lookups: c}
}

// SaleStatus implements grpcapi.StatusReader.
// A sale the gate does not hold (Redis lost it) is loaded, so the next
// reads come from the cache again instead of asking Redis each time.
func (r *statusReader) SaleStatus(ctx context.Context, sl sale.Sale, now time.Time) (sale.State, int32, bool, error) {
	st, loaded, err := r.gate.Status(ctx, sl, now)
	if err == nil && !loaded {
		if err = r.load(ctx, sl); err == nil {
			st, loaded, err = r.gate.Status(ctx, sl, now)
		}
	}
	if err != nil || !loaded {
		return 0, 0, false, err
	}
	result := "miss"
	if st.CacheHit {
		result = "hit"
	}
	r.lookups.WithLabelValues(result).Inc()
	return st.State, st.Remaining, true, nil
}

// SoldOut implements order.StatusCache.
func (r *statusReader) SoldOut(ctx context.Context, sl sale.Sale) bool {
	st, loaded, err := r.gate.Status(ctx, sl, now())
	return err == nil && loaded && st.State == sale.StateSoldOut
}

// Reconcile implements grpcapi.Reconciler.
func (p *orderPath) Reconcile(ctx context.Context, saleID uuid.UUID) (int, int, error) {
	return p.service.Reconcile(ctx, saleID)
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

// OrderInsertBatch implements order.BatchStore.
func (t *timedBatches) OrderInsertBatch(ctx context.Context, orders []order.Order) ([]error, error) {
	start := time.Now()
	results, err := t.store.OrderInsertBatch(ctx, orders)
	t.size.Observe(float64(len(orders)))
	t.seconds.Observe(time.Since(start).Seconds())
	return results, err
}
