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

// luaRefill starts both bucket scripts: KEYS[1] is the bucket, ARGV[1]
// its capacity and ARGV[2] its refill per second; it leaves the tokens the
// bucket held, the time now on Redis's clock (µs) and how long since the
// bucket was last touched.
const luaRefill = `
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or cap
local ts = tonumber(b[2]) or now
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
`

// limitScript is a token bucket on Redis's clock: KEYS bucket; ARGV capacity,
// refill per second. It returns {allowed (0|1), wait in microseconds}. The
// bucket expires once it would be full again anyway.
var limitScript = rueidis.NewLuaScript(luaRefill + `
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

// takeManyScript takes n tokens from a bucket of limitScript's layout, on
// Redis's clock, even when it holds fewer: KEYS bucket; ARGV capacity,
// refill per second, n. The n calls were already let through by a process
// that checks its own bucket first and reports them later (grpcapi's
// per-IP buckets), so a bucket they overdraw goes into debt, and the
// processes refuse the key until it has refilled past it. It returns
// {tokens left in thousandths (negative: debt), microseconds until the
// bucket holds a whole token (0: it does)}. The bucket expires once it
// would be full again anyway.
var takeManyScript = rueidis.NewLuaScript(luaRefill + `
local n = tonumber(ARGV[3])
tokens = math.min(cap, tokens + elapsed * rate / 1000000) - n
local wait = 0
if tokens < 1 then
  wait = math.ceil((1 - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((cap - tokens) / rate * 1000) + 1000)
return {math.floor(tokens * 1000), wait}
`)

// Take is N calls, already let through, to take from Key's bucket.
type Take struct {
	Key string
	N   int64
}

// Balance is a bucket after a Take: the Tokens left, negative when the
// take overdrew it, and the Wait until it holds a whole token again (0: it
// does now). Err, when not nil, says the take failed and the rest is
// unknown.
type Balance struct {
	Tokens float64
	Wait   time.Duration
	Err    error
}

// TakeMany takes from the buckets of several keys in one pipeline (on a
// cluster, one per master), each take in full even when it overdraws the
// bucket, which then stays empty until it has refilled past the debt. It
// is for calls let through before they were counted here; Allow is for a
// call that waits for the answer.
func (l *Limiter) TakeMany(ctx context.Context, takes []Take) []Balance {
	execs := make([]rueidis.LuaExec, len(takes))
	for i, t := range takes {
		execs[i] = rueidis.LuaExec{
			Keys: []string{l.prefix + t.Key},
			Args: []string{l.capacity, l.perSecond, strconv.FormatInt(t.N, 10)},
		}
	}
	out := make([]Balance, len(takes))
	if len(execs) == 0 {
		return out
	}
	for i, r := range takeManyScript.ExecMulti(ctx, l.c.rc, execs...) {
		res, err := r.AsIntSlice()
		switch {
		case err != nil:
			out[i].Err = fmt.Errorf("limiter: %w", err)
		case len(res) != 2:
			out[i].Err = fmt.Errorf("limiter: unexpected script result %v", res)
		default:
			out[i] = Balance{Tokens: float64(res[0]) / 1000, Wait: time.Duration(res[1]) * time.Microsecond}
		}
	}
	return out
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
