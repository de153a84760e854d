package grpcapi

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/auth"
)

// UserLimiter limits one user's order attempts across every process (Redis).
type UserLimiter interface {
	Allow(ctx context.Context, userID uuid.UUID) (ok bool, retryAfter time.Duration, err error)
}

// Limits are the token buckets in front of the API. Global and per-IP
// buckets live in this process; the per-user order bucket is shared.
type Limits struct {
	GlobalCapacity int
	GlobalRefill   float64 // tokens per second
	IPCapacity     int
	IPRefill       float64
	// Users limits PlaceOrder attempts per user; nil for none.
	Users UserLimiter
}

type limiter struct {
	global *rate.Limiter
	perIP  *buckets
	limits Limits
	ips    *ClientIP
	log    *slog.Logger
}

// ipTableSize bounds the per-IP table: about 200 bytes a bucket, so 20 MB
// when full. Past it the least recently seen address is forgotten.
const ipTableSize = 100_000

func newLimiter(l Limits, ips *ClientIP, log *slog.Logger) *limiter {
	return &limiter{
		global: rate.NewLimiter(rate.Limit(l.GlobalRefill), l.GlobalCapacity),
		perIP:  newBuckets(ipTableSize, l.IPCapacity, l.IPRefill),
		limits: l,
		ips:    ips,
		log:    log,
	}
}

// unary applies the global and per-IP buckets to every flashsale call (not
// health or reflection), and the per-user bucket to PlaceOrder. It runs
// after authentication, so the caller is known.
func (l *limiter) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !strings.HasPrefix(info.FullMethod, "/flashsale.") {
		return handler(ctx, req)
	}
	now := time.Now()
	if err := take(l.global, now, "global"); err != nil {
		return nil, toStatus(ctx, l.log, err)
	}
	if err := take(l.perIP.get(limitKey(l.ips.fromContext(ctx))), now, "ip"); err != nil {
		return nil, toStatus(ctx, l.log, err)
	}
	if info.FullMethod == flashsalev1.OrderService_PlaceOrder_FullMethodName && l.limits.Users != nil {
		if c, ok := auth.CallerFrom(ctx); ok {
			allowed, wait, err := l.limits.Users.Allow(ctx, c.UserID)
			if err != nil {
				// Redis trouble must not stop orders: the gate has its own answer.
				l.log.WarnContext(ctx, "user rate limit unavailable", "err", err)
			} else if !allowed {
				return nil, toStatus(ctx, l.log, &rateLimited{scope: "user", retryAfter: wait})
			}
		}
	}
	return handler(ctx, req)
}

func take(b *rate.Limiter, now time.Time, scope string) error {
	r := b.ReserveN(now, 1)
	if !r.OK() {
		return &rateLimited{scope: scope, retryAfter: time.Second}
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return &rateLimited{scope: scope, retryAfter: d}
	}
	return nil
}

// buckets is a table of token buckets by key (a client address), bounded
// and O(1) per lookup: an expirable LRU holds at most size buckets, drops
// the least recently used one to make room, and forgets a key unseen for
// its ttl, by which time its bucket would have refilled anyway.
//
// (golang-lru's expirable LRU runs one goroutine per table, which it never
// stops; a limiter lives as long as its server, so that is one goroutine
// for the life of the process.)
type buckets struct {
	capacity int
	refill   rate.Limit

	mu  sync.Mutex // makes get's lookup-or-create one step
	lru *expirable.LRU[string, *rate.Limiter]
}

func newBuckets(size, capacity int, refill float64) *buckets {
	// A bucket idle this long is full again, so forgetting it changes
	// nothing; at least a minute so that a refill of many tokens a second
	// does not make the table churn.
	ttl := max(time.Minute, time.Duration(float64(capacity)/refill*float64(time.Second)))
	return &buckets{
		capacity: capacity,
		refill:   rate.Limit(refill),
		lru:      expirable.NewLRU[string, *rate.Limiter](size, nil, ttl),
	}
}

// get is key's bucket, a full one for a key not seen within the ttl.
func (b *buckets) get(key string) *rate.Limiter {
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.lru.Get(key)
	if !ok {
		l = rate.NewLimiter(b.refill, b.capacity)
	}
	// Add again even when found: the expirable LRU counts its ttl from the
	// last Add, and a key in use must not be dropped with an empty bucket
	// only to come back with a full one.
	b.lru.Add(key, l)
	return l
}

func (b *buckets) len() int { return b.lru.Len() }
