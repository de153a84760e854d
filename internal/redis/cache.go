package redis

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"golang.org/x/sync/singleflight"
)

// Cache is a read-through cache for hot reads (the catalog), kept in Redis
// under <prefix>:cache: and served from this process's memory through
// client-side caching. Invalidate deletes keys in Redis, which then pushes the
// invalidation to every process holding them.
type Cache struct {
	c      *Client
	group  singleflight.Group
	hits   atomic.Uint64
	misses atomic.Uint64
}

// cached is a decoded entry: found false is a remembered "not found".
type cached struct {
	value any
	found bool
}

// NewCache returns a cache over c.
func NewCache(c *Client) *Cache {
	return &Cache{c: c}
}

// loadTimeout bounds one shared load (a miss's read of the store and the
// SET that keeps it), which no single caller's context may cut short.
const loadTimeout = 5 * time.Second

// Stored values carry a one-byte tag: a value, or a remembered "not found".
const (
	tagValue    = "v"
	tagNotFound = "n"
)

func (k *Cache) key(key string) string { return k.c.prefix + ":cache:" + key }

// Get returns the value under key decoded by decode, found false when load
// said it does not exist. On a miss, load runs once per key across
// concurrent callers in this process (singleflight), with a context that
// none of them can cancel, bounded by loadTimeout; a found value is kept
// for ttl (more than zero), a not-found for negativeTTL (not at all when
// zero). The decoded value of a key read again is served from this
// process's memory and shared between callers, which must not modify it. A
// value stored while an Invalidate of the same key is in flight may survive
// it until ttl; keep ttl short.
func (k *Cache) Get(ctx context.Context, key string, ttl, negativeTTL time.Duration, load func(ctx context.Context) ([]byte, bool, error), decode func([]byte) (any, error)) (any, bool, error) {
	full := k.key(key)
	v, found, _, err := k.c.cachedGet(ctx, full, ttl, func(s string) (any, error) {
		if len(s) == 0 || s[:1] == tagNotFound {
			return cached{}, nil
		}
		d, err := decode([]byte(s[1:]))
		return cached{value: d, found: true}, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("cache get %s: %w", key, err)
	}
	if found {
		k.hits.Add(1)
		e := v.(cached)
		return e.value, e.found, nil
	}
	k.misses.Add(1)
	r, err, _ := k.group.Do(full, func() (any, error) {
		// Every caller waiting for this key shares the load, so none of
		// them may cancel it: one caller going away must not fail the
		// rest. The load keeps the first caller's values and is bounded by
		// loadTimeout instead.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
		defer cancel()
		raw, found, err := load(ctx)
		if err != nil {
			return nil, err
		}
		var set rueidis.Completed
		store := true
		switch {
		case found && ttl > 0:
			set = k.c.rc.B().Set().Key(full).Value(tagValue + string(raw)).Px(ttl).Build()
		case !found && negativeTTL > 0:
			set = k.c.rc.B().Set().Key(full).Value(tagNotFound).Px(negativeTTL).Build()
		default:
			store = false
		}
		if store {
			if err := k.c.rc.Do(ctx, set).Error(); err != nil {
				return nil, fmt.Errorf("cache set %s: %w", key, err)
			}
		}
		if !found {
			return cached{}, nil
		}
		d, err := decode(raw)
		return cached{value: d, found: true}, err
	})
	if err != nil {
		return nil, false, err
	}
	e := r.(cached)
	return e.value, e.found, nil
}

// Invalidate deletes the keys; Redis pushes the invalidation to every
// process that cached them.
func (k *Cache) Invalidate(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	full := make([]string, len(keys))
	for i, key := range keys {
		full[i] = k.key(key)
	}
	// One DEL per key: on Cluster the keys may live in different slots.
	cmds := make(rueidis.Commands, len(full))
	for i, f := range full {
		cmds[i] = k.c.rc.B().Del().Key(f).Build()
	}
	for _, r := range k.c.rc.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("cache invalidate: %w", err)
		}
	}
	// Redis pushes the invalidation asynchronously, so this process's own
	// copy may outlive the DEL for a moment; wait for it to go, so the
	// caller reads its own write.
	for _, f := range full {
		awaitPushed(ctx, func() bool {
			if _, ok := k.c.near.get(f); ok {
				return false
			}
			return !k.c.rc.DoCache(ctx, k.c.rc.B().Get().Key(f).Cache(), time.Second).IsCacheHit()
		})
	}
	return nil
}

// awaitPushed polls done until it holds, for at most pushWait: the time an
// invalidation takes to arrive on an idle connection is well under that.
func awaitPushed(ctx context.Context, done func() bool) {
	deadline := time.Now().Add(pushWait)
	for !done() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
}

// pushWait bounds awaitPushed.
const pushWait = 200 * time.Millisecond

// Stats counts Gets answered from the cache (hits, in this process's memory
// or in Redis) and Gets that ran a load (misses, counted per caller).
func (k *Cache) Stats() (hits, misses uint64) {
	return k.hits.Load(), k.misses.Load()
}
