package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/grpcapi"
	"github.com/flashsale/flashsale/internal/httpapi"
	"github.com/flashsale/flashsale/internal/postgres"
	"github.com/flashsale/flashsale/internal/telemetry"
	"github.com/flashsale/flashsale/internal/web"
)

func serve(ctx context.Context, cfg config.Config, log *slog.Logger, tp trace.TracerProvider) error {
	grpcLis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("grpc listen: %w", err)
	}
	httpLis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		grpcLis.Close()
		return fmt.Errorf("http listen: %w", err)
	}
	return runServer(ctx, cfg, log, grpcLis, httpLis, tp)
}

// runServer wires the API over the given listeners and serves until ctx is
// done, then shuts down gracefully: health NOT_SERVING, drain REST and gRPC
// calls in flight (up to SHUTDOWN_TIMEOUT_SECONDS), close the pools. A
// non-nil tp traces calls, queries and Redis commands.
func runServer(ctx context.Context, cfg config.Config, log *slog.Logger, grpcLis, httpLis net.Listener, tp trace.TracerProvider) error {
	defer grpcLis.Close()
	defer httpLis.Close()
	if cfg.GeneratedSecret {
		log.Warn("FLASHSALE_DEV=true and no AUTH_JWT_SECRET: using a random secret; tokens die with this process")
	}
	// PostgreSQL and Redis may come up after us, or Redis may be loading
	// its AOF after a restart: wait for them, up to STARTUP_TIMEOUT_SECONDS.
	startCtx, started := startupContext(ctx, cfg)
	defer started()
	store, err := connectPostgres(startCtx, cfg, log, postgres.WithTracerProvider(tp))
	if err != nil {
		return err
	}
	defer store.Close()

	tokens := auth.NewTokens([]byte(cfg.JWTSecret), cfg.TokenTTL(), now)
	hasher := auth.NewHasher(cfg.AuthHashConcurrency, cfg.AuthHashWait())
	users := auth.NewService(store, tokens, now, log, auth.WithHasher(hasher))
	if cfg.AdminEmail != "" {
		if _, err := users.EnsureAdmin(ctx, cfg.AdminEmail, cfg.AdminPassword); err != nil {
			return fmt.Errorf("admin from ADMIN_EMAIL: %w", err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	orders, err := newOrderPath(startCtx, cfg, store, log, reg, tp)
	if err != nil {
		return err
	}
	defer orders.close()
	if err := orders.requirePersistence(startCtx, cfg, log); err != nil {
		return err
	}
	telemetry.RegisterMetrics(reg, telemetry.Sources{
		Store: store, Hasher: hasher, Redis: orders.redis, Queue: orders.queue, Sales: orders.sales,
	})
	started()
	clientIP := grpcapi.NewClientIP(cfg.TrustedProxies()) // shared by the gateway and the gRPC server
	deps := grpcapi.Deps{
		Auth: users, Products: orders.store, Sales: orders.store, Orders: orders.service,
		Now: now, Log: log, Metrics: reg, ClientIP: clientIP,
		WatchMaxStreams: cfg.WatchMaxStreams, WatchMaxStreamsPerIP: cfg.WatchMaxStreamsPerIP,
		TracerProvider: tp,
	}
	if orders.gate != nil {
		deps.Status, deps.Reconciler = orders.status, orders
	}
	if !cfg.RLDisabled {
		perUser, err := orders.userLimiter(cfg)
		if err != nil {
			return fmt.Errorf("rate limits: %w", err)
		}
		authIP, logins, err := orders.authLimiters(cfg)
		if err != nil {
			return fmt.Errorf("rate limits: %w", err)
		}
		deps.Limits = &grpcapi.Limits{
			GlobalCapacity: cfg.RLGlobalCapacity, GlobalRefill: cfg.RLGlobalRefill,
			IPCapacity: cfg.RLIPCapacity, IPRefill: cfg.RLIPRefill,
			Users:          perUser,
			AuthIPCapacity: cfg.RLAuthIPCapacity, AuthIPRefill: cfg.RLAuthIPRefill,
			AuthIP: authIP, Logins: logins,
		}
	}
	gs := grpcapi.NewServer(deps)

	bg, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	go store.FollowUsers(bg, log)
	go orders.reconcileLoop(bg, store, cfg.ReconcileInterval(), log)
	workersDone := orders.runWorkers(bg, cfg.OrdersWorkerConcurrency, cfg.OrdersBatchSize, cfg.OrdersClaimIdle(), log)
	// The reconcile goes through a func value: what the watcher needs is
	// "rebuild the open sales", whatever the order service's shape.
	watchDone := orders.watchRedis(bg, func(ctx context.Context) error { return orders.service.ReconcileOpen(ctx, store) }, log)

	// The gateway reaches the gRPC server over loopback, so REST calls pass
	// the same interceptors as gRPC ones.
	conn, err := grpc.NewClient(loopback(grpcLis.Addr()),
		append(grpcapi.TraceDialOptions(tp), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		return fmt.Errorf("gateway dial: %w", err)
	}
	defer conn.Close()
	handler, err := httpapi.New(ctx, httpapi.Deps{
		Conn:     conn,
		Ready:    orders.ready(store),
		Gatherer: reg,
		Metrics:  reg,
		Log:      log,
		Pprof:    cfg.DebugPprof,
		UI:       web.Handler(),
		ClientIP: clientIP,

		TracerProvider: tp,
	})
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}

	errc := make(chan error, 2)
	go func() { errc <- gs.Serve(grpcLis) }()
	go func() { errc <- hs.Serve(httpLis) }()
	log.Info("serving", "grpc", grpcLis.Addr().String(), "http", httpLis.Addr().String(), "order_mode", cfg.OrderMode())

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	log.Info("shutting down")
	gs.Health.Shutdown()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout())
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-sctx.Done():
		gs.Stop()
	}
	stopBackground()
	<-workersDone
	<-watchDone
	if errors.Is(serveErr, http.ErrServerClosed) || errors.Is(serveErr, grpc.ErrServerStopped) {
		serveErr = nil
	}
	return serveErr
}

// loopback is the address to dial a listener on this host, even when it
// listens on all interfaces (":9090").
func loopback(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && (ta.IP == nil || ta.IP.IsUnspecified()) {
		return fmt.Sprintf("127.0.0.1:%d", ta.Port)
	}
	return a.String()
}
