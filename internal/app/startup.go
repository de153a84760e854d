package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/postgres"
	"github.com/flashsale/flashsale/internal/redis"
)

// Back-off between attempts to reach a dependency at start: the first retry
// comes soon (a server that is just starting), later ones no more often than
// every maxRetryDelay. One attempt lasts at most attemptTimeout, so a server
// that does not answer at all still gets a line in the log now and then.
const (
	firstRetryDelay = 100 * time.Millisecond
	maxRetryDelay   = 2 * time.Second
	attemptTimeout  = 5 * time.Second
)

// await calls connect until it succeeds or ctx ends, backing off from
// firstRetryDelay, doubling up to maxRetryDelay. Each failure is logged
// with its cause, so whoever watches the start sees what it waits for: a
// server not up yet, or a Redis answering LOADING while it reads its AOF.
func await(ctx context.Context, log *slog.Logger, what string, connect func(context.Context) error) error {
	delay := firstRetryDelay
	var last error
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := connect(actx)
		cancel()
		if err == nil {
			if attempt > 1 {
				log.Info(what+" is up", "attempts", attempt)
			}
			return nil
		}
		// An attempt cut short by the deadline says less than the one before.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		if ctx.Err() == nil {
			log.Warn("waiting for "+what, "attempt", attempt, "retry_in", delay, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(delay):
			}
			delay = min(2*delay, maxRetryDelay)
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%s not ready when STARTUP_TIMEOUT_SECONDS ran out: %w", what, last)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
}

// connectPostgres opens the store once PostgreSQL answers.
func connectPostgres(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...postgres.Option) (*postgres.Store, error) {
	var store *postgres.Store
	err := await(ctx, log, "PostgreSQL", func(ctx context.Context) (err error) {
		store, err = postgres.New(ctx, cfg.DatabaseURL, opts...)
		return err
	})
	return store, err
}

// connectRedis connects once Redis answers PING (not LOADING).
func connectRedis(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...redis.Option) (*redis.Client, error) {
	var rc *redis.Client
	err := await(ctx, log, "Redis", func(ctx context.Context) (err error) {
		rc, err = redis.New(ctx, cfg.RedisURL, append(redisOptions(cfg), opts...)...)
		return err
	})
	if err == nil {
		logReplication(cfg, rc, log)
	}
	return rc, err
}

// redisOptions are the Redis client's settings from cfg: the key prefix,
// and in queue mode how many replicas must hold a queued order before it is
// acknowledged (ORDERS_QUEUE_MIN_REPLICAS; other modes acknowledge after
// COMMIT and wait for none).
func redisOptions(cfg config.Config) []redis.Option {
	opts := []redis.Option{redis.WithKeyPrefix(cfg.RedisKeyPrefix)}
	if cfg.OrderMode() == config.OrderModeQueue {
		opts = append(opts, redis.WithReplicas(cfg.OrdersQueueMinReplicas(), cfg.OrdersQueueReplicaTimeout()))
	}
	return opts
}

// logReplication says, in queue mode, what an acknowledgment waits for.
func logReplication(cfg config.Config, rc *redis.Client, log *slog.Logger) {
	if cfg.OrderMode() != config.OrderModeQueue {
		return
	}
	n, timeout := rc.MinReplicas()
	if n == 0 {
		log.Info("queue mode acknowledges an order once the Redis master has it (ORDERS_QUEUE_MIN_REPLICAS=0)",
			"cluster", rc.Cluster())
		return
	}
	log.Info("queue mode acknowledges an order once Redis replicas hold it; otherwise it answers ORDER_NOT_REPLICATED",
		"cluster", rc.Cluster(), "min_replicas", n, "timeout", timeout)
}
