package grpcapi

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/flashsale/internal/redis"
)

// SharedBuckets are token buckets by key shared by every process (Redis),
// taken from in batches for calls already let through (redis.Limiter).
type SharedBuckets interface {
	TakeMany(ctx context.Context, takes []redis.Take) []redis.Balance
}

// IPSharing makes the per-IP buckets hold across the fleet.
type IPSharing struct {
	// Buckets are the shared buckets, of the same capacity and refill.
	Buckets SharedBuckets
	// Every is how often the calls let through are reported (RL_IP_SYNC_MS).
	Every time.Duration
	// Log gets a line when the shared buckets start failing and when they
	// are back.
	Log *slog.Logger
}

// IPBuckets are the token buckets per client address in front of every
// flashsale call and stream open (RL_IP_*).
//
// A call is checked against this process's bucket for its address, in
// memory: the hot path makes no Redis round trip. Shared (IPSharing, the
// sync and queue modes), each process also counts the calls it lets
// through per address, and Run, every interval, takes them in one
// pipelined batch from the address's bucket in Redis, which the whole
// fleet takes from. The answer is what the fleet has left: an address whose
// shared bucket is empty is refused here until it holds a token again, and
// its bucket here is never fuller than the shared one.
//
// The shared bucket learns of calls up to an interval late, so the fleet
// may let an address through past it by what N processes let through in
// one interval before they hear: at most N × (capacity + refill ×
// interval) for an address their buckets hold full (a first burst), about
// N × refill × interval once they have heard from Redis. The calls past the
// bucket leave it in debt, which the address then waits out, so over time
// the fleet lets an address through at the refill rate, not N times it.
//
// While Redis fails, the calls go unreported and each process's own
// bucket is the limit (fail open to the per-process limit), logged once
// and counted in flashsale_rate_limit_sync_errors_total. Not shared (direct
// mode), the buckets are this process's alone.
type IPBuckets struct {
	capacity, refill float64
	table            *table[*ipBucket]

	share      IPSharing // zero when not shared
	syncErrors prometheus.Counter

	mu    sync.Mutex
	dirty []*ipBucket // buckets with calls not yet reported

	failing bool // only Run's goroutine uses it
}

// NewIPBuckets returns buckets of capacity tokens per client address,
// refilled at refill tokens a second, for at most ipTableSize addresses
// (the least recently seen dropped first); share, when not nil, makes them
// hold across the fleet once Run runs.
func NewIPBuckets(capacity int, refill float64, share *IPSharing) *IPBuckets {
	b := &IPBuckets{capacity: float64(capacity), refill: refill}
	b.table = newTable(ipTableSize, bucketTTL(capacity, refill), func(key string) *ipBucket {
		return &ipBucket{key: key, tokens: b.capacity}
	})
	if share != nil && share.Buckets != nil {
		b.share = *share
		if b.share.Log == nil {
			b.share.Log = slog.New(slog.DiscardHandler)
		}
		b.syncErrors = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flashsale_rate_limit_sync_errors_total",
			Help: "Reports of the calls let through per client IP to the shared per-IP buckets in Redis that failed; meanwhile each process limits IPs alone.",
		})
	}
	return b
}

// Collectors are the buckets' metrics: the failed reports, when shared.
func (b *IPBuckets) Collectors() []prometheus.Collector {
	if b.syncErrors == nil {
		return nil
	}
	return []prometheus.Collector{b.syncErrors}
}

// take lets one call from the address key through, or says how long until
// one may pass.
func (b *IPBuckets) take(key string, now time.Time) (ok bool, wait time.Duration) {
	e := b.table.get(key)
	ok, wait, mark := e.take(now, b.capacity, b.refill, b.share.Buckets != nil)
	if mark {
		b.mark(e)
	}
	return ok, wait
}

// mark lists e for the next report. Past ipTableSize listed buckets (a
// flood of addresses within one interval) it is left out; its calls are
// reported with its next one's.
func (b *IPBuckets) mark(e *ipBucket) {
	b.mu.Lock()
	if len(b.dirty) < ipTableSize {
		b.dirty = append(b.dirty, e)
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	e.mu.Lock()
	e.dirty = false
	e.mu.Unlock()
}

// syncTimeout bounds one report; a Redis that hangs delays the reports,
// never a call.
const syncTimeout = time.Second

// Run reports the calls let through, every interval, until ctx ends. It
// returns at once when the buckets are not shared.
func (b *IPBuckets) Run(ctx context.Context) {
	if b.share.Buckets == nil {
		return
	}
	t := time.NewTicker(b.share.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.sync(ctx)
	}
}

// sync takes the calls let through since the last report from the shared
// buckets, in one pipeline, and brings each bucket here down to its shared
// one's level. Calls whose report fails are forgotten: the fleet fails
// open to each process's bucket, rather than charging the addresses later
// for calls the fleet long since refilled for.
func (b *IPBuckets) sync(ctx context.Context) {
	b.mu.Lock()
	batch := b.dirty
	b.dirty = nil
	b.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	takes := make([]redis.Take, len(batch))
	for i, e := range batch {
		e.mu.Lock()
		takes[i] = redis.Take{Key: e.key, N: e.pending}
		e.pending, e.dirty = 0, false
		e.mu.Unlock()
	}
	sctx, cancel := context.WithTimeout(ctx, syncTimeout)
	balances := b.share.Buckets.TakeMany(sctx, takes)
	cancel()
	now := time.Now()
	var failed error
	for i, bal := range balances {
		if bal.Err != nil {
			failed = bal.Err
			continue
		}
		batch[i].apply(now, bal, b.capacity, b.refill)
	}
	switch {
	case failed != nil && ctx.Err() == nil:
		b.syncErrors.Inc()
		if !b.failing {
			b.failing = true
			b.share.Log.Warn("per-IP rate limit: the shared buckets in Redis are unavailable; each process limits client addresses alone until they are back", "err", failed)
		}
	case failed == nil && b.failing:
		b.failing = false
		b.share.Log.Info("per-IP rate limit: the shared buckets in Redis are back")
	}
}

// ipBucket is one address's token bucket in this process, and the calls
// it let through that the shared bucket has not heard of yet.
type ipBucket struct {
	key string // the address, for the reports

	mu     sync.Mutex
	tokens float64
	last   time.Time // when tokens was counted; zero: never
	// until is when the shared bucket, empty, holds a token again: calls
	// before then are refused.
	until   time.Time
	pending int64 // calls let through, not yet reported
	dirty   bool  // listed for the next report
}

// take takes a token, or says how long until there is one. Counted, a
// call let through is left for the next report; mark is true when the
// bucket must be listed for it.
func (e *ipBucket) take(now time.Time, capacity, refill float64, count bool) (ok bool, wait time.Duration, mark bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if now.Before(e.until) {
		return false, e.until.Sub(now), false
	}
	e.refillTo(now, capacity, refill)
	if e.tokens < 1 {
		return false, seconds((1 - e.tokens) / refill), false
	}
	e.tokens--
	if count {
		e.pending++
		mark, e.dirty = !e.dirty, true
	}
	return true, 0, mark
}

func (e *ipBucket) refillTo(now time.Time, capacity, refill float64) {
	switch {
	case e.last.IsZero():
		e.last = now
	case now.After(e.last):
		e.tokens = min(capacity, e.tokens+now.Sub(e.last).Seconds()*refill)
		e.last = now
	}
}

// apply brings the bucket down to its shared one's balance: empty, it
// refuses until the shared one holds a token, and then holds that one;
// else it holds no more than the shared one.
func (e *ipBucket) apply(now time.Time, bal redis.Balance, capacity, refill float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if bal.Wait > 0 {
		e.until = now.Add(bal.Wait)
		e.tokens, e.last = 1, e.until
		return
	}
	e.until = time.Time{}
	if e.last.After(now) {
		e.last = now
	}
	e.refillTo(now, capacity, refill)
	e.tokens = min(e.tokens, bal.Tokens)
}

// seconds is s seconds, rounded up to the nanosecond.
func seconds(s float64) time.Duration {
	return time.Duration(math.Ceil(s * float64(time.Second)))
}
