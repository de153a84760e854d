package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"
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

// productKeys are the keys of one product's admission state; they share the
// hash tag {p:<product id>} with the keys of the product's sales, so every
// script touches one slot and runs unchanged on Redis Cluster.
type productKeys struct {
	meta, stock, status, stream, inflight string
}

// saleKeys are the keys of one sale of a product.
type saleKeys struct {
	meta, buyers, rejected string
}

func (c *Client) productPrefix(productID uuid.UUID) string {
	return c.prefix + ":{p:" + productID.String() + "}:"
}

// productKeys are the product's key names, built once per product (and
// kept for the keyNames most recently used): the hot paths ask for them on
// every call, and building them from the ids was a twentieth of the
// allocations of a rush call.
func (c *Client) productKeys(productID uuid.UUID) productKeys {
	if k, ok := c.keyNames.products.Get(productID); ok {
		return k
	}
	p := c.productPrefix(productID)
	k := productKeys{
		meta:     p + "meta",
		stock:    p + "stock",
		status:   p + "status",
		stream:   p + "stream",
		inflight: p + "inflight",
	}
	c.keyNames.products.Add(productID, k)
	return k
}

func (c *Client) saleKeys(productID, saleID uuid.UUID) saleKeys {
	id := [2]uuid.UUID{productID, saleID}
	if k, ok := c.keyNames.sales.Get(id); ok {
		return k
	}
	p := c.productPrefix(productID) + "s:" + saleID.String() + ":"
	k := saleKeys{meta: p + "meta", buyers: p + "buyers", rejected: p + "rejected"}
	c.keyNames.sales.Add(id, k)
	return k
}

// statusKey is productKeys(productID).status, for the hot status read.
func (c *Client) statusKey(productID uuid.UUID) string {
	return c.productKeys(productID).status
}

// keyNames caches the key names of the products and sales most recently
// used, keyNamesSize of each.
type keyNames struct {
	products *lru.Cache[uuid.UUID, productKeys]
	sales    *lru.Cache[[2]uuid.UUID, saleKeys]
}

const keyNamesSize = 4096

func newKeyNames() keyNames {
	products, err := lru.New[uuid.UUID, productKeys](keyNamesSize)
	if err != nil {
		panic(err) // only for a size below 1
	}
	sales, err := lru.New[[2]uuid.UUID, saleKeys](keyNamesSize)
	if err != nil {
		panic(err)
	}
	return keyNames{products: products, sales: sales}
}

func (c *Client) streamsKey() string { return c.prefix + ":streams" }

// luaPublish rewrites the status key only when the published value changes:
// the remaining stock rounded up to the product's publish step (0 exactly
// when sold out). Hot admissions between two steps leave it alone, so they
// do not invalidate every process's cached copy.
const luaPublish = `
local function publish(key, stock, step, expire)
  local b = 0
  if stock > 0 then b = math.ceil(stock / step) * step end
  local v = string.format('%d', b)
  if redis.call('GET', key) ~= v then
    redis.call('SET', key, v, 'PXAT', expire)
  end
end
`

// Script results for Admit; they mirror order.Decision.
const (
	codeAdmitted   = 1
	codeSoldOut    = 2
	codeAlready    = 3
	codeNotOpen    = 4
	codeNotLoaded  = 5
	codeBusy       = 6
	codeInProgress = 7
)

// admitSource is admitScript's text: KEYS product meta, stock, status,
// stream, inflight, sale meta, buyers; ARGV user, order, queue (0|1), max
// queued, sale, product, created (unix ms), confirm (0|1), and in queue mode
// the W3C traceparent of a sampled caller, kept in the entry so the
// worker's write joins its trace. It returns {code} or {code, order id of
// the user}.
//
// An admitted order is recorded in flight in the same step as it takes its
// unit: appended to the product's stream (queue mode) or put in the
// inflight hash (sync mode), until its writer settles it. With confirm set,
// answering a holder writes too (a counter in the product's meta), so that
// a WAIT on the same connection covers the held order's own admission,
// whoever made it: WAIT waits for the connection's last write, and a
// master replicates its writes in order.
const admitSource = luaPublish + `
local pm = redis.call('HMGET', KEYS[1], 'step', 'expire_ms')
local m = redis.call('HMGET', KEYS[6], 'starts_us', 'ends_us')
if not pm[1] or not m[1] then return {5} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if now < tonumber(m[1]) or now >= tonumber(m[2]) then return {4} end
local held = redis.call('HGET', KEYS[7], ARGV[1])
if held then
  if redis.call('HEXISTS', KEYS[5], held) == 1 then return {7, held} end
  if ARGV[8] == '1' then redis.call('HINCRBY', KEYS[1], 'confirms', 1) end
  return {3, held}
end
if ARGV[3] == '1' and redis.call('XLEN', KEYS[4]) >= tonumber(ARGV[4]) then return {6} end
local s = tonumber(redis.call('GET', KEYS[2]) or '0')
if s <= 0 then return {2} end
s = redis.call('DECR', KEYS[2])
redis.call('HSET', KEYS[7], ARGV[1], ARGV[2])
if redis.call('HLEN', KEYS[7]) == 1 then redis.call('PEXPIREAT', KEYS[7], pm[2]) end
if ARGV[3] == '1' and ARGV[9] then
  redis.call('XADD', KEYS[4], '*', 'order', ARGV[2], 'sale', ARGV[5], 'product', ARGV[6], 'user', ARGV[1], 'created_ms', ARGV[7], 'traceparent', ARGV[9])
elseif ARGV[3] == '1' then
  redis.call('XADD', KEYS[4], '*', 'order', ARGV[2], 'sale', ARGV[5], 'product', ARGV[6], 'user', ARGV[1], 'created_ms', ARGV[7])
else
  redis.call('HSET', KEYS[5], ARGV[2], ARGV[5] .. '|' .. ARGV[1] .. '|' .. ARGV[7])
  if redis.call('HLEN', KEYS[5]) == 1 then redis.call('PEXPIREAT', KEYS[5], pm[2]) end
end
publish(KEYS[3], s, tonumber(pm[1]), pm[2])
return {1}
`

var (
	admitScript = rueidis.NewLuaScript(admitSource)
	admitSHA1   = sha1Hex(admitSource)
)

// Outcome codes passed to settleScript; they mirror order.Outcome.
var outcomeCodes = map[order.Outcome]string{
	order.Committed:         "c",
	order.RejectedSoldOut:   "s",
	order.RejectedDuplicate: "d",
	order.Dropped:           "x",
}

// settleScript: KEYS product meta, stock, status, stream, inflight, then
// buyers and rejected of each settled order's sale; ARGV group, then order,
// user, stream entry (” in sync mode), outcome code per order.
//
// An order is settled only while it is still in flight (its stream entry or
// inflight field exists, and is removed here), so settling again, by a
// worker that took over the entry or after a lost reply, changes nothing.
var settleScript = rueidis.NewLuaScript(luaPublish + `
local pm = redis.call('HMGET', KEYS[1], 'step', 'expire_ms')
local changed = false
local n = (#ARGV - 1) / 4
for i = 1, n do
  local a = 1 + (i - 1) * 4
  local o, u, ref, out = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local buyers, rejected = KEYS[4 + 2 * i], KEYS[5 + 2 * i]
  local live
  if ref ~= '' then
    redis.call('XACK', KEYS[4], ARGV[1], ref)
    live = redis.call('XDEL', KEYS[4], ref) == 1
  else
    live = redis.call('HDEL', KEYS[5], o) == 1
  end
  -- Without the product's state (expired, or lost) only the record goes:
  -- the next load rebuilds stock and buyers from PostgreSQL.
  if live and out ~= 'c' and pm[1] then
    if out ~= 's' then
      redis.call('INCR', KEYS[2])
      changed = true
    end
    if out ~= 'd' and redis.call('HGET', buyers, u) == o then
      redis.call('HDEL', buyers, u)
    end
    redis.call('HSET', rejected, u, o)
    redis.call('PEXPIREAT', rejected, pm[2])
  end
end
if changed then
  publish(KEYS[3], tonumber(redis.call('GET', KEYS[2]) or '0'), tonumber(pm[1]), pm[2])
end
return 1
`)

// loadScript: KEYS product meta, stock, status, stream, inflight, then
// meta, buyers, rejected of each sale; ARGV mode (load|reconcile), quantity,
// orphaned before (unix ms), step, expire_ms, number of sales, then per sale
// id, starts_us, ends_us, expire_ms, number of buyers; then every sale's
// buyers as user, order pairs: the state in PostgreSQL, read under the
// product's stock row lock.
//
// It sets each sale's window and buyers, then counts the orders in flight
// once each: a stream entry or inflight field whose order is in PostgreSQL
// (its user's order there) is committed and already out of the quantity;
// any other takes a unit and keeps its user a buyer. A sync-mode inflight
// order older than the orphan horizon and not in PostgreSQL was abandoned
// by a writer that died and is dropped. The units left are quantity minus
// the orders in flight. In load mode nothing happens when the product and
// every sale are loaded already. It returns {units left, units the gate
// held before (-1: none), buyers before, buyers after}, the last three for
// the drift a reconcile corrects, or {-1} when nothing was done.
var loadScript = rueidis.NewLuaScript(luaPublish + `
local nsales = tonumber(ARGV[6])
if ARGV[1] == 'load' and redis.call('EXISTS', KEYS[1]) == 1 then
  local all = true
  for j = 1, nsales do
    if redis.call('EXISTS', KEYS[5 + 3 * (j - 1) + 1]) == 0 then all = false end
  end
  if all then return {-1} end
end
local stockBefore = tonumber(redis.call('GET', KEYS[2]) or '-1')
local buyersBefore, buyersAfter = 0, 0
local expire = ARGV[5]
local buyersOf = {}
local a = 7 + 5 * nsales
for j = 1, nsales do
  local base = 7 + 5 * (j - 1)
  local meta, buyers, rejected = KEYS[5 + 3 * (j - 1) + 1], KEYS[5 + 3 * (j - 1) + 2], KEYS[5 + 3 * (j - 1) + 3]
  buyersBefore = buyersBefore + redis.call('HLEN', buyers)
  redis.call('DEL', meta, buyers)
  redis.call('HSET', meta, 'starts_us', ARGV[base + 1], 'ends_us', ARGV[base + 2])
  local nb = tonumber(ARGV[base + 4])
  local i, last = a, a + 2 * nb - 1
  while i <= last do
    local k = math.min(i + 999, last)
    redis.call('HSET', buyers, unpack(ARGV, i, k))
    i = k + 1
  end
  a = a + 2 * nb
  for _, k in ipairs({meta, buyers, rejected}) do redis.call('PEXPIREAT', k, ARGV[base + 3]) end
  buyersOf[ARGV[base]] = buyers
end
local stock = tonumber(ARGV[2])
local function inflight(sale, user, order)
  local b = buyersOf[sale]
  if b and redis.call('HGET', b, user) == order then return false end
  stock = stock - 1
  if b then redis.call('HSETNX', b, user, order) end
  return true
end
local from = '-'
while true do
  local entries = redis.call('XRANGE', KEYS[4], from, '+', 'COUNT', 1000)
  if #entries == 0 then break end
  for _, e in ipairs(entries) do
    local f = e[2]
    local v = {}
    for k = 1, #f, 2 do v[f[k]] = f[k + 1] end
    if v.user and v.order and v.sale then inflight(v.sale, v.user, v.order) end
  end
  from = '(' .. entries[#entries][1]
end
local orphanedBefore = tonumber(ARGV[3])
local fl = redis.call('HGETALL', KEYS[5])
for k = 1, #fl, 2 do
  local order = fl[k]
  local sale, user, created = string.match(fl[k + 1], '^([^|]*)|([^|]*)|([^|]*)$')
  local b = sale and buyersOf[sale]
  if b and redis.call('HGET', b, user) == order then
    redis.call('HDEL', KEYS[5], order)
  elseif created and tonumber(created) < orphanedBefore then
    redis.call('HDEL', KEYS[5], order)
  else
    inflight(sale, user, order)
  end
end
if stock < 0 then stock = 0 end
redis.call('SET', KEYS[2], stock)
redis.call('HSETNX', KEYS[1], 'step', ARGV[4])
redis.call('HSET', KEYS[1], 'expire_ms', expire)
redis.call('HINCRBY', KEYS[1], 'generation', 1)
for _, k in ipairs({KEYS[1], KEYS[2], KEYS[5]}) do redis.call('PEXPIREAT', k, expire) end
local step = tonumber(redis.call('HGET', KEYS[1], 'step'))
publish(KEYS[3], stock, step, expire)
for _, b in pairs(buyersOf) do buyersAfter = buyersAfter + redis.call('HLEN', b) end
return {stock, stockBefore, buyersBefore, buyersAfter}
`)

// Gate is the admission gate (order.Gate) over Redis: each operation is one
// Lua script on one product's keys, so checks and writes never straddle
// round trips. The sale window is judged by Redis's clock (TIME), in
// microseconds.
type Gate struct {
	c *Client
}

var (
	_ order.Gate       = (*Gate)(nil)
	_ order.Admissions = (*Gate)(nil)
)

// NewGate returns the gate over c.
func NewGate(c *Client) *Gate {
	return &Gate{c: c}
}

// Admit decides one attempt in one script: DeniedNotLoaded without the
// product's or the sale's state, DeniedNotOpen outside [starts, ends) by
// Redis's clock, DeniedInProgress (sync mode) for a buyer whose order is
// still being written and DeniedAlreadyAdmitted for any other recorded buyer
// (with their order id), DeniedBusy (queue mode) when the product's stream
// holds MaxQueued entries or more, DeniedSoldOut without stock; otherwise it
// takes a unit, records the buyer, records the order in flight (the stream
// in queue mode) and returns Admitted.
//
// In queue mode with replicas required (WithReplicas), Admitted and
// DeniedAlreadyAdmitted are answered only once that many replicas hold the
// order; when they do not confirm it in time the decision comes with an
// error wrapping order.ErrNotReplicated.
func (g *Gate) Admit(ctx context.Context, a order.Admission) (order.Decision, uuid.UUID, error) {
	pk := g.c.productKeys(a.Order.ProductID)
	sk := g.c.saleKeys(a.Order.ProductID, a.Order.SaleID)
	queue := "0"
	if a.Queue {
		queue = "1"
	}
	confirmed := true
	keys := []string{pk.meta, pk.stock, pk.status, pk.stream, pk.inflight, sk.meta, sk.buyers}
	args := []string{
		a.Order.UserID.String(), a.Order.ID.String(), queue,
		strconv.FormatInt(a.MaxQueued, 10), a.Order.SaleID.String(),
		a.Order.ProductID.String(), strconv.FormatInt(a.Order.CreatedAt.UnixMilli(), 10), "0",
	}
	if a.Queue {
		if tp := traceParent(ctx); tp != "" {
			args = append(args, tp)
		}
	}
	var res []rueidis.RedisMessage
	var err error
	if a.Queue && g.c.minReplicas > 0 {
		args[7] = "1"
		res, confirmed, err = g.admitConfirmed(ctx, keys, args)
	} else {
		res, err = g.c.exec(ctx, "admit", admitScript, keys, args).ToArray()
	}
	if err != nil {
		return 0, uuid.Nil, fmt.Errorf("gate admit: %w", err)
	}
	if len(res) == 0 {
		return 0, uuid.Nil, fmt.Errorf("gate admit: empty script result")
	}
	code, err := res[0].AsInt64()
	if err != nil {
		return 0, uuid.Nil, fmt.Errorf("gate admit: %w", err)
	}
	var held uuid.UUID
	if len(res) > 1 {
		s, err := res[1].ToString()
		if err == nil {
			held, err = uuid.Parse(s)
		}
		if err != nil {
			return 0, uuid.Nil, fmt.Errorf("gate admit: held order: %w", err)
		}
	}
	var notConfirmed error
	if !confirmed {
		notConfirmed = fmt.Errorf("gate admit: %w", order.ErrNotReplicated)
	}
	switch code {
	case codeAdmitted:
		return order.Admitted, uuid.Nil, notConfirmed
	case codeSoldOut:
		return order.DeniedSoldOut, uuid.Nil, nil
	case codeAlready:
		return order.DeniedAlreadyAdmitted, held, notConfirmed
	case codeInProgress:
		return order.DeniedInProgress, held, nil
	case codeNotOpen:
		return order.DeniedNotOpen, uuid.Nil, nil
	case codeNotLoaded:
		return order.DeniedNotLoaded, uuid.Nil, nil
	case codeBusy:
		return order.DeniedBusy, uuid.Nil, nil
	}
	return 0, uuid.Nil, fmt.Errorf("gate admit: unexpected script result %d", code)
}

// admitConfirmed runs the admit script and, when it admitted the order or
// found the user's earlier one, WAITs on the same connection until
// minReplicas replicas hold everything the master had written by then, the
// order included (see admitSource). confirmed is false when they did not
// within the replica timeout. The connection is one of rueidis's pooled
// dedicated ones (a WAIT would stall every caller sharing a pipelined
// connection); a refused attempt (sold out, not open) skips the WAIT.
func (g *Gate) admitConfirmed(ctx context.Context, keys, args []string) (res []rueidis.RedisMessage, confirmed bool, err error) {
	ctx = g.c.scriptContext(ctx, "admit")
	err = g.c.dedicated(ctx, func(d rueidis.DedicatedClient) error {
		start := time.Now()
		r := d.Do(ctx, d.B().Evalsha().Sha1(admitSHA1).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build())
		if isNoScript(r.Error()) {
			r = d.Do(ctx, d.B().Eval().Script(admitSource).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build())
		}
		g.c.metrics.observeScript("admit", time.Since(start)) // the WAIT after it not included
		var err error
		if res, err = r.ToArray(); err != nil {
			return err
		}
		if len(res) == 0 {
			return nil // reported by the caller
		}
		if code, _ := res[0].AsInt64(); code != codeAdmitted && code != codeAlready {
			confirmed = true
			return nil
		}
		confirmed, err = g.c.waitReplicas(ctx, d)
		return err
	})
	return res, confirmed, err
}

// waitReplicas WAITs on d's connection until minReplicas replicas hold its
// last write, for up to the replica timeout, and reports whether they did.
func (c *Client) waitReplicas(ctx context.Context, d rueidis.DedicatedClient) (bool, error) {
	n, err := d.Do(ctx, d.B().Wait().Numreplicas(int64(c.minReplicas)).Timeout(c.replicaTimeout.Milliseconds()).Build()).AsInt64()
	if err != nil {
		return false, fmt.Errorf("wait for replicas: %w", err)
	}
	return n >= int64(c.minReplicas), nil
}

func isNoScript(err error) bool {
	re, ok := rueidis.IsRedisErr(err)
	return ok && strings.HasPrefix(re.Error(), "NOSCRIPT")
}

func sha1Hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Settle records what became of in-flight orders, one script per product:
// it removes each order's in-flight record (acknowledging and deleting its
// stream entry in queue mode) and, for a rejected order, records it as
// REJECTED, gives its unit back unless PostgreSQL had none, and drops the
// user's admission unless they hold another order. An order no longer in
// flight is left alone, so Settle bears repeating.
func (g *Gate) Settle(ctx context.Context, settled []order.Settlement) error {
	byProduct := map[uuid.UUID][]order.Settlement{}
	for _, s := range settled {
		byProduct[s.Order.ProductID] = append(byProduct[s.Order.ProductID], s)
	}
	for productID, ss := range byProduct {
		pk := g.c.productKeys(productID)
		keys := make([]string, 0, 5+2*len(ss))
		keys = append(keys, pk.meta, pk.stock, pk.status, pk.stream, pk.inflight)
		args := make([]string, 0, 1+4*len(ss))
		args = append(args, Group)
		for _, s := range ss {
			sk := g.c.saleKeys(productID, s.Order.SaleID)
			code, ok := outcomeCodes[s.Outcome]
			if !ok {
				return fmt.Errorf("gate settle: unknown outcome %d", s.Outcome)
			}
			keys = append(keys, sk.buyers, sk.rejected)
			args = append(args, s.Order.ID.String(), s.Order.UserID.String(), s.Ref, code)
		}
		if err := g.c.exec(ctx, "settle", settleScript, keys, args).Error(); err != nil {
			return fmt.Errorf("gate settle: %w", err)
		}
	}
	return nil
}

// Load applies st unless the gate holds the product's state and every
// sale's in it already, and registers the product's stream for workers.
func (g *Gate) Load(ctx context.Context, st order.ProductState) error {
	_, err := g.load(ctx, "load", st)
	return err
}

// Reconcile replaces the product's stock and its sales' windows and buyers
// with st plus the orders still in flight (see loadScript), whatever the
// gate held, and returns the units it may now admit. It keeps the stream,
// the in-flight orders and the rejected ones.
func (g *Gate) Reconcile(ctx context.Context, st order.ProductState) (int32, error) {
	return g.load(ctx, "reconcile", st)
}

func (g *Gate) load(ctx context.Context, mode string, st order.ProductState) (int32, error) {
	pk := g.c.productKeys(st.ProductID)
	keys := []string{pk.meta, pk.stock, pk.status, pk.stream, pk.inflight}
	sold := 0
	var expire time.Time
	for _, sb := range st.Sales {
		sold += len(sb.Buyers)
		expire = later(expire, sb.Sale.EndsAt.Add(keepAfterEnd))
	}
	if expire.IsZero() {
		expire = time.Now().Add(keepAfterEnd)
	}
	// The step is 1% of what the product's sales started with, as far as
	// the gate can tell: what is left plus what was taken.
	step := max(1, (int64(max(st.Quantity, 0))+int64(sold)+99)/100)
	args := make([]string, 0, 6+5*len(st.Sales)+2*sold)
	args = append(args, mode,
		strconv.FormatInt(int64(max(st.Quantity, 0)), 10),
		strconv.FormatInt(st.OrphanedBefore.UnixMilli(), 10),
		strconv.FormatInt(step, 10),
		strconv.FormatInt(expire.UnixMilli(), 10),
		strconv.Itoa(len(st.Sales)),
	)
	for _, sb := range st.Sales {
		sk := g.c.saleKeys(st.ProductID, sb.Sale.ID)
		keys = append(keys, sk.meta, sk.buyers, sk.rejected)
		args = append(args, sb.Sale.ID.String(),
			strconv.FormatInt(sb.Sale.StartsAt.UnixMicro(), 10),
			strconv.FormatInt(sb.Sale.EndsAt.UnixMicro(), 10),
			strconv.FormatInt(sb.Sale.EndsAt.Add(keepAfterEnd).UnixMilli(), 10),
			strconv.Itoa(len(sb.Buyers)))
	}
	for _, sb := range st.Sales {
		for user, id := range sb.Buyers {
			args = append(args, user.String(), id.String())
		}
	}
	res, err := g.c.exec(ctx, mode, loadScript, keys, args).AsIntSlice()
	if err == nil && len(res) != 1 && len(res) != 4 {
		err = fmt.Errorf("unexpected script result %v", res)
	}
	if err != nil {
		return 0, fmt.Errorf("gate %s: %w", mode, err)
	}
	left := res[0]
	if mode == "reconcile" && len(res) == 4 {
		g.c.metrics.reconciled(res[0], res[1], res[2], res[3])
	}
	// The registry lives in another slot, so it cannot be written by the
	// script; SADD is idempotent and also heals a lost registry.
	if err := g.c.rc.Do(ctx, g.c.rc.B().Sadd().Key(g.c.streamsKey()).Member(pk.stream).Build()).Error(); err != nil {
		return 0, fmt.Errorf("gate register stream: %w", err)
	}
	if left < 0 { // loaded already
		n, _, err := g.Remaining(ctx, st.ProductID)
		return n, err
	}
	return int32(left), nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Holder is the order the user holds in the sale as the gate records it,
// read through client-side caching: once a sale sells out its buyers stop
// changing, so a winner's retries are answered from memory, and Redis
// pushes an invalidation when they do change. inProgress tells that the
// order is still being written (sync mode).
func (g *Gate) Holder(ctx context.Context, sl sale.Sale, userID uuid.UUID) (orderID uuid.UUID, inProgress, found bool, err error) {
	sk := g.c.saleKeys(sl.ProductID, sl.ID)
	s, err := g.c.rc.DoCache(ctx, g.c.rc.B().Hget().Key(sk.buyers).Field(userID.String()).Cache(), statusCacheTTL).ToString()
	if rueidis.IsRedisNil(err) {
		return uuid.Nil, false, false, nil
	}
	if err != nil {
		return uuid.Nil, false, false, fmt.Errorf("gate holder: %w", err)
	}
	if orderID, err = uuid.Parse(s); err != nil {
		return uuid.Nil, false, false, fmt.Errorf("gate holder: %w", err)
	}
	pk := g.c.productKeys(sl.ProductID)
	inProgress, err = g.c.rc.DoCache(ctx, g.c.rc.B().Hexists().Key(pk.inflight).Field(s).Cache(), statusCacheTTL).AsBool()
	if err != nil {
		return uuid.Nil, false, false, fmt.Errorf("gate holder: %w", err)
	}
	return orderID, inProgress, true, nil
}

// Pending is the user's admission in the sale as the gate records it: the
// admitted order with status PENDING, else a rejected one with status
// REJECTED; ok is false when there is neither. An admitted order stays
// recorded after it is committed, so callers look in PostgreSQL first.
// CreatedAt comes from the order's UUIDv7.
func (g *Gate) Pending(ctx context.Context, sl sale.Sale, userID uuid.UUID) (order.Order, bool, error) {
	k := g.c.saleKeys(sl.ProductID, sl.ID)
	u := userID.String()
	res := g.c.rc.DoMulti(ctx,
		g.c.rc.B().Hget().Key(k.buyers).Field(u).Build(),
		g.c.rc.B().Hget().Key(k.rejected).Field(u).Build(),
	)
	var vals [2]string
	for i, r := range res {
		v, err := r.ToString()
		if err != nil && !rueidis.IsRedisNil(err) {
			return order.Order{}, false, fmt.Errorf("gate pending: %w", err)
		}
		vals[i] = v
	}
	status := order.StatusPending
	idText := vals[0]
	if idText == "" {
		status, idText = order.StatusRejected, vals[1]
	}
	if idText == "" {
		return order.Order{}, false, nil
	}
	id, err := uuid.Parse(idText)
	if err != nil {
		return order.Order{}, false, fmt.Errorf("gate pending: order id %q: %w", idText, err)
	}
	o := order.Order{ID: id, SaleID: sl.ID, ProductID: sl.ProductID, UserID: userID, Status: status}
	if id.Version() == 7 {
		sec, nsec := id.Time().UnixTime()
		o.CreatedAt = time.Unix(sec, nsec).UTC()
	}
	return o, true, nil
}

// Status is a sale's published status as this process sees it.
type Status struct {
	// State is the sale's state at the time passed to Gate.Status.
	State sale.State
	// Remaining is the product's stock rounded up to its publish step (1% of
	// its initial stock): an upper bound, zero exactly when sold out.
	Remaining int32
	// CacheHit tells whether the value came from this process's memory.
	CacheHit bool
}

// Status reads the sale's product's status key through client-side caching
// (DoCache): most reads are served from memory, and Redis pushes an
// invalidation when a script rewrites the key. Scripts rewrite it only when
// the product sells out, comes back, or its stock crosses a publish step
// (max(1, ceil(initial/100)) units), so a hot sale does not thrash every
// process's cache; Remaining is therefore coarse. loaded is false when the
// gate holds no state for the product. Use Remaining for the exact stock.
func (g *Gate) Status(ctx context.Context, sl sale.Sale, now time.Time) (st Status, loaded bool, err error) {
	v, found, hit, err := g.c.cachedGet(ctx, g.c.statusKey(sl.ProductID), statusCacheTTL, func(s string) (any, error) {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("malformed status %q", s)
		}
		return int32(n), nil
	})
	if err != nil {
		return Status{}, false, fmt.Errorf("gate status: %w", err)
	}
	if !found {
		return Status{}, false, nil
	}
	remaining := v.(int32)
	return Status{State: sl.StateAt(now, remaining), Remaining: remaining, CacheHit: hit}, true, nil
}

// Remaining is the product's exact stock in the gate, read uncached; loaded
// is false when the gate holds no state for the product.
func (g *Gate) Remaining(ctx context.Context, productID uuid.UUID) (remaining int32, loaded bool, err error) {
	n, err := g.c.rc.Do(ctx, g.c.rc.B().Get().Key(g.c.productKeys(productID).stock).Build()).AsInt64()
	if rueidis.IsRedisNil(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("gate remaining: %w", err)
	}
	return int32(n), true, nil
}
