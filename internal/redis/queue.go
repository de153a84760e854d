package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/flashsale/flashsale/internal/order"
)

// Group is the consumer group every worker reads the sale streams in.
const Group = "flashsale-workers"

// prepareScript: KEYS stream, meta; ARGV group. A stream that is empty and
// whose product's state has expired is deleted (result 0, the caller unregisters it);
// otherwise the group is created, reading from the start, with MKSTREAM so
// workers can block on a sale before its first order (BUSYGROUP is ignored).
// Creating only while the product's meta or the stream exists keeps a late
// worker from resurrecting a stream another one just dropped.
var prepareScript = rueidis.NewLuaScript(`
if redis.call('EXISTS', KEYS[2]) == 0 and redis.call('XLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
return 1
`)

// reprepareEvery is how often a Queue checks a stream it already reads
// again, so drained streams of expired sales get dropped.
const reprepareEvery = time.Minute

// Queue is the per-product streams of admitted orders (order.Queue), read by
// workers in the consumer group Group. Streams are registered in the set
// <prefix>:streams by Gate.Load and Gate.Reconcile. Workers settle entries
// with Gate.Settle.
type Queue struct {
	c     *Client
	ready sync.Map // stream key -> time.Time its group was last made sure of
}

var _ order.Queue = (*Queue)(nil)

// NewQueue returns the queue over c.
func NewQueue(c *Client) *Queue {
	return &Queue{c: c}
}

// Read returns up to count orders for consumer: first entries idle for longer
// than claimIdle under other consumers (XAUTOCLAIM, so a dead worker's orders
// are taken over), then new ones; only when it found none does it wait up to
// block for new entries. On a standalone Redis it waits on all streams in one
// XREADGROUP; on Cluster, where that would cross slots, it waits on each
// stream in turn for a share of block.
func (q *Queue) Read(ctx context.Context, consumer string, count int, block, claimIdle time.Duration) ([]order.QueuedOrder, error) {
	if count <= 0 {
		return nil, nil
	}
	keys, err := q.streams(ctx)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		// Nothing to wait on; sleep so callers do not spin.
		if block > 0 {
			t := time.NewTimer(block)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		return nil, nil
	}
	var out []order.QueuedOrder
	for _, k := range keys {
		if len(out) >= count {
			break
		}
		got, err := q.claim(ctx, k, consumer, count-len(out), claimIdle)
		if err != nil {
			return out, err
		}
		out = append(out, got...)
	}
	if len(out) < count {
		got, err := q.readNew(ctx, keys, consumer, count-len(out), 0)
		if err != nil {
			return out, err
		}
		out = append(out, got...)
	}
	if len(out) > 0 || block <= 0 {
		return out, nil
	}
	if q.c.rc.Mode() == rueidis.ClientModeCluster {
		share := max(block/time.Duration(len(keys)), time.Millisecond)
		for _, k := range keys {
			got, err := q.readNew(ctx, []string{k}, consumer, count, share)
			if err != nil || len(got) > 0 {
				return got, err
			}
		}
		return nil, nil
	}
	return q.readNew(ctx, keys, consumer, count, block)
}

// streams lists the registered streams and makes sure each has the group,
// dropping drained streams of expired sales.
func (q *Queue) streams(ctx context.Context) ([]string, error) {
	all, err := q.c.rc.Do(ctx, q.c.rc.B().Smembers().Key(q.c.streamsKey()).Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("queue streams: %w", err)
	}
	keys := all[:0]
	for _, k := range all {
		if at, ok := q.ready.Load(k); ok && time.Since(at.(time.Time)) < reprepareEvery {
			keys = append(keys, k)
			continue
		}
		meta := k[:len(k)-len("stream")] + "meta"
		live, err := q.c.exec(ctx, "queue-prepare", prepareScript, []string{k, meta}, []string{Group}).AsInt64()
		if err != nil {
			return nil, fmt.Errorf("queue prepare %s: %w", k, err)
		}
		if live == 0 {
			if err := q.c.rc.Do(ctx, q.c.rc.B().Srem().Key(q.c.streamsKey()).Member(k).Build()).Error(); err != nil {
				return nil, fmt.Errorf("queue unregister %s: %w", k, err)
			}
			continue
		}
		q.ready.Store(k, time.Now())
		keys = append(keys, k)
	}
	return keys, nil
}

// claim takes over up to count entries of stream k idle for longer than idle.
func (q *Queue) claim(ctx context.Context, k, consumer string, count int, idle time.Duration) ([]order.QueuedOrder, error) {
	cmd := q.c.rc.B().Xautoclaim().Key(k).Group(Group).Consumer(consumer).
		MinIdleTime(strconv.FormatInt(idle.Milliseconds(), 10)).Start("0-0").
		Count(int64(count)).Build()
	res, err := q.c.rc.Do(ctx, cmd).ToArray()
	if err != nil {
		if isNoGroup(err) {
			q.ready.Delete(k)
			return nil, nil
		}
		return nil, fmt.Errorf("queue claim %s: %w", k, err)
	}
	if len(res) < 2 {
		return nil, nil
	}
	entries, err := res[1].AsXRange()
	if err != nil {
		return nil, fmt.Errorf("queue claim %s: %w", k, err)
	}
	return q.decode(ctx, k, entries)
}

// readNew reads entries never delivered to any consumer from keys, waiting up
// to block (0: no wait).
func (q *Queue) readNew(ctx context.Context, keys []string, consumer string, count int, block time.Duration) ([]order.QueuedOrder, error) {
	ids := make([]string, len(keys))
	for i := range ids {
		ids[i] = ">"
	}
	var cmd rueidis.Completed
	if block > 0 {
		cmd = q.c.rc.B().Xreadgroup().Group(Group, consumer).Count(int64(count)).
			Block(max(block.Milliseconds(), 1)).Streams().Key(keys...).Id(ids...).Build()
	} else {
		cmd = q.c.rc.B().Xreadgroup().Group(Group, consumer).Count(int64(count)).
			Streams().Key(keys...).Id(ids...).Build()
	}
	res, err := q.c.rc.Do(ctx, cmd).AsXRead()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	if err != nil {
		if isNoGroup(err) {
			for _, k := range keys {
				q.ready.Delete(k)
			}
			return nil, nil
		}
		return nil, fmt.Errorf("queue read: %w", err)
	}
	var out []order.QueuedOrder
	for _, k := range keys {
		got, err := q.decode(ctx, k, res[k])
		if err != nil {
			return out, err
		}
		out = append(out, got...)
		if len(out) >= count {
			break
		}
	}
	return out, nil
}

func isNoGroup(err error) bool {
	re, ok := rueidis.IsRedisErr(err)
	return ok && strings.HasPrefix(re.Error(), "NOGROUP")
}

// decode turns stream entries into orders. Entries that do not decode can
// never be persisted; they are acknowledged and deleted so they do not come
// back forever.
func (q *Queue) decode(ctx context.Context, k string, entries []rueidis.XRangeEntry) ([]order.QueuedOrder, error) {
	out := make([]order.QueuedOrder, 0, len(entries))
	var bad []string
	for _, e := range entries {
		o, ok := decodeOrder(e.FieldValues)
		if !ok {
			bad = append(bad, e.ID)
			continue
		}
		out = append(out, order.QueuedOrder{Order: o, Ref: e.ID, Trace: spanContextOf(e.FieldValues["traceparent"])})
	}
	if len(bad) > 0 {
		if err := q.ackKey(ctx, k, bad); err != nil {
			return out, err
		}
	}
	return out, nil
}

func decodeOrder(f map[string]string) (order.Order, bool) {
	id, err1 := uuid.Parse(f["order"])
	saleID, err2 := uuid.Parse(f["sale"])
	productID, err3 := uuid.Parse(f["product"])
	userID, err4 := uuid.Parse(f["user"])
	ms, err5 := strconv.ParseInt(f["created_ms"], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || err5 != nil {
		return order.Order{}, false
	}
	return order.Order{
		ID:        id,
		SaleID:    saleID,
		ProductID: productID,
		UserID:    userID,
		Status:    order.StatusPending,
		CreatedAt: time.UnixMilli(ms).UTC(),
	}, true
}

func (q *Queue) ackKey(ctx context.Context, k string, ids []string) error {
	for _, r := range q.c.rc.DoMulti(ctx,
		q.c.rc.B().Xack().Key(k).Group(Group).Id(ids...).Build(),
		q.c.rc.B().Xdel().Key(k).Id(ids...).Build(),
	) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("queue ack %s: %w", k, err)
		}
	}
	return nil
}

// Backlog is the number of entries in the product's stream (XLEN): admitted
// orders not yet settled.
func (q *Queue) Backlog(ctx context.Context, productID uuid.UUID) (int64, error) {
	n, err := q.c.rc.Do(ctx, q.c.rc.B().Xlen().Key(q.c.productKeys(productID).stream).Build()).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("queue backlog: %w", err)
	}
	return n, nil
}
