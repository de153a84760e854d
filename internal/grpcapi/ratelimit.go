package grpcapi

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

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
	limits Limits
	log    *slog.Logger

	mu    sync.Mutex
	perIP map[string]*ipBucket
}

type ipBucket struct {
	*rate.Limiter
	seen time.Time
}

// maxIPBuckets bounds the per-IP table; idle buckets are dropped past it.
const maxIPBuckets = 100_000

func newLimiter(l Limits, log *slog.Logger) *limiter {
	return &limiter{
		global: rate.NewLimiter(rate.Limit(l.GlobalRefill), l.GlobalCapacity),
		limits: l,
		log:    log,
		perIP:  map[string]*ipBucket{},
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
	if err := take(l.ipBucket(clientIP(ctx), now), now, "ip"); err != nil {
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

func (l *limiter) ipBucket(ip string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.perIP[ip]
	if !ok {
		if len(l.perIP) >= maxIPBuckets {
			for k, v := range l.perIP {
				if now.Sub(v.seen) > time.Minute {
					delete(l.perIP, k)
				}
			}
		}
		b = &ipBucket{Limiter: rate.NewLimiter(rate.Limit(l.limits.IPRefill), l.limits.IPCapacity)}
		l.perIP[ip] = b
	}
	b.seen = now
	return b.Limiter
}

// clientIP is the peer's address, or, when the peer is this host's gateway,
// the HTTP client's address it forwarded. A remote peer's x-forwarded-for is
// not trusted.
func clientIP(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return "unknown"
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		host = p.Addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		if xff := metadata.ValueFromIncomingContext(ctx, "x-forwarded-for"); len(xff) > 0 {
			first, _, _ := strings.Cut(xff[0], ",")
			return strings.TrimSpace(first)
		}
	}
	return host
}
