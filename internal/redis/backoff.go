package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// beginScript counts one login attempt on an account, by Redis's clock:
// KEYS the account's hash (n: attempts since the last success, until:
// Unix ms before which no attempt may start); ARGV free attempts, first
// delay ms, longest delay ms, how long the count is kept ms. It returns 0
// when the attempt may go ahead, else the ms to wait.
//
// Past the free attempts, each attempt that goes ahead closes the account
// for a delay that doubles with every attempt (1 s, 2 s, 4 s, ... up to the
// longest), before its outcome is known: so however many guesses arrive at
// once, one at a time gets through. A refused attempt counts for nothing,
// so hammering does not lengthen the delay for the account's owner.
var beginScript = rueidis.NewLuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local closed = tonumber(redis.call('HGET', KEYS[1], 'until')) or 0
if closed > now then
  return closed - now
end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local over = n - tonumber(ARGV[1])
if over > 0 then
  local delay = math.min(tonumber(ARGV[2]) * 2 ^ math.min(over - 1, 30), tonumber(ARGV[3]))
  redis.call('HSET', KEYS[1], 'until', string.format('%.0f', now + delay))
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 0
`)

// LoginBackoff slows down guessing one account's password, across every
// process: after free attempts without a success, the account takes one
// attempt at a time, with a delay that doubles from a second up to max.
// A success forgets the count; so does an idle quarter of an hour (or twice
// max, if longer). The state of an account is one hash,
// <prefix>:login:<account>.
type LoginBackoff struct {
	c         *Client
	free      string
	first     string
	longest   string
	keepCount string
}

// NewLoginBackoff returns a LoginBackoff allowing free attempts (at least
// 0) before delays that grow up to max (at least a second).
func NewLoginBackoff(c *Client, free int, max time.Duration) (*LoginBackoff, error) {
	if free < 0 || max < time.Second {
		return nil, fmt.Errorf("login backoff: free attempts %d must be at least 0 and the longest delay %v at least 1s", free, max)
	}
	keep := 2 * max
	if keep < 15*time.Minute {
		keep = 15 * time.Minute
	}
	return &LoginBackoff{
		c:         c,
		free:      strconv.Itoa(free),
		first:     "1000",
		longest:   strconv.FormatInt(max.Milliseconds(), 10),
		keepCount: strconv.FormatInt(keep.Milliseconds(), 10),
	}, nil
}

// Begin counts a login attempt on account (an opaque key, such as a hash of
// the email). A positive wait refuses the attempt: the account is closed
// for that long.
func (b *LoginBackoff) Begin(ctx context.Context, account string) (wait time.Duration, err error) {
	ms, err := b.c.exec(ctx, "login-backoff", beginScript, []string{b.key(account)},
		[]string{b.free, b.first, b.longest, b.keepCount}).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("login backoff: %w", err)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// Succeeded forgets account's attempts.
func (b *LoginBackoff) Succeeded(ctx context.Context, account string) error {
	if err := b.c.rc.Do(ctx, b.c.rc.B().Del().Key(b.key(account)).Build()).Error(); err != nil {
		return fmt.Errorf("login backoff: %w", err)
	}
	return nil
}

func (b *LoginBackoff) key(account string) string { return b.c.prefix + ":login:" + account }
