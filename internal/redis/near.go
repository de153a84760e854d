package redis

import (
	"context"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// nearCache keeps the decoded values of hot keys read through client-side
// caching (a product's sales, a sale's status), so that a read rueidis would
// answer from its own cache skips building the command, the lookup and the
// decoding as well: about a tenth of the server under a sale rush. Redis's
// invalidations reach it through rueidis's OnInvalidations, right after
// rueidis drops its own copy; a lost connection clears it (rueidis reports
// that as an invalidation of everything). An entry also ends when
// rueidis's copy would (the read's TTL, or the key's own expiry).
type nearCache struct {
	mu sync.RWMutex
	m  map[string]nearEntry
	// epoch counts invalidations. A value read before an invalidation of its
	// key may be older than it, so put keeps a value only when no
	// invalidation came in since the read began (see start).
	epoch uint64
}

type nearEntry struct {
	val     any
	expires time.Time
}

// cachedGet reads key through client-side caching and returns it decoded by
// decode: from the near cache when it holds the key, else by DoCache (with
// ttl), keeping the decoded value near when rueidis holds the key. found is
// false when the key does not exist; hit, that the answer came from this
// process's memory.
func (c *Client) cachedGet(ctx context.Context, key string, ttl time.Duration, decode func(string) (any, error)) (v any, found, hit bool, err error) {
	if v, ok := c.near.get(key); ok {
		return v, true, true, nil
	}
	epoch := c.near.start()
	res := c.rc.DoCache(ctx, c.rc.B().Get().Key(key).Cache(), ttl)
	s, err := res.ToString()
	if rueidis.IsRedisNil(err) && res.IsCacheHit() {
		// A cached "no such key" may predate a write whose invalidation is
		// still on its way; ask Redis itself.
		res = c.rc.Do(ctx, c.rc.B().Get().Key(key).Build())
		s, err = res.ToString()
	}
	if rueidis.IsRedisNil(err) {
		return nil, false, false, nil
	}
	if err != nil {
		return nil, false, false, err
	}
	if v, err = decode(s); err != nil {
		return nil, false, false, err
	}
	if res.IsCacheHit() {
		// Only what rueidis holds, and so Redis tracks, is kept nearer.
		c.near.put(key, v, res, ttl, epoch)
	}
	return v, true, res.IsCacheHit(), nil
}

// maxNear bounds the entries kept; past it the cache starts over.
const maxNear = 100_000

// get returns key's value if it is held and current.
func (n *nearCache) get(key string) (any, bool) {
	n.mu.RLock()
	e, ok := n.m[key]
	n.mu.RUnlock()
	if !ok || !time.Now().Before(e.expires) {
		return nil, false
	}
	return e.val, true
}

// start is called before a read whose result may be put: put keeps it only
// if no invalidation arrived in between.
func (n *nearCache) start() uint64 {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.epoch
}

// put keeps val for key until the client-side cache entry res came from
// expires (ttl from now when rueidis does not say), unless an invalidation
// arrived since start returned epoch.
func (n *nearCache) put(key string, val any, res rueidis.RedisResult, ttl time.Duration, epoch uint64) {
	expires := time.Now().Add(ttl)
	if at := res.CachePXAT(); at > 0 && time.UnixMilli(at).Before(expires) {
		expires = time.UnixMilli(at)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.epoch != epoch {
		return
	}
	if n.m == nil || len(n.m) >= maxNear {
		n.m = make(map[string]nearEntry)
	}
	n.m[key] = nearEntry{val: val, expires: expires}
}

// invalidate is rueidis's OnInvalidations: it drops the keys, or everything
// when keys is nil.
func (n *nearCache) invalidate(keys []rueidis.RedisMessage) {
	if keys == nil {
		n.drop(nil, true)
		return
	}
	names := make([]string, 0, len(keys))
	for _, k := range keys {
		if s, err := k.ToString(); err == nil {
			names = append(names, s)
		}
	}
	n.drop(names, false)
}

// drop forgets keys, or every key.
func (n *nearCache) drop(keys []string, all bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.epoch++
	if all {
		clear(n.m)
		return
	}
	for _, k := range keys {
		delete(n.m, k)
	}
}
