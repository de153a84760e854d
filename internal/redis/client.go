// Package redis is the Redis side of the fast order path, on rueidis: the
// admission gate (one Lua script per operation), the sale-status key read
// through client-side caching, the per-sale order streams, a per-user rate
// limiter shared by all processes and a small read-through cache.
//
// Every key of one sale shares the hash tag {sale:<id>}, so each script
// touches a single slot and runs unchanged on Redis Cluster:
//
//	<prefix>:{sale:<id>}:meta      hash: starts_us, ends_us, step, expire_ms, product
//	<prefix>:{sale:<id>}:stock     integer: units the gate may still admit
//	<prefix>:{sale:<id>}:buyers    hash: user id -> admitted order id
//	<prefix>:{sale:<id>}:rejected  hash: user id -> rejected order id
//	<prefix>:{sale:<id>}:status    string "<remaining rounded up>|<starts_us>|<ends_us>"
//	<prefix>:{sale:<id>}:stream    stream of admitted orders (queue mode)
//	<prefix>:streams               set of the stream keys workers read
//	<prefix>:rl:<user id>          hash: the user's token bucket
//	<prefix>:cache:<key>           read-through cache entries
//
// All of a sale's keys but the stream expire 24 hours after the sale ends
// (PEXPIREAT). The stream has no TTL: a worker's Read deletes it, and drops
// it from the registry, once it is empty and the sale's meta has expired, so
// no admitted order is lost to an expiry.
package redis

import (
	"context"
	"fmt"

	"github.com/redis/rueidis"
)

// Client is a connection to Redis shared by the gate, the queue, the limiter
// and the cache. Client-side caching (RESP3 tracking) stays on.
type Client struct {
	rc     rueidis.Client
	prefix string
	near   nearCache
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
	c := &Client{prefix: "fs"}
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
	rc, err := rueidis.NewClient(opt)
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

// Close closes the connections.
func (c *Client) Close() {
	c.rc.Close()
}
