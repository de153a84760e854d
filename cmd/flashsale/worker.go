package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/postgres"
)

// worker writes queued orders (ORDER_MODE=queue) to PostgreSQL with
// ORDERS_WORKER_CONCURRENCY consumers (at least one) until interrupted.
func worker(ctx context.Context, cfg config.Config, log *slog.Logger, tp trace.TracerProvider) error {
	if cfg.OrderMode() != config.OrderModeQueue {
		return errors.New("worker: set ORDER_MODE=queue (or ORDERS_USE_QUEUE=true); other modes have no queue")
	}
	_, p, closeAll, err := connectOrderPath(ctx, cfg, log, tp)
	if err != nil {
		return err
	}
	defer closeAll()
	if err := p.requirePersistence(ctx, cfg, log); err != nil {
		return err
	}
	n := max(1, cfg.OrdersWorkerConcurrency)
	log.Info("order workers running", "workers", n)
	// The watcher re-checks persistence and logs a Redis restart; serve
	// reconciles, and the workers go on draining whatever the streams hold.
	watchDone := p.watchRedis(ctx, nil, log)
	<-p.runWorkers(ctx, n, cfg.OrdersBatchSize, cfg.OrdersClaimIdle(), log)
	<-watchDone
	return nil
}

// reconcile rebuilds the gate state of one sale, or of every open sale,
// from PostgreSQL (after a Redis loss, say).
func reconcile(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, out io.Writer) error {
	if cfg.OrderMode() == config.OrderModeDirect {
		return errors.New("reconcile: ORDER_MODE=direct keeps no gate state")
	}
	store, p, closeAll, err := connectOrderPath(ctx, cfg, log, nil)
	if err != nil {
		return err
	}
	defer closeAll()
	if len(args) == 0 {
		if err := p.service.ReconcileOpen(ctx, store); err != nil {
			return err
		}
		fmt.Fprintln(out, "reconciled every open sale")
		return nil
	}
	id, err := uuid.Parse(args[0])
	if err != nil {
		return fmt.Errorf("reconcile: %q is not a sale id", args[0])
	}
	remaining, buyers, err := p.service.Reconcile(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "sale %s: %d left, %d buyers\n", id, remaining, buyers)
	return nil
}

// connectOrderPath opens the store and the order path of cfg's mode for a
// command that serves no API (its metrics go nowhere), waiting for
// PostgreSQL and Redis up to STARTUP_TIMEOUT_SECONDS; closeAll closes both.
// A non-nil tp traces the batches written, their queries and scripts.
func connectOrderPath(ctx context.Context, cfg config.Config, log *slog.Logger, tp trace.TracerProvider) (*postgres.Store, *orderPath, func(), error) {
	startCtx, started := startupContext(ctx, cfg)
	defer started()
	store, err := connectPostgres(startCtx, cfg, log, postgres.WithTracerProvider(tp))
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := newOrderPath(startCtx, cfg, store, log, prometheus.NewRegistry(), tp)
	if err != nil {
		store.Close()
		return nil, nil, nil, err
	}
	return store, p, func() { p.close(); store.Close() }, nil
}
