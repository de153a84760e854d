package grpcapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/auth"
)

// UserLimiter limits one user's order attempts across every process (Redis).
type UserLimiter interface {
	Allow(ctx context.Context, userID uuid.UUID) (ok bool, retryAfter time.Duration, err error)
}

// KeyLimiter is a token bucket per key shared by every process (Redis).
type KeyLimiter interface {
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
}

// LoginBackoff slows down guessing one account's password, across every
// process (Redis).
type LoginBackoff interface {
	// Begin counts a login attempt on account; a positive wait refuses it.
	Begin(ctx context.Context, account string) (wait time.Duration, err error)
	// Succeeded forgets the account's attempts.
	Succeeded(ctx context.Context, account string) error
}

// Limits are the token buckets in front of the API. The global bucket
// lives in this process: it sheds the load one process can take, so N
// processes take N times as much. The per-IP buckets hold across the fleet
// when IP is shared (IPBuckets); the per-user order bucket, the sign-in
// buckets and the login backoff are shared through Redis when it is there.
type Limits struct {
	GlobalCapacity int
	GlobalRefill   float64 // tokens per second
	IPCapacity     int
	IPRefill       float64
	// IP, when set, are the per-IP buckets (of IPCapacity and IPRefill),
	// shared or not; nil: buckets of this process's own.
	IP *IPBuckets
	// Users limits PlaceOrder attempts per user; nil for none.
	Users UserLimiter
	// AuthIPCapacity and AuthIPRefill are a second, stricter bucket per
	// client IP for Register and Login together, each of which costs a
	// password hash; 0 capacity for none.
	AuthIPCapacity int
	AuthIPRefill   float64
	// AuthIP, when set, keeps those buckets in Redis, shared by every
	// process; without it, or while it fails, they live in this process.
	AuthIP KeyLimiter
	// Logins, when set, backs off repeated logins to one account.
	Logins LoginBackoff
}

type limiter struct {
	global *rate.Limiter
	perIP  *IPBuckets
	authIP *buckets // nil: no sign-in limit
	limits Limits
	ips    *ClientIP
	log    *slog.Logger

	refused *refusals // counts each limiter's refusals
}

// ipTableSize bounds the per-IP table: about 200 bytes a bucket, so 20 MB
// when full. Past it the least recently seen address is forgotten.
const ipTableSize = 100_000

func newLimiter(l Limits, ips *ClientIP, log *slog.Logger, refused *refusals) *limiter {
	lim := &limiter{
		global: rate.NewLimiter(rate.Limit(l.GlobalRefill), l.GlobalCapacity),
		perIP:  l.IP,
		limits: l,
		ips:    ips,
		log:    log,

		refused: refused,
	}
	if lim.perIP == nil {
		lim.perIP = NewIPBuckets(l.IPCapacity, l.IPRefill, nil)
	}
	if l.AuthIPCapacity > 0 {
		lim.authIP = newBuckets(ipTableSize, l.AuthIPCapacity, l.AuthIPRefill)
	}
	return lim
}

// unary applies the global and per-IP buckets to every flashsale call (not
// health or reflection), the sign-in buckets and the login backoff to
// Register and Login, and the per-user bucket to PlaceOrder. It runs after
// authentication, so the caller is known.
func (l *limiter) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !strings.HasPrefix(info.FullMethod, "/flashsale.") {
		return handler(ctx, req)
	}
	now := time.Now()
	if err := l.take(l.global, now, "global"); err != nil {
		return nil, toStatus(ctx, l.log, err)
	}
	ip := limitKey(l.ips.fromContext(ctx))
	if err := l.takeIP(ip, now); err != nil {
		return nil, toStatus(ctx, l.log, err)
	}
	switch info.FullMethod {
	case flashsalev1.AuthService_Register_FullMethodName:
		if err := l.takeSignIn(ctx, ip, now); err != nil {
			return nil, toStatus(ctx, l.log, err)
		}
	case flashsalev1.AuthService_Login_FullMethodName:
		if err := l.takeSignIn(ctx, ip, now); err != nil {
			return nil, toStatus(ctx, l.log, err)
		}
		if l.limits.Logins != nil {
			return l.login(ctx, req, handler)
		}
	case flashsalev1.OrderService_PlaceOrder_FullMethodName:
		if c, ok := auth.CallerFrom(ctx); ok && l.limits.Users != nil {
			allowed, wait, err := l.limits.Users.Allow(ctx, c.UserID)
			if err != nil {
				// Redis trouble must not stop orders: the gate has its own answer.
				l.log.WarnContext(ctx, "user rate limit unavailable", "err", err)
			} else if !allowed {
				return nil, toStatus(ctx, l.log, l.refuse("user", wait))
			}
		}
	}
	return handler(ctx, req)
}

// stream applies the global and per-IP buckets to opening a flashsale
// stream (WatchSaleStatus), as unary does to a call.
func (l *limiter) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if strings.HasPrefix(info.FullMethod, "/flashsale.") {
		ctx, now := ss.Context(), time.Now()
		if err := l.take(l.global, now, "global"); err != nil {
			return toStatus(ctx, l.log, err)
		}
		if err := l.takeIP(limitKey(l.ips.fromContext(ctx)), now); err != nil {
			return toStatus(ctx, l.log, err)
		}
	}
	return handler(srv, ss)
}

// takeSignIn takes a token from ip's sign-in bucket: the shared one, or
// this process's when there is none or Redis fails, so that losing Redis
// does not lift the limit.
func (l *limiter) takeSignIn(ctx context.Context, ip string, now time.Time) error {
	if l.authIP == nil {
		return nil
	}
	if l.limits.AuthIP != nil {
		ok, wait, err := l.limits.AuthIP.Allow(ctx, ip)
		switch {
		case err == nil && ok:
			return nil
		case err == nil:
			return l.refuse("sign-in", wait)
		}
		l.log.WarnContext(ctx, "shared sign-in rate limit unavailable; using this process's", "err", err)
	}
	return l.take(l.authIP.get(ip), now, "sign-in")
}

// login runs a Login past the account's backoff, and forgets the account's
// failures when it succeeds. Unknown emails back off like known ones, so a
// refusal says nothing about whether the account exists.
func (l *limiter) login(ctx context.Context, req any, handler grpc.UnaryHandler) (any, error) {
	r, _ := req.(*flashsalev1.LoginRequest)
	account := accountKey(r.GetEmail())
	wait, err := l.limits.Logins.Begin(ctx, account)
	switch {
	case err != nil:
		// The sign-in buckets and the hashing bound still hold.
		l.log.WarnContext(ctx, "login backoff unavailable", "err", err)
	case wait > 0:
		return nil, toStatus(ctx, l.log, l.refuse("account sign-in", wait))
	}
	resp, err := handler(ctx, req)
	if err == nil {
		// Even if the caller has gone: the password was right.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if err := l.limits.Logins.Succeeded(sctx, account); err != nil {
			l.log.WarnContext(ctx, "login backoff not reset", "err", err)
		}
	}
	return resp, err
}

// accountKey names an account in the backoff's keys without writing its
// email to Redis.
func accountKey(email string) string {
	sum := sha256.Sum256([]byte(auth.NormalizeEmail(email)))
	return hex.EncodeToString(sum[:16])
}

// takeIP takes a token from the bucket of the client address ip.
func (l *limiter) takeIP(ip string, now time.Time) error {
	if ok, wait := l.perIP.take(ip, now); !ok {
		return l.refuse("ip", wait)
	}
	return nil
}

func (l *limiter) take(b *rate.Limiter, now time.Time, scope string) error {
	r := b.ReserveN(now, 1)
	if !r.OK() {
		return l.refuse(scope, time.Second)
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return l.refuse(scope, d)
	}
	return nil
}

// refuse is the refusal of a call by the limiter of scope, counted.
func (l *limiter) refuse(scope string, retryAfter time.Duration) error {
	l.refused.inc(scope)
	return &rateLimited{scope: scope, retryAfter: retryAfter}
}

// refusals counts calls and streams refused by each limiter, as
// flashsale_rate_limited_total{limiter}.
type refusals struct {
	vec *prometheus.CounterVec
	by  map[string]prometheus.Counter // by scope, resolved once
}

// limiterLabels maps a refusal's scope (as its error message says it) to
// its metric label.
var limiterLabels = map[string]string{
	"global":          "global",
	"ip":              "ip",
	"sign-in":         "signin_ip",
	"account sign-in": "login_backoff",
	"user":            "user_orders",
	"watch":           "watch_streams",
	"watch ip":        "watch_streams_ip",
}

func newRefusals() *refusals {
	r := &refusals{
		vec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashsale_rate_limited_total",
			Help: "Calls and stream opens refused by a limit (429 / ResourceExhausted), by limiter: global, ip, signin_ip, login_backoff, user_orders, watch_streams, watch_streams_ip.",
		}, []string{"limiter"}),
		by: map[string]prometheus.Counter{},
	}
	for scope, label := range limiterLabels {
		r.by[scope] = r.vec.WithLabelValues(label)
	}
	return r
}

func (r *refusals) inc(scope string) {
	if r == nil {
		return
	}
	if c, ok := r.by[scope]; ok {
		c.Inc()
	}
}

// table holds a value by key (a client address), bounded and O(1) per
// lookup: an expirable LRU holds at most size values, drops the least
// recently used one to make room, and forgets a key unseen for its ttl.
//
// (golang-lru's expirable LRU runs one goroutine per table, which it never
// stops; a limiter lives as long as its server, so that is one goroutine
// for the life of the process.)
type table[V any] struct {
	fresh func(key string) V // a new key's value

	mu  sync.Mutex // makes get's lookup-or-create one step
	lru *expirable.LRU[string, V]
}

func newTable[V any](size int, ttl time.Duration, fresh func(key string) V) *table[V] {
	return &table[V]{fresh: fresh, lru: expirable.NewLRU[string, V](size, nil, ttl)}
}

// get is key's value, a fresh one for a key not seen within the ttl.
func (t *table[V]) get(key string) V {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := t.lru.Get(key)
	if !ok {
		v = t.fresh(key)
	}
	// Add again even when found: the expirable LRU counts its ttl from the
	// last Add, and a key in use must not be dropped with an empty bucket
	// only to come back with a full one.
	t.lru.Add(key, v)
	return v
}

func (t *table[V]) len() int { return t.lru.Len() }

// bucketTTL is how long a table of buckets keeps a key unseen: by then
// its bucket would be full again, so forgetting it changes nothing; at
// least a minute so that a refill of many tokens a second does not make
// the table churn.
func bucketTTL(capacity int, refill float64) time.Duration {
	return max(time.Minute, time.Duration(float64(capacity)/refill*float64(time.Second)))
}

// buckets is a table of token buckets by key (a client address).
type buckets = table[*rate.Limiter]

func newBuckets(size, capacity int, refill float64) *buckets {
	return newTable(size, bucketTTL(capacity, refill), func(string) *rate.Limiter {
		return rate.NewLimiter(rate.Limit(refill), capacity)
	})
}
