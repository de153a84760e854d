package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/sale"
)

// keepAfterEnd is how long a sale's keys outlive the sale (PEXPIREAT), so
// late CheckOrder calls and workers draining the stream still find them.
const keepAfterEnd = 24 * time.Hour

// statusCacheTTL bounds how long a process serves a status from its own
// memory; Redis pushes an invalidation as soon as the key is rewritten, so
// this only matters if a push is lost.
const statusCacheTTL = time.Minute

// saleKeys are the keys of one sale; they share the hash tag {sale:<id>}.
type saleKeys struct {
	meta, stock, buyers, rejected, status, stream, released string
}

func (c *Client) saleKeys(saleID uuid.UUID) saleKeys {
	p := c.salePrefix(saleID)
	return saleKeys{
		meta:     p + "meta",
		stock:    p + "stock",
		buyers:   p + "buyers",
		rejected: p + "rejected",
		status:   p + "status",
		stream:   p + "stream",
		released: p + "released",
	}
}

func (c *Client) salePrefix(saleID uuid.UUID) string {
	return c.prefix + ":{sale:" + saleID.String() + "}:"
}

// statusKey is saleKeys(saleID).status alone, for the hot status read.
func (c *Client) statusKey(saleID uuid.UUID) string { return c.salePrefix(saleID) + "status" }

func (c *Client) streamsKey() string { return c.prefix + ":streams" }

// luaPublish rewrites the status key only when the published value changes:
// the remaining stock rounded up to the sale's publish step (0 exactly when
// sold out), and the window. Hot admissions between two steps leave it alone,
// so they do not invalidate every process's cached copy.
const luaPublish = `
local function publish(key, stock, step, starts, ends, expire)
  local b = 0
  if stock > 0 then b = math.ceil(stock / step) * step end
  local v = string.format('%d', b) .. '|' .. starts .. '|' .. ends
  if redis.call('GET', key) ~= v then
    redis.call('SET', key, v, 'PXAT', expire)
  end
end
`

// Script results for Admit; they mirror order.Decision.
const (
	codeAdmitted  = 1
	codeSoldOut   = 2
	codeAlready   = 3
	codeNotOpen   = 4
	codeNotLoaded = 5
	codeBusy      = 6
)

// admitScript: KEYS meta, stock, buyers, stream, status; ARGV user, order,
// queue (0|1), max queued, sale, product, created (unix ms).
var admitScript = rueidis.NewLuaScript(luaPublish + `
local m = redis.call('HMGET', KEYS[1], 'starts_us', 'ends_us', 'step', 'expire_ms')
if not m[1] then return 5 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if now < tonumber(m[1]) or now >= tonumber(m[2]) then return 4 end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return 3 end
if ARGV[3] == '1' and redis.call('XLEN', KEYS[4]) >= tonumber(ARGV[4]) then return 6 end
local s = tonumber(redis.call('GET', KEYS[2]) or '0')
if s <= 0 then return 2 end
s = redis.call('DECR', KEYS[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
if ARGV[3] == '1' then
  redis.call('XADD', KEYS[4], '*', 'order', ARGV[2], 'sale', ARGV[5], 'product', ARGV[6], 'user', ARGV[1], 'created_ms', ARGV[7])
end
publish(KEYS[5], s, tonumber(m[3]), m[1], m[2], m[4])
return 1
`)

// releaseScript: KEYS meta, stock, buyers, status, released; ARGV user,
// order, forget. An order is released at most once (the released set), so a
// worker replaying an entry whose ack was lost cannot hand out a unit twice.
var releaseScript = rueidis.NewLuaScript(luaPublish + `
local m = redis.call('HMGET', KEYS[1], 'starts_us', 'ends_us', 'step', 'expire_ms')
if not m[1] then return 0 end
if redis.call('SADD', KEYS[5], ARGV[2]) == 0 then return 0 end
redis.call('PEXPIREAT', KEYS[5], m[4])
local s = redis.call('INCR', KEYS[2])
if ARGV[3] == '1' and redis.call('HGET', KEYS[3], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[3], ARGV[1])
end
publish(KEYS[4], s, tonumber(m[3]), m[1], m[2], m[4])
return 1
`)

// loadScript: KEYS meta, stock, buyers, status, rejected, stream; ARGV mode
// (load|reconcile), starts_us, ends_us, step, expire_ms, product, stock, then
// user, order pairs: the state in PostgreSQL. Orders still in the stream
// (admitted, maybe not yet written) are added on top in the same step: a
// queued order whose user has no order in PostgreSQL keeps its admission and
// its unit, so neither a reconcile nor a reload can admit a queued buyer
// twice or hand their unit to someone else. The stream itself is never touched.
var loadScript = rueidis.NewLuaScript(luaPublish + `
if ARGV[1] == 'load' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HSET', KEYS[1], 'starts_us', ARGV[2], 'ends_us', ARGV[3], 'step', ARGV[4], 'expire_ms', ARGV[5], 'product', ARGV[6])
local n = #ARGV
local i = 8
while i <= n do
  local j = math.min(i + 999, n)
  redis.call('HSET', KEYS[3], unpack(ARGV, i, j))
  i = j + 1
end
local stock = tonumber(ARGV[7])
local from = '-'
while true do
  local entries = redis.call('XRANGE', KEYS[6], from, '+', 'COUNT', 1000)
  if #entries == 0 then break end
  for _, e in ipairs(entries) do
    local f = e[2]
    local user, order
    for k = 1, #f, 2 do
      if f[k] == 'user' then user = f[k + 1] elseif f[k] == 'order' then order = f[k + 1] end
    end
    if user and order and redis.call('HSETNX', KEYS[3], user, order) == 1 then
      stock = stock - 1
    end
  end
  from = '(' .. entries[#entries][1]
end
if stock < 0 then stock = 0 end
redis.call('SET', KEYS[2], stock)
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
redis.call('PEXPIREAT', KEYS[2], ARGV[5])
redis.call('PEXPIREAT', KEYS[3], ARGV[5])
redis.call('PEXPIREAT', KEYS[5], ARGV[5])
publish(KEYS[4], stock, tonumber(ARGV[4]), ARGV[2], ARGV[3], ARGV[5])
return 1
`)

// Gate is the admission gate (order.Gate) over Redis: each operation is one
// Lua script on the sale's keys, so checks and writes never straddle round
// trips. The sale window is judged by Redis's clock (TIME), in microseconds.
type Gate struct {
	c *Client
}

var _ order.Gate = (*Gate)(nil)

// NewGate returns the gate over c.
func NewGate(c *Client) *Gate {
	return &Gate{c: c}
}

// Admit decides one attempt in one script: DeniedNotLoaded without the
// sale's state, DeniedNotOpen outside [starts, ends) by Redis's clock,
// DeniedAlreadyAdmitted for a recorded buyer, DeniedBusy (queue mode) when
// the stream holds MaxQueued entries or more, DeniedSoldOut without stock;
// otherwise it takes a unit, records the buyer, appends the order to the
// stream in queue mode and returns Admitted.
func (g *Gate) Admit(ctx context.Context, a order.Admission) (order.Decision, error) {
	k := g.c.saleKeys(a.Order.SaleID)
	queue := "0"
	if a.Queue {
		queue = "1"
	}
	code, err := admitScript.Exec(ctx, g.c.rc,
		[]string{k.meta, k.stock, k.buyers, k.stream, k.status},
		[]string{
			a.Order.UserID.String(), a.Order.ID.String(), queue,
			strconv.FormatInt(a.MaxQueued, 10), a.Order.SaleID.String(),
			a.Order.ProductID.String(), strconv.FormatInt(a.Order.CreatedAt.UnixMilli(), 10),
		}).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("gate admit: %w", err)
	}
	switch code {
	case codeAdmitted:
		return order.Admitted, nil
	case codeSoldOut:
		return order.DeniedSoldOut, nil
	case codeAlready:
		return order.DeniedAlreadyAdmitted, nil
	case codeNotOpen:
		return order.DeniedNotOpen, nil
	case codeNotLoaded:
		return order.DeniedNotLoaded, nil
	case codeBusy:
		return order.DeniedBusy, nil
	}
	return 0, fmt.Errorf("gate admit: unexpected script result %d", code)
}

// Release gives back the unit the admitted order o took (INCR stock). With
// forget it also drops the user's admission, but only while it is o's, so
// the user may try again. Releasing the same order again does nothing, so a
// replayed release cannot hand out a unit twice. Reject does not give the unit
// back; a worker that rejects an order whose unit should return calls Release
// (without forget) as well. When the gate holds no state for the sale,
// Release does nothing: the next Load or Reconcile recomputes the stock.
func (g *Gate) Release(ctx context.Context, o order.Order, forget bool) error {
	k := g.c.saleKeys(o.SaleID)
	f := "0"
	if forget {
		f = "1"
	}
	err := releaseScript.Exec(ctx, g.c.rc,
		[]string{k.meta, k.stock, k.buyers, k.status, k.released},
		[]string{o.UserID.String(), o.ID.String(), f}).Error()
	if err != nil {
		return fmt.Errorf("gate release: %w", err)
	}
	return nil
}

// Load sets the sale's state unless the gate already holds it (the script
// checks the meta key), and registers the sale's stream for workers.
func (g *Gate) Load(ctx context.Context, st order.GateState) error {
	return g.load(ctx, "load", st)
}

// Reconcile replaces the sale's meta, stock, buyers and status with st,
// whatever the gate holds, plus the orders still queued in the stream (see
// loadScript). It keeps the stream and the rejected orders.
func (g *Gate) Reconcile(ctx context.Context, st order.GateState) error {
	return g.load(ctx, "reconcile", st)
}

func (g *Gate) load(ctx context.Context, mode string, st order.GateState) error {
	k := g.c.saleKeys(st.Sale.ID)
	remaining := max(st.Remaining, 0)
	// The step is 1% of what the sale started with, as far as the gate can
	// tell: what is left plus what was taken.
	initial := int64(remaining) + int64(len(st.Buyers))
	step := max(1, (initial+99)/100)
	args := make([]string, 0, 7+2*len(st.Buyers))
	args = append(args, mode,
		strconv.FormatInt(st.Sale.StartsAt.UnixMicro(), 10),
		strconv.FormatInt(st.Sale.EndsAt.UnixMicro(), 10),
		strconv.FormatInt(step, 10),
		strconv.FormatInt(st.Sale.EndsAt.Add(keepAfterEnd).UnixMilli(), 10),
		st.Sale.ProductID.String(),
		strconv.FormatInt(int64(remaining), 10),
	)
	for user, id := range st.Buyers {
		args = append(args, user.String(), id.String())
	}
	err := loadScript.Exec(ctx, g.c.rc,
		[]string{k.meta, k.stock, k.buyers, k.status, k.rejected, k.stream}, args).Error()
	if err != nil {
		return fmt.Errorf("gate %s: %w", mode, err)
	}
	// The registry lives in another slot, so it cannot be written by the
	// script; SADD is idempotent and also heals a lost registry.
	if err := g.c.rc.Do(ctx, g.c.rc.B().Sadd().Key(g.c.streamsKey()).Member(k.stream).Build()).Error(); err != nil {
		return fmt.Errorf("gate register stream: %w", err)
	}
	return nil
}

// Status is a sale's published status as this process sees it.
type Status struct {
	// State is the sale's state at the time passed to Gate.Status.
	State sale.State
	// Remaining is the stock rounded up to the sale's publish step (1% of its
	// initial stock): an upper bound, zero exactly when sold out.
	Remaining int32
	// CacheHit tells whether the value came from this process's memory.
	CacheHit bool
}

// Status reads the sale's status key through client-side caching (DoCache):
// most reads are served from memory, and Redis pushes an invalidation when a
// script rewrites the key. Scripts rewrite it only when the sale sells out,
// comes back, or its stock crosses a publish step (max(1, ceil(initial/100))
// units), so a hot sale does not thrash every process's cache; Remaining is
// therefore coarse. loaded is false when the gate holds no state for the
// sale. Use Remaining for the exact stock.
func (g *Gate) Status(ctx context.Context, saleID uuid.UUID, now time.Time) (st Status, loaded bool, err error) {
	v, found, hit, err := g.c.cachedGet(ctx, g.c.statusKey(saleID), statusCacheTTL, func(s string) (any, error) {
		return parsePublished(s)
	})
	if err != nil {
		return Status{}, false, fmt.Errorf("gate status: %w", err)
	}
	if !found {
		return Status{}, false, nil
	}
	return v.(published).at(now, hit), true, nil
}

// published is a sale's status key: the remaining stock rounded up to the
// publish step, and the window.
type published struct {
	remaining int32
	window    sale.Sale // StartsAt and EndsAt only
}

// parsePublished reads "<remaining>|<starts_us>|<ends_us>".
func parsePublished(v string) (published, error) {
	parts := strings.Split(v, "|")
	if len(parts) != 3 {
		return published{}, fmt.Errorf("malformed value %q", v)
	}
	rem, err1 := strconv.ParseInt(parts[0], 10, 32)
	starts, err2 := strconv.ParseInt(parts[1], 10, 64)
	ends, err3 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return published{}, fmt.Errorf("malformed value %q", v)
	}
	return published{
		remaining: int32(rem),
		window:    sale.Sale{StartsAt: time.UnixMicro(starts).UTC(), EndsAt: time.UnixMicro(ends).UTC()},
	}, nil
}

func (p published) at(now time.Time, cacheHit bool) Status {
	return Status{State: p.window.StateAt(now, p.remaining), Remaining: p.remaining, CacheHit: cacheHit}
}

// Remaining is the sale's exact stock in the gate, read uncached; loaded is
// false when the gate holds no state for the sale.
func (g *Gate) Remaining(ctx context.Context, saleID uuid.UUID) (remaining int32, loaded bool, err error) {
	n, err := g.c.rc.Do(ctx, g.c.rc.B().Get().Key(g.c.saleKeys(saleID).stock).Build()).AsInt64()
	if rueidis.IsRedisNil(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("gate remaining: %w", err)
	}
	return int32(n), true, nil
}
