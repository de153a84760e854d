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
//	<prefix>:rl:<name>:<key>              hash: a Limiter's token bucket (ip:<client IP>, signin-ip:<client IP>)
//	<prefix>:login:<account>              hash: a LoginBackoff's attempts and delay for one account
//	<prefix>:cache:<key>                  read-through cache entries; the catalog's are catalog:p:<product>,
//	                                      catalog:s:<sale>, catalog:ps:<product> (its sales) and
//	                                      catalog:v<version>:<list> (ProductList, SaleList pages)
//	<prefix>:catalog:version              integer: the version in the catalog's list keys, bumped by an admin's create
//
// TestKeysDocumented fails when a key the package writes is missing here, or
// a line here matches none.
//
// On Redis Cluster every script and multi-key command stays in one product's
// slot; only the registry of streams lives elsewhere, written by a command of
// its own. Workers read each product's stream on whichever master serves it.
//
// A sale's keys expire 24 hours after the sale ends, the product's with its
// last loaded sale's (PEXPIREAT). The stream has no TTL: a worker's Read
// deletes it, and drops it from the registry, once it is empty and the
// product's meta has expired, so no admitted order is lost to an expiry.
package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/rueidis"
	"go.opentelemetry.io/otel/trace"
)

// Client is a connection to Redis shared by the gate, the queue, the limiter
// and the cache. Client-side caching (RESP3 tracking) stays on. It talks to
// a single Redis or to a Redis Cluster, whichever the URL leads to.
type Client struct {
	rc      rueidis.Client
	prefix  string
	near    nearCache
	tp      trace.TracerProvider // nil: not traced
	metrics *clientMetrics
	// keyNames are the key names of recent products and sales, built once.
	keyNames keyNames

	// minReplicas is how many replicas must hold a queued order before it
	// is acknowledged, and before a worker writes it (WAIT); negative until
	// New has resolved "auto".
	minReplicas    int
	replicaTimeout time.Duration
}

// Option configures New.
type Option func(*Client)

// WithKeyPrefix puts every key under prefix instead of "fs"; tests use a
// random one each so they own their keys.
func WithKeyPrefix(prefix string) Option {
	return func(c *Client) { c.prefix = prefix }
}

// WithReplicas makes queue mode wait, up to timeout, until min replicas
// hold each order admitted (and each entry a worker reads) before it counts
// as acknowledged (see Gate.Admit and Queue.Read). A negative min means
// "auto": 1 on a Redis Cluster whose masters have replicas, else 0. The
// default is 0: nothing waits.
func WithReplicas(min int, timeout time.Duration) Option {
	return func(c *Client) { c.minReplicas, c.replicaTimeout = min, timeout }
}

// defaultReplicaTimeout bounds a WAIT when WithReplicas gives no timeout.
const defaultReplicaTimeout = 250 * time.Millisecond

// New connects to the Redis at redisURL and pings it: a single Redis
// (redis://[user:pass@]host:port/db), or a Redis Cluster, detected by
// asking the first node that answers; list more nodes of a cluster as
// redis://host:port?addr=host2:port2&addr=host3:port3 so that any of them
// gets the client in.
func New(ctx context.Context, redisURL string, opts ...Option) (*Client, error) {
	c := &Client{prefix: "fs", metrics: newClientMetrics(), keyNames: newKeyNames()}
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
	if c.replicaTimeout <= 0 {
		c.replicaTimeout = defaultReplicaTimeout
	}
	if c.minReplicas < 0 {
		if c.minReplicas, err = c.autoReplicas(ctx); err != nil {
			rc.Close()
			return nil, err
		}
	}
	return c, nil
}

// Cluster reports whether the client talks to a Redis Cluster.
func (c *Client) Cluster() bool { return c.rc.Mode() == rueidis.ClientModeCluster }

// MinReplicas is how many replicas must confirm a queued order (0: none),
// and how long a WAIT for them may take.
func (c *Client) MinReplicas() (int, time.Duration) { return c.minReplicas, c.replicaTimeout }

// autoReplicas is 1 on a cluster where some master has a replica, else 0.
// It reads CLUSTER NODES: CLUSTER SLOTS leaves out replicas that have not
// replicated anything yet, as on a cluster just created.
func (c *Client) autoReplicas(ctx context.Context) (int, error) {
	if !c.Cluster() {
		return 0, nil
	}
	// Every node is asked: one that joined a moment ago may not know the
	// replicas yet.
	var errs []error
	answered := false
	for addr, n := range c.rc.Nodes() {
		s, err := n.Do(ctx, n.B().ClusterNodes().Build()).ToString()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		answered = true
		for line := range strings.Lines(s) {
			// <id> <ip:port@bus> <flags> <master id> ...
			if f := strings.Fields(line); len(f) > 3 && f[3] != "-" {
				return 1, nil
			}
		}
	}
	if !answered {
		return 0, fmt.Errorf("redis cluster nodes: %w", errors.Join(errs...))
	}
	return 0, nil
}

// Ping checks that Redis answers. A Redis loading its data (after a
// restart, from its AOF) answers LOADING, so Ping fails until it has loaded:
// /readyz and the wait at start-up count it as not ready yet. On a cluster
// one node answering is enough: a shard without a master answers its own
// calls with CLUSTERDOWN, which callers get as Unavailable, while the other
// shards go on serving.
func (c *Client) Ping(ctx context.Context) error {
	if !c.Cluster() {
		if err := c.rc.Do(ctx, c.rc.B().Ping().Build()).Error(); err != nil {
			return fmt.Errorf("redis ping: %w", err)
		}
		return nil
	}
	var errs []error
	for addr, n := range c.rc.Nodes() {
		err := n.Do(ctx, n.B().Ping().Build()).Error()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return fmt.Errorf("redis ping: no cluster node answers: %w", errors.Join(errs...))
}

// exec runs a script, timed as flashsale_redis_script_seconds{script=name}
// and named for its span when traced.
func (c *Client) exec(ctx context.Context, name string, s *rueidis.Lua, keys, args []string) rueidis.RedisResult {
	ctx = c.scriptContext(ctx, name)
	start := time.Now()
	r := s.Exec(ctx, c.rc, keys, args)
	c.metrics.observeScript(name, time.Since(start))
	return r
}

// scriptContext names the script run within ctx for its span, when traced.
func (c *Client) scriptContext(ctx context.Context, name string) context.Context {
	if c.tp != nil && trace.SpanContextFromContext(ctx).IsSampled() {
		return context.WithValue(ctx, scriptKey{}, name)
	}
	return ctx
}

// dedicated runs fn on one of the pooled dedicated connections (see
// rueidis.Client.Dedicated); its commands are traced, as Do's are, when ctx
// holds a sampled span.
func (c *Client) dedicated(ctx context.Context, fn func(rueidis.DedicatedClient) error) error {
	rc := c.rc
	if s, ok := rc.(sampledOnly); ok {
		rc = s.pick(ctx)
	}
	return rc.Dedicated(fn)
}

// Close closes the connections.
func (c *Client) Close() {
	c.rc.Close()
}
