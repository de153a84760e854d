package main

import (
	"context"
	"log/slog"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/redis"
)

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

// reconcileMoved rebuilds, after a Redis restart or failover, the gate
// state of the open sales of the products whose keys moved (every one
// when moved is nil): an admission the old master took and did not
// replicate is gone from the new one, though its order may be in
// PostgreSQL.
func reconcileMoved(s *order.Service, store order.SaleLister) func(context.Context, *redis.Moved) error {
	return func(ctx context.Context, moved *redis.Moved) error {
		if moved == nil {
			return s.ReconcileOpen(ctx, store)
		}
		return s.ReconcileOpenWhere(ctx, store, moved.Product)
	}
}
