// Package redis is the Redis side of the fast order path, on rueidis: the
// admission gate (one Lua script per operation), the sale-status key read
// through client-side caching, the per-product order streams, rate limiters
// and a login backoff shared by all processes, and a small read-through
// cache.
//
// Stock is the product's, shared by all its sales, so every key of one
// product and of its sales shares the hash tag {p:<product id>}: each script
// touches a single slot and runs unchanged on Redis Cluster.
//
//	<prefix>:{p:<id>}:meta                hash: step, expire_ms, generation
//	<prefix>:{p:<id>}:stock               integer: units the gate may still admit
//	<prefix>:{p:<id>}:status              string: stock rounded up to the publish step
//	<prefix>:{p:<id>}:stream              stream of admitted orders (queue mode)
//	<prefix>:{p:<id>}:inflight            hash: order id -> "sale|user|created_ms", admitted orders being written (sync mode)
//	<prefix>:{p:<id>}:s:<sale>:meta       hash: starts_us, ends_us
//	<prefix>:{p:<id>}:s:<sale>:buyers     hash: user id -> admitted order id
//	<prefix>:{p:<id>}:s:<sale>:rejected   hash: user id -> rejected order id
//	<prefix>:streams                      set of the stream keys workers read
//	<prefix>:rl:<user id>                 hash: the user's token bucket
//	<prefix>:rl:<name>:<key>              hash: a Limiter's token bucket (signin-ip:<client IP>)
//	<prefix>:login:<account>              hash: a LoginBackoff's attempts and delay for one account
//	<prefix>:cache:<key>                  read-through cache entries; the catalog's are catalog:p:<product>,
//	                                      catalog:s:<sale>, catalog:ps:<product> (its sales) and
//	                                      catalog:v<version>:<list> (ProductList, SaleList pages)
//	<prefix>:catalog:version              integer: the version in the catalog's list keys, bumped by an admin's create
//
// TestKeysDocumented fails when a key the package writes is missing here, or
// a line here matches none.
//
// A sale's keys expire 24 hours after the sale ends, the product's with its
// last loaded sale's (PEXPIREAT). The stream has no TTL: a worker's Read
// deletes it, and drops it from the registry, once it is empty and the
// product's meta has expired, so no admitted order is lost to an expiry.
package redis

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/rueidis"
	"go.opentelemetry.io/otel/trace"
)

// Client is a connection to Redis shared by the gate, the queue, the limiter
// and the cache. Client-side caching (RESP3 tracking) stays on.
type Client struct {
	rc      rueidis.Client
	prefix  string
	near    nearCache
	tp      trace.TracerProvider // nil: not traced
	metrics *clientMetrics
}

// Option configures New.
type Option func(*Client)

// WithKeyPrefix puts every key under prefix instead of "fs"; tests use a
// random one each so they own their keys.
func WithKeyPrefix(prefix string) Option {
	return func(c *Client) { c.prefix = prefix }
}

// New connects to the Redis at redisURL (redis://[user:pass@]host:port/db)
// and pings it.
func New(ctx context.Context, redisURL string, opts ...Option) (*Client, error) {
	c := &Client{prefix: "fs", metrics: newClientMetrics()}
	for _, o := range opts {
		o(c)
	}
	opt, err := rueidis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	// Fail fast when Redis is unreachable: a read retried until the caller's
	// deadline would hold every order attempt (most have none) while Redis is
	// down; the caller answers Unavailable and the client retries instead.
	opt.DisableRetry = true
	opt.OnInvalidations = c.near.invalidate
	var rc rueidis.Client
	if c.tp != nil {
		rc, err = newTracedClient(opt, c.tp)
	} else {
		rc, err = rueidis.NewClient(opt)
	}
	if err != nil {
		return nil, fmt.Errorf("redis connect: %w", err)
	}
	c.rc = rc
	if err := c.Ping(ctx); err != nil {
		rc.Close()
		return nil, err
	}
	return c, nil
}

// Ping checks that Redis answers. A Redis loading its data (after a
// restart, from its AOF) answers LOADING, so Ping fails until it has loaded:
// /readyz and the wait at start-up count it as not ready yet.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.rc.Do(ctx, c.rc.B().Ping().Build()).Error(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// exec runs a script, timed as flashsale_redis_script_seconds{script=name}
// and named for its span when traced.
func (c *Client) exec(ctx context.Context, name string, s *rueidis.Lua, keys, args []string) rueidis.RedisResult {
	if c.tp != nil && trace.SpanContextFromContext(ctx).IsSampled() {
		ctx = context.WithValue(ctx, scriptKey{}, name)
	}
	start := time.Now()
	r := s.Exec(ctx, c.rc, keys, args)
	c.metrics.observeScript(name, time.Since(start))
	return r
}

// Close closes the connections.
func (c *Client) Close() {
	c.rc.Close()
}
