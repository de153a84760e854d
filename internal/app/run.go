package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/redis"
)

// task is a goroutine Run started: stop asks it to end, done is closed once
// it has.
type task struct {
	name string
	stop context.CancelFunc
	done chan struct{}
}

// start runs fn in a goroutine the App owns, on a context of its own under
// base; stopTasks cancels that context and waits for fn to return.
func (a *App) start(base context.Context, name string, fn func(context.Context)) {
	ctx, cancel := context.WithCancel(base)
	t := task{name: name, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		if a.taskEnded != nil {
			defer a.taskEnded(name)
		}
		fn(ctx)
	}()
	a.tasks = append(a.tasks, t)
}

// stopTasks stops the tasks newest first, each once the one started after
// it has returned: the workers before the watcher and the reconcile loop,
// and those before the user directory.
func (a *App) stopTasks() {
	for i := len(a.tasks) - 1; i >= 0; i-- {
		t := a.tasks[i]
		t.stop()
		<-t.done
		a.log.Debug("stopped", "task", t.name)
	}
	a.tasks = nil
}

// Run runs the App until ctx ends, then stops everything it started, in the
// reverse order, waits for each goroutine, and closes the App.
//
// serve (New): the user directory, the per-IP limit's reports to Redis
// (sync and queue modes, rate limits on), the reconcile loop and the Redis
// watcher (sync and queue modes), ORDERS_WORKER_CONCURRENCY queue workers,
// then the gRPC and HTTP servers. When ctx ends (SIGTERM) the servers drain
// first: /readyz and gRPC health fail at once, and they go on serving for
// SHUTDOWN_DRAIN_SECONDS, so that load balancers stop sending; then they
// stop accepting, end the streams, and finish the calls in flight (up to
// SHUTDOWN_TIMEOUT_SECONDS). Only then do the background goroutines stop,
// and the batcher store what it holds. A server that fails stops the other
// at once, without draining.
//
// worker (NewWorker): the Redis watcher and the queue workers, which finish
// the batch in hand when ctx ends. An App from Open runs nothing.
func (a *App) Run(ctx context.Context) (err error) {
	defer func() { err = errors.Join(err, a.Close()) }()
	defer a.stopTasks()
	// Background work must outlive ctx until its turn to stop comes.
	base := context.WithoutCancel(ctx)
	switch a.role {
	case roleServe:
		a.start(base, "user directory", func(ctx context.Context) { a.store.FollowUsers(ctx, a.log) })
		if a.ipLimits != nil {
			a.start(base, "ip limit sync", a.ipLimits.Run)
		}
		if a.gate != nil {
			a.start(base, "reconcile loop", a.reconcileLoop)
		}
		// After a Redis restart or failover serve rebuilds the gate state of
		// the open sales (of the products whose keys moved).
		a.startWatcher(base, a.reconcileMoved)
		a.startWorkers(base, a.cfg.OrdersWorkerConcurrency)
		return a.serve(ctx)
	case roleWorker:
		n := max(1, a.cfg.OrdersWorkerConcurrency)
		a.log.Info("order workers running", "workers", n)
		// The watcher re-checks persistence and logs a Redis restart; serve
		// reconciles, and the workers go on draining whatever the streams hold.
		a.startWatcher(base, nil)
		a.startWorkers(base, n)
		<-ctx.Done()
	}
	return nil
}

// serve runs the gRPC and HTTP servers until ctx ends or one of them fails,
// then stops both; it returns once both have stopped.
func (a *App) serve(ctx context.Context) error {
	errc := make(chan error, 2)
	var servers sync.WaitGroup
	defer servers.Wait()
	servers.Go(func() { errc <- a.grpc.Serve(a.grpcLis) })
	servers.Go(func() { errc <- a.http.Serve(a.httpLis) })
	a.log.Info("serving", "grpc", a.grpcLis.Addr().String(), "http", a.httpLis.Addr().String(), "order_mode", a.cfg.OrderMode())

	var serveErr error
	select {
	case <-ctx.Done():
		serveErr = a.drain(errc)
	case serveErr = <-errc:
		a.log.Error("server failed; shutting down", "err", serveErr)
		a.draining.Store(true)
		a.grpc.Health.Shutdown()
	}
	a.stopServers()
	if errors.Is(serveErr, http.ErrServerClosed) || errors.Is(serveErr, grpc.ErrServerStopped) {
		serveErr = nil
	}
	return serveErr
}

// drain fails /readyz and gRPC health (NOT_SERVING), and keeps serving for
// SHUTDOWN_DRAIN_SECONDS, or until a server fails: load balancers see the
// server leave and stop sending it calls, while those they send meanwhile
// are still answered. It returns the error of a server that failed.
func (a *App) drain(errc <-chan error) error {
	d := a.cfg.ShutdownDrain()
	a.draining.Store(true)
	a.grpc.Health.Shutdown()
	// Each REST response now closes its connection, so clients reconnect,
	// through the load balancer, instead of keeping this server.
	a.http.SetKeepAlivesEnabled(false)
	a.log.Info("shutting down: draining, /readyz and health fail while still serving", "drain", d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case err := <-errc:
		a.log.Error("server failed while draining", "err", err)
		return err
	}
}

// stopServers stops accepting and waits for the calls in flight, REST first
// (its calls go through the gRPC server), for up to SHUTDOWN_TIMEOUT_SECONDS
// in all; calls still running then are cancelled, and waited for.
func (a *App) stopServers() {
	a.log.Info("shutting down: no longer accepting; finishing the calls in flight", "timeout", a.cfg.ShutdownTimeout())
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout())
	defer cancel()
	// Watchers never end by themselves: end them (their REST ones too,
	// which go through the gRPC server), so the servers need not wait.
	a.grpc.EndStreams()
	if err := a.http.Shutdown(sctx); err != nil {
		a.log.Warn("REST calls still in flight when SHUTDOWN_TIMEOUT_SECONDS ran out; closing their connections", "err", err)
		if err := a.http.Close(); err != nil {
			a.log.Warn("http close", "err", err)
		}
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		a.grpc.GracefulStop()
	}()
	select {
	case <-stopped:
	case <-sctx.Done():
		a.log.Warn("gRPC calls still in flight when SHUTDOWN_TIMEOUT_SECONDS ran out; cancelling them")
		a.grpc.Stop() // waits for their handlers (grpc.WaitForHandlers)
		<-stopped
	}
}

// reconcileLoop rebuilds the gate state of every open sale from PostgreSQL
// now and then every RECONCILE_INTERVAL_SECONDS, until ctx ends.
func (a *App) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.ReconcileInterval())
	defer t.Stop()
	for {
		if err := a.orders.ReconcileOpen(ctx, a.store); err != nil && ctx.Err() == nil {
			a.log.Warn("reconcile", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// startWorkers runs n queue workers (none outside queue mode) as one task:
// stopping it stops them all at once, each after the batch in hand.
func (a *App) startWorkers(base context.Context, n int) {
	if a.queue == nil || n <= 0 {
		return
	}
	host, err := os.Hostname()
	if err != nil {
		// Consumer names must differ between processes; the pid alone may not.
		a.log.Warn("no host name for the queue consumers' names", "err", err)
	}
	a.start(base, "order workers", func(ctx context.Context) {
		var wg sync.WaitGroup
		for i := range n {
			consumer := fmt.Sprintf("%s-%d-%d", host, os.Getpid(), i)
			w := order.NewWorker(a.queue, a.batches, a.gate, consumer, a.cfg.OrdersBatchSize, a.cfg.OrdersClaimIdle(), a.log,
				order.WithWorkerTracerProvider(a.tp))
			wg.Go(func() {
				if err := w.Run(ctx); err != nil && ctx.Err() == nil {
					a.log.Error("order worker stopped", "consumer", consumer, "err", err)
				}
			})
		}
		wg.Wait()
	})
}

// startWatcher runs a redis.Watcher (nothing in direct mode): it re-checks
// persistence (queue mode) every few seconds, and after a Redis restart or
// failover, which may have lost some of the gate's state, it re-checks
// persistence and calls reconcile (when not nil) until that succeeds: with
// moved nil after a single Redis restarted (every product), with the slots
// whose master changed on a Redis Cluster.
func (a *App) startWatcher(base context.Context, reconcile func(ctx context.Context, moved *redis.Moved) error) {
	if a.redis == nil {
		return
	}
	retrying := false // only the watcher's goroutine uses it
	after := func(ctx context.Context, moved *redis.Moved, what string) error {
		if !retrying {
			a.log.Warn(what)
		}
		if reconcile == nil {
			return nil
		}
		err := reconcile(ctx, moved)
		retrying = err != nil
		if err != nil {
			a.log.Warn("reconcile after the Redis restart or failover failed; retrying", "err", err)
			return err
		}
		a.log.Info("reconciled the open sales after the Redis restart or failover")
		return nil
	}
	w := redis.NewWatcher(a.redis, redis.WatchConfig{
		Durability: a.durability,
		Log:        a.log,
		OnRestart: func(ctx context.Context) error {
			return after(ctx, nil, "Redis restarted or failed over (its run_id changed)")
		},
		OnFailover: func(ctx context.Context, moved *redis.Moved) error {
			return after(ctx, moved, fmt.Sprintf("Redis Cluster: the master of %d slots changed or restarted", moved.Len()))
		},
	})
	a.start(base, "redis watcher", w.Run)
}

// reconcileMoved rebuilds, after a Redis restart or failover, the gate
// state of the open sales of the products whose keys moved (every one
// when moved is nil): an admission the old master took and did not
// replicate is gone from the new one, though its order may be in
// PostgreSQL.
func (a *App) reconcileMoved(ctx context.Context, moved *redis.Moved) error {
	if moved == nil {
		return a.orders.ReconcileOpen(ctx, a.store)
	}
	return a.orders.ReconcileOpenWhere(ctx, a.store, moved.Product)
}
