package redis

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"
)

// limitScript is a token bucket on Redis's clock: KEYS bucket; ARGV capacity,
// refill per second. It returns {allowed (0|1), wait in microseconds}. The
// bucket expires once it would be full again anyway.
var limitScript = rueidis.NewLuaScript(`
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or cap
local ts = tonumber(b[2]) or now
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
tokens = math.min(cap, tokens + elapsed * rate / 1000000)
local ok, wait = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
else
  wait = math.ceil((1 - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(cap / rate * 1000) + 1000)
return {ok, wait}
`)

// Limiter is a token bucket per key (a client address, say), shared by
// every process through Redis: each holds up to capacity tokens, refilled at
// perSecond. Its buckets are <prefix>:rl:<name>:<key>.
type Limiter struct {
	c         *Client
	prefix    string
	capacity  string
	perSecond string
}

// NewLimiter returns a limiter named name (part of its keys) allowing
// bursts of capacity per key, refilled at perSecond a second. Both must be
// positive.
func NewLimiter(c *Client, name string, capacity int, perSecond float64) (*Limiter, error) {
	if capacity <= 0 || perSecond <= 0 || math.IsInf(perSecond, 0) || math.IsNaN(perSecond) {
		return nil, fmt.Errorf("%s limiter: capacity %d and rate %v must be positive", name, capacity, perSecond)
	}
	l := &Limiter{
		capacity:  strconv.Itoa(capacity),
		perSecond: strconv.FormatFloat(perSecond, 'f', -1, 64),
		c:         c,
	}
	if c != nil {
		l.prefix = c.prefix + ":rl:" + name + ":"
	}
	return l, nil
}

// Allow takes one token from key's bucket. When none is left it returns
// false and how long until one is.
func (l *Limiter) Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error) {
	return l.take(ctx, l.prefix+key)
}

func (l *Limiter) take(ctx context.Context, key string) (bool, time.Duration, error) {
	res, err := l.c.exec(ctx, "rate-limit", limitScript, []string{key}, []string{l.capacity, l.perSecond}).AsIntSlice()
	if err != nil {
		return false, 0, fmt.Errorf("limiter: %w", err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("limiter: unexpected script result %v", res)
	}
	return res[0] == 1, time.Duration(res[1]) * time.Microsecond, nil
}

// UserLimiter limits each user's order attempts across every process: a
// token bucket per user in Redis (<prefix>:rl:<user id>) holding up to
// capacity attempts, refilled at perSecond.
type UserLimiter struct {
	l *Limiter
}

// NewUserLimiter returns a limiter allowing bursts of capacity attempts per
// user, refilled at perSecond attempts a second. Both must be positive.
func NewUserLimiter(c *Client, capacity int, perSecond float64) (*UserLimiter, error) {
	l, err := NewLimiter(c, "user", capacity, perSecond)
	if err != nil {
		return nil, err
	}
	if c != nil {
		l.prefix = c.prefix + ":rl:"
	}
	return &UserLimiter{l: l}, nil
}

// Allow takes one token from the user's bucket. When none is left it
// returns false and how long until one is.
func (l *UserLimiter) Allow(ctx context.Context, userID uuid.UUID) (ok bool, retryAfter time.Duration, err error) {
	return l.l.take(ctx, l.l.prefix+userID.String())
}
