// Package app is where the flashsale process is wired: App builds every
// part from the configuration (stores, the order path of the configured
// mode, the servers), Run starts each goroutine and, when its context ends,
// stops and joins them in the reverse order, before the stores close. The
// binary (cmd/flashsale) only parses its command line and calls it.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/grpcapi"
	"github.com/flashsale/flashsale/internal/httpapi"
	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/postgres"
	"github.com/flashsale/flashsale/internal/redis"
	"github.com/flashsale/flashsale/internal/telemetry"
	"github.com/flashsale/flashsale/internal/web"
)

// role is which command a process runs, and so what its App builds and runs.
type role int

const (
	// roleServe (flashsale serve): the API, and the background work behind
	// it: the user directory, reconciles, the Redis watcher, queue workers.
	roleServe role = iota
	// roleWorker (flashsale worker): queue workers and the Redis watcher.
	roleWorker
	// roleTool (flashsale reconcile): the order path, running nothing.
	roleTool
)

// App is one flashsale process: the parts it is built from and the
// goroutines it runs. New, NewWorker or Open build it; Run runs it until its
// context ends and then closes it; Close releases an App that is not run.
//
// What starts in what order, and so stops in the reverse:
//
//	New:  tracing (OTEL_*), listeners, PostgreSQL store, Redis client, the
//	      order path (its batcher's goroutines), the servers
//	Run:  user directory, per-IP limit reports, reconcile loop, Redis
//	      watcher, queue workers, gRPC server, HTTP server
//
// On shutdown the servers drain first (see Run), then the background
// goroutines stop, newest first, then Close flushes the batcher, closes
// Redis and PostgreSQL, and sends the spans still buffered.
type App struct {
	cfg  config.Config
	log  *slog.Logger
	now  func() time.Time
	role role

	metrics *prometheus.Registry

	// tracing is the tracer provider Setup started from OTEL_* (nil when
	// WithTracerProvider gave one); Close shuts it down. tp is the provider
	// to instrument with: nil, nothing is traced.
	tracing *telemetry.Tracing
	tp      trace.TracerProvider

	// The store, and the order path of the configured mode.
	store      *postgres.Store
	redis      *redis.Client     // nil in direct mode
	gate       *redis.Gate       // nil in direct mode
	queue      *redis.Queue      // queue mode
	durability *redis.Durability // queue mode: whether Redis keeps an AOF
	// catalog serves product and sale reads: the store, or the client-side
	// cache in front of it in the sync and queue modes.
	catalog catalog
	// batches is where the batcher and the workers write: the store, timed.
	batches order.BatchStore
	batcher *order.Batcher // sync mode
	orders  *order.Service
	// sales tallies each open sale's decisions, for metrics.
	sales *telemetry.Sales

	// The API (roleServe).
	grpcLis, httpLis net.Listener
	grpc             *grpcapi.Server
	http             *http.Server
	// draining is set once shutdown begins: /readyz fails from then on.
	draining atomic.Bool
	// ipLimits are the per-IP buckets when shared through Redis; Run
	// reports to Redis what they let through.
	ipLimits *grpcapi.IPBuckets

	// tasks are the goroutines Run started, in order.
	tasks []task

	closeOnce sync.Once
	closeErr  error
	// Test hooks: beforeStoreClose runs just before the store closes,
	// taskEnded as each task's function returns.
	beforeStoreClose func()
	taskEnded        func(name string)
}

// Option changes how New builds an App.
type Option func(*options)

type options struct {
	now              func() time.Time
	grpcLis, httpLis net.Listener
	tp               trace.TracerProvider
	tpSet            bool
}

// WithClock makes now the clock every rule is judged by (the sale window,
// token lifetimes); the default is the wall clock in UTC.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithListeners serves gRPC and HTTP on the given listeners instead of
// listening on GRPC_ADDR and HTTP_ADDR; the App closes them.
func WithListeners(grpcLis, httpLis net.Listener) Option {
	return func(o *options) { o.grpcLis, o.httpLis = grpcLis, httpLis }
}

// WithTracerProvider traces calls, queries, Redis commands and batches
// with tp (nil: nothing is traced) instead of the tracing OTEL_* configure;
// the caller owns tp and shuts it down.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tp, o.tpSet = tp, true }
}

// New builds `flashsale serve`: it listens on GRPC_ADDR and HTTP_ADDR, waits
// for PostgreSQL (and Redis, unless ORDER_MODE=direct) up to
// STARTUP_TIMEOUT_SECONDS, creates or updates the admin of ADMIN_EMAIL, and
// builds the order path of the configured mode and the servers. In queue
// mode it refuses a Redis without an append-only file unless
// ORDERS_QUEUE_ALLOW_VOLATILE=true. It serves nothing until Run.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (*App, error) {
	a, o := newApp(cfg, log, roleServe, opts)
	err := a.setupTracing(ctx, o)
	if err == nil {
		err = a.buildServe(ctx, o)
	}
	if err != nil {
		return nil, errors.Join(err, a.Close())
	}
	return a, nil
}

// NewWorker builds `flashsale worker`: the queue workers of ORDER_MODE=queue
// (ORDERS_WORKER_CONCURRENCY of them, at least one), after waiting for
// PostgreSQL and Redis as New does; it refuses a Redis without an
// append-only file as New does.
func NewWorker(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (*App, error) {
	if cfg.OrderMode() != config.OrderModeQueue {
		return nil, errors.New("worker: set ORDER_MODE=queue (or ORDERS_USE_QUEUE=true); other modes have no queue")
	}
	a, o := newApp(cfg, log, roleWorker, opts)
	err := a.setupTracing(ctx, o)
	if err == nil {
		err = a.connect(ctx)
	}
	if err == nil {
		err = a.requirePersistence(ctx)
	}
	if err != nil {
		return nil, errors.Join(err, a.Close())
	}
	return a, nil
}

// Open builds the store and the order path of the configured mode, waiting
// for PostgreSQL and Redis as New does, for a command that runs nothing
// (flashsale reconcile). It traces nothing unless WithTracerProvider says
// so. Close it when done.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (*App, error) {
	a, o := newApp(cfg, log, roleTool, opts)
	a.tp = o.tp
	if err := a.connect(ctx); err != nil {
		return nil, errors.Join(err, a.Close())
	}
	return a, nil
}

func newApp(cfg config.Config, log *slog.Logger, r role, opts []Option) (*App, options) {
	o := options{now: func() time.Time { return time.Now().UTC() }}
	for _, opt := range opts {
		opt(&o)
	}
	// Metrics of a command that serves no API go nowhere.
	return &App{cfg: cfg, log: log, now: o.now, role: r, metrics: prometheus.NewRegistry()}, o
}

// setupTracing takes the tracer provider of WithTracerProvider, or else
// starts tracing as OTEL_* say (telemetry.Setup: off unless they ask for
// it), owned by the App: Close shuts it down.
func (a *App) setupTracing(ctx context.Context, o options) error {
	if o.tpSet {
		a.tp = o.tp
		return nil
	}
	t, err := telemetry.Setup(ctx, a.cfg)
	if err != nil {
		return err
	}
	a.tracing, a.tp = t, t.Provider()
	return nil
}

// connect waits for PostgreSQL and, unless in direct mode, Redis, all within
// STARTUP_TIMEOUT_SECONDS, and builds the order path on them.
func (a *App) connect(ctx context.Context) error {
	// PostgreSQL and Redis may come up after us, or Redis may be loading
	// its AOF after a restart: wait for them.
	ctx, cancel := context.WithTimeout(ctx, a.cfg.StartupTimeout())
	defer cancel()
	store, err := connectPostgres(ctx, a.cfg, a.log, postgres.WithTracerProvider(a.tp))
	if err != nil {
		return err
	}
	a.store = store
	return a.buildOrderPath(ctx)
}

// buildServe builds everything `flashsale serve` runs.
func (a *App) buildServe(ctx context.Context, o options) error {
	a.grpcLis, a.httpLis = o.grpcLis, o.httpLis
	if a.grpcLis == nil {
		lis, err := net.Listen("tcp", a.cfg.GRPCAddr)
		if err != nil {
			return fmt.Errorf("grpc listen: %w", err)
		}
		a.grpcLis = lis
	}
	if a.httpLis == nil {
		lis, err := net.Listen("tcp", a.cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("http listen: %w", err)
		}
		a.httpLis = lis
	}
	if err := a.listenTLS(); err != nil {
		return err
	}
	if a.cfg.GeneratedSecret {
		a.log.Warn("FLASHSALE_DEV=true and no AUTH_JWT_SECRET: using a random secret; tokens die with this process")
	}
	a.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	startCtx, started := context.WithTimeout(ctx, a.cfg.StartupTimeout())
	defer started()
	store, err := connectPostgres(startCtx, a.cfg, a.log, postgres.WithTracerProvider(a.tp))
	if err != nil {
		return err
	}
	a.store = store
	tokens := auth.NewTokens([]byte(a.cfg.JWTSecret), a.cfg.TokenTTL(), a.now)
	hasher := auth.NewHasher(a.cfg.AuthHashConcurrency, a.cfg.AuthHashWait())
	users := auth.NewService(store, tokens, a.now, a.log, auth.WithHasher(hasher))
	if a.cfg.AdminEmail != "" {
		if _, err := users.EnsureAdmin(ctx, a.cfg.AdminEmail, a.cfg.AdminPassword); err != nil {
			return fmt.Errorf("admin from ADMIN_EMAIL: %w", err)
		}
	}
	if err := a.buildOrderPath(startCtx); err != nil {
		return err
	}
	if err := a.requirePersistence(startCtx); err != nil {
		return err
	}
	telemetry.RegisterMetrics(a.metrics, telemetry.Sources{
		Store: store, Hasher: hasher, Redis: a.redis, Queue: a.queue, Sales: a.sales,
	})
	started()

	clientIP := grpcapi.NewClientIP(a.cfg.TrustedProxies())
	deps := grpcapi.Deps{
		Auth: users, Products: a.catalog, Sales: a.catalog, SaleService: a.orders, Orders: a.orders,
		Now: a.now, Log: a.log, Metrics: a.metrics, ClientIP: clientIP,
		WatchMaxStreams: a.cfg.WatchMaxStreams, WatchMaxStreamsPerIP: a.cfg.WatchMaxStreamsPerIP,
		AccessLogPerSecond: a.cfg.LogAccessPerSecond,
		TracerProvider:     a.tp,
	}
	if a.gate != nil {
		deps.Reconciler = a.orders
	}
	if !a.cfg.RLDisabled {
		limits := &grpcapi.Limits{
			GlobalCapacity: a.cfg.RLGlobalCapacity, GlobalRefill: a.cfg.RLGlobalRefill,
			IPCapacity: a.cfg.RLIPCapacity, IPRefill: a.cfg.RLIPRefill,
			AuthIPCapacity: a.cfg.RLAuthIPCapacity, AuthIPRefill: a.cfg.RLAuthIPRefill,
		}
		// The per-user order bucket, the sign-in buckets per IP and the
		// login backoff live in Redis, shared by every process, and the
		// per-IP buckets are reported there (grpcapi.IPBuckets); direct
		// mode uses no Redis: its per-IP and sign-in buckets are per
		// process, and it has no per-user bucket or backoff. The global
		// bucket is per process in every mode: it sheds one process's load.
		if a.redis != nil {
			shared, err := redis.NewLimiter(a.redis, "ip", a.cfg.RLIPCapacity, a.cfg.RLIPRefill)
			if err != nil {
				return fmt.Errorf("rate limits: %w", err)
			}
			a.ipLimits = grpcapi.NewIPBuckets(a.cfg.RLIPCapacity, a.cfg.RLIPRefill,
				&grpcapi.IPSharing{Buckets: shared, Every: a.cfg.RLIPSync(), Log: a.log})
			a.metrics.MustRegister(a.ipLimits.Collectors()...)
			limits.IP = a.ipLimits
			perUser, err := redis.NewUserLimiter(a.redis, a.cfg.RLUserOrderCapacity, a.cfg.RLUserOrderRefill)
			if err != nil {
				return fmt.Errorf("rate limits: %w", err)
			}
			limits.Users = perUser
			if limits.AuthIP, err = redis.NewLimiter(a.redis, "signin-ip", a.cfg.RLAuthIPCapacity, a.cfg.RLAuthIPRefill); err != nil {
				return fmt.Errorf("rate limits: %w", err)
			}
			if limits.Logins, err = redis.NewLoginBackoff(a.redis, a.cfg.RLLoginFailuresFree, a.cfg.RLLoginBackoffMax()); err != nil {
				return fmt.Errorf("rate limits: %w", err)
			}
		}
		deps.Limits = limits
	}
	a.grpc = grpcapi.NewServer(deps)

	// The gateway calls the gRPC services in process, so REST calls pass
	// the same interceptors as gRPC ones, without a loopback hop.
	handler, err := httpapi.New(ctx, httpapi.Deps{
		Conn:     a.grpc.Channel,
		Ready:    a.readiness(),
		Draining: a.draining.Load,
		Gatherer: a.metrics,
		Metrics:  a.metrics,
		Log:      a.log,
		Pprof:    a.cfg.DebugPprof,
		UI:       web.Handler(),

		LogPerSecond:   a.cfg.LogAccessPerSecond,
		TracerProvider: a.tp,
	})
	if err != nil {
		return err
	}
	a.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          httpapi.ErrorLog(a.log, a.cfg.LogAccessPerSecond),
	}
	return nil
}

// readiness lists what /readyz pings in this mode.
func (a *App) readiness() map[string]httpapi.Checker {
	r := map[string]httpapi.Checker{"postgres": a.store}
	if a.redis != nil {
		r["redis"] = a.redis
	}
	if a.durability != nil {
		r["redis_aof"] = a.durability // fails while queue mode refuses orders
	}
	return r
}

// Close releases what New built, in the reverse order: the batcher (after storing the orders it holds), Redis,
// PostgreSQL and the listeners, then the tracing it started, sending the
// spans still buffered (for up to tracingFlushTimeout). Run calls it once everything has stopped;
// call it yourself only for an App you do not Run. Calls after the first
// return the first's result.
func (a *App) Close() error {
	a.closeOnce.Do(func() {
		var errs []error
		if a.batcher != nil {
			a.batcher.Close()
		}
		if a.redis != nil {
			a.redis.Close()
		}
		if a.store != nil {
			if a.beforeStoreClose != nil {
				a.beforeStoreClose()
			}
			a.store.Close()
		}
		for _, lis := range []net.Listener{a.httpLis, a.grpcLis} {
			// The servers close their listeners when they stop.
			if lis != nil {
				if err := lis.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
					errs = append(errs, fmt.Errorf("close %s: %w", lis.Addr(), err))
				}
			}
		}
		if a.tracing != nil {
			ctx, cancel := context.WithTimeout(context.Background(), tracingFlushTimeout)
			if err := a.tracing.Shutdown(ctx); err != nil {
				a.log.Warn("tracing shutdown", "err", err)
			}
			cancel()
		}
		a.closeErr = errors.Join(errs...)
	})
	return a.closeErr
}

// tracingFlushTimeout bounds how long Close waits for the spans still
// buffered to be sent.
const tracingFlushTimeout = 5 * time.Second

// Reconcile rebuilds the gate state of the sale's product from PostgreSQL
// (order.Service.Reconcile).
func (a *App) Reconcile(ctx context.Context, saleID uuid.UUID) (remaining, buyers int, err error) {
	return a.orders.Reconcile(ctx, saleID)
}

// ReconcileOpen rebuilds the gate state of every sale open now.
func (a *App) ReconcileOpen(ctx context.Context) error {
	return a.orders.ReconcileOpen(ctx, a.store)
}
