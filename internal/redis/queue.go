package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
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

	mu sync.Mutex
	// unconfirmed are entries handed to a consumer that replicas did not
	// confirm in time (WithReplicas): its next Read claims them again, so
	// that the WAIT after that claim covers them.
	unconfirmed map[streamConsumer][]string
}

type streamConsumer struct{ stream, consumer string }

var _ order.Queue = (*Queue)(nil)

// NewQueue returns the queue over c.
func NewQueue(c *Client) *Queue {
	return &Queue{c: c, unconfirmed: map[streamConsumer][]string{}}
}

// ErrUnconfirmed is Read's error for entries it read but that no replica
// confirmed in time (WithReplicas): they are not handed out, since a
// failover could still lose them, and the consumer's next Read tries again.
var ErrUnconfirmed = errors.New("queued orders not confirmed on a replica in time")

// Read returns up to count orders for consumer: first entries idle for longer
// than claimIdle under other consumers (XAUTOCLAIM, so a dead worker's orders
// are taken over), then new ones; only when it found none does it wait up to
// block for new entries. Each stream is read on its own (on Redis Cluster
// each lives in its product's slot, on whichever master serves it). On a
// single Redis the wait is one XREADGROUP on all streams; on a cluster,
// where that would cross slots, it waits on each stream in turn for a share
// of block.
//
// With replicas required (WithReplicas), entries are returned only once that
// many replicas hold them (a WAIT after reading them, on the same
// connection), so that no order reaches PostgreSQL whose admission a
// failover could still undo. A stream that could not be read, or whose
// entries were not confirmed (ErrUnconfirmed), does not stop the others:
// Read returns what it got with the first such error.
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
	var firstErr error
	for _, k := range keys {
		if len(out) >= count {
			break
		}
		got, err := q.readStream(ctx, k, consumer, count-len(out), claimIdle)
		out = append(out, got...)
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if len(out) > 0 || firstErr != nil || block <= 0 {
		return out, firstErr
	}
	if q.c.Cluster() {
		share := max(block/time.Duration(len(keys)), time.Millisecond)
		for _, k := range keys {
			got, err := q.readBlocking(ctx, []string{k}, consumer, count, share)
			if err != nil || len(got) > 0 {
				return got, err
			}
		}
		return nil, nil
	}
	return q.readBlocking(ctx, keys, consumer, count, block)
}

// doer runs the commands of one read: the shared client, or one dedicated
// connection when a WAIT follows them.
type doer interface {
	Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult
	B() rueidis.Builder
}

// confirming runs fn on one connection and, when replicas are required and
// fn read entries, WAITs for them there; unconfirmed entries are kept for
// the consumer's next Read and ErrUnconfirmed returned.
func (q *Queue) confirming(ctx context.Context, consumer string, fn func(d doer) (map[string][]rueidis.XRangeEntry, error)) ([]order.QueuedOrder, error) {
	var read map[string][]rueidis.XRangeEntry
	var err error
	if q.c.minReplicas <= 0 {
		read, err = fn(q.c.rc)
	} else {
		err = q.c.rc.Dedicated(func(d rueidis.DedicatedClient) error {
			var err error
			if read, err = fn(d); len(read) == 0 {
				return err
			}
			ok, werr := q.c.waitReplicas(ctx, d)
			if werr == nil && !ok {
				werr = ErrUnconfirmed
			}
			if werr != nil {
				for k, entries := range read {
					q.keepUnconfirmed(k, consumer, entries)
				}
				read = nil
			}
			return cmp.Or(err, werr)
		})
	}
	var out []order.QueuedOrder
	for k, entries := range read {
		got, derr := q.decode(ctx, k, entries)
		out = append(out, got...)
		if derr != nil && err == nil {
			err = derr
		}
	}
	if err != nil {
		err = fmt.Errorf("queue read: %w", err)
	}
	return out, err
}

func (q *Queue) keepUnconfirmed(k, consumer string, entries []rueidis.XRangeEntry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	sc := streamConsumer{k, consumer}
	for _, e := range entries {
		q.unconfirmed[sc] = append(q.unconfirmed[sc], e.ID)
	}
}

func (q *Queue) takeUnconfirmed(k, consumer string, count int) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	sc := streamConsumer{k, consumer}
	ids := q.unconfirmed[sc]
	n := min(count, len(ids))
	took := slices.Clone(ids[:n])
	if n == len(ids) {
		delete(q.unconfirmed, sc)
	} else {
		q.unconfirmed[sc] = ids[n:]
	}
	return took
}

// readStream reads up to count entries of stream k for consumer without
// waiting: its own unconfirmed ones again, then others' idle ones, then new
// ones.
func (q *Queue) readStream(ctx context.Context, k, consumer string, count int, claimIdle time.Duration) ([]order.QueuedOrder, error) {
	return q.confirming(ctx, consumer, func(d doer) (map[string][]rueidis.XRangeEntry, error) {
		var entries []rueidis.XRangeEntry
		if ids := q.takeUnconfirmed(k, consumer, count); len(ids) > 0 {
			got, err := q.reclaim(ctx, d, k, consumer, ids)
			if err != nil {
				q.keepUnconfirmed(k, consumer, idEntries(ids))
				return nil, err
			}
			entries = append(entries, got...)
		}
		if n := count - len(entries); n > 0 {
			got, err := q.claim(ctx, d, k, consumer, n, claimIdle)
			entries = append(entries, got...)
			if err != nil {
				return map[string][]rueidis.XRangeEntry{k: entries}, err
			}
		}
		if n := count - len(entries); n > 0 {
			got, err := q.readNew(ctx, d, []string{k}, consumer, n, 0)
			entries = append(entries, got[k]...)
			if err != nil {
				return map[string][]rueidis.XRangeEntry{k: entries}, err
			}
		}
		if len(entries) == 0 {
			return nil, nil
		}
		return map[string][]rueidis.XRangeEntry{k: entries}, nil
	})
}

func idEntries(ids []string) []rueidis.XRangeEntry {
	out := make([]rueidis.XRangeEntry, len(ids))
	for i, id := range ids {
		out[i].ID = id
	}
	return out
}

// readBlocking waits up to block for new entries of keys (one XREADGROUP:
// keys must share a slot on a cluster).
func (q *Queue) readBlocking(ctx context.Context, keys []string, consumer string, count int, block time.Duration) ([]order.QueuedOrder, error) {
	return q.confirming(ctx, consumer, func(d doer) (map[string][]rueidis.XRangeEntry, error) {
		return q.readNew(ctx, d, keys, consumer, count, block)
	})
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

// reclaim takes entries of stream k back for consumer (XCLAIM, idle 0): a
// write, so that a WAIT after it covers them. Entries deleted meanwhile
// (settled by a worker that claimed them) are not returned.
func (q *Queue) reclaim(ctx context.Context, d doer, k, consumer string, ids []string) ([]rueidis.XRangeEntry, error) {
	entries, err := d.Do(ctx, d.B().Xclaim().Key(k).Group(Group).Consumer(consumer).MinIdleTime("0").Id(ids...).Build()).AsXRange()
	if err != nil {
		if isNoGroup(err) {
			q.ready.Delete(k)
			return nil, nil
		}
		return nil, fmt.Errorf("reclaim %s: %w", k, err)
	}
	return slices.DeleteFunc(entries, func(e rueidis.XRangeEntry) bool { return e.FieldValues == nil }), nil
}

// claim takes over up to count entries of stream k idle for longer than idle.
func (q *Queue) claim(ctx context.Context, d doer, k, consumer string, count int, idle time.Duration) ([]rueidis.XRangeEntry, error) {
	cmd := d.B().Xautoclaim().Key(k).Group(Group).Consumer(consumer).
		MinIdleTime(strconv.FormatInt(idle.Milliseconds(), 10)).Start("0-0").
		Count(int64(count)).Build()
	res, err := d.Do(ctx, cmd).ToArray()
	if err != nil {
		if isNoGroup(err) {
			q.ready.Delete(k)
			return nil, nil
		}
		return nil, fmt.Errorf("claim %s: %w", k, err)
	}
	if len(res) < 2 {
		return nil, nil
	}
	entries, err := res[1].AsXRange()
	if err != nil {
		return nil, fmt.Errorf("claim %s: %w", k, err)
	}
	return entries, nil
}

// readNew reads entries never delivered to any consumer from keys, waiting up
// to block (0: no wait).
func (q *Queue) readNew(ctx context.Context, d doer, keys []string, consumer string, count int, block time.Duration) (map[string][]rueidis.XRangeEntry, error) {
	ids := make([]string, len(keys))
	for i := range ids {
		ids[i] = ">"
	}
	var cmd rueidis.Completed
	if block > 0 {
		cmd = d.B().Xreadgroup().Group(Group, consumer).Count(int64(count)).
			Block(max(block.Milliseconds(), 1)).Streams().Key(keys...).Id(ids...).Build()
	} else {
		cmd = d.B().Xreadgroup().Group(Group, consumer).Count(int64(count)).
			Streams().Key(keys...).Id(ids...).Build()
	}
	res, err := d.Do(ctx, cmd).AsXRead()
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
		return nil, fmt.Errorf("read: %w", err)
	}
	for k, entries := range res {
		if len(entries) == 0 {
			delete(res, k)
		}
	}
	return res, nil
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
