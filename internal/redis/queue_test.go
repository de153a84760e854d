package redis_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/redis"
	"github.com/flashsale/flashsale/internal/sale"
)

// admitQueued admits n new users to sl in queue mode and returns their orders.
func admitQueued(t testing.TB, g *redis.Gate, sl sale.Sale, n int) []order.Order {
	t.Helper()
	var os []order.Order
	for range n {
		a := queued(sl, newID())
		mustAdmit(t, g, a, order.Admitted)
		os = append(os, a.Order)
	}
	return os
}

func ids(qs []order.QueuedOrder) []uuid.UUID {
	var out []uuid.UUID
	for _, q := range qs {
		out = append(out, q.ID)
	}
	slices.SortFunc(out, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	return out
}

func orderIDs(os []order.Order) []uuid.UUID {
	var out []uuid.UUID
	for _, o := range os {
		out = append(out, o.ID)
	}
	slices.SortFunc(out, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	return out
}

// settleAll settles every entry with outcome.
func settleAll(t testing.TB, g *redis.Gate, qs []order.QueuedOrder, outcome order.Outcome) {
	t.Helper()
	ss := make([]order.Settlement, len(qs))
	for i, e := range qs {
		ss[i] = order.Settlement{Order: e.Order, Ref: e.Ref, Outcome: outcome}
	}
	mustSettle(t, g, ss...)
}

// TestQueueReadSettle reads from two products' streams, blocking on both;
// settling the entries empties the streams.
func TestQueueReadSettle(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	g, q := redis.NewGate(c), redis.NewQueue(c)
	s1, s2 := openSale(), openSale()
	mustLoad(t, g, s1, 10, nil)
	mustLoad(t, g, s2, 10, nil)

	// Nothing queued yet: a short blocking read returns nothing.
	got, err := q.Read(t.Context(), "w1", 10, 10*time.Millisecond, time.Hour)
	if err != nil || len(got) != 0 {
		t.Fatalf("Read on empty streams = %d, %v, want 0, nil", len(got), err)
	}

	want := append(admitQueued(t, g, s1, 2), admitQueued(t, g, s2, 3)...)
	got, err = q.Read(t.Context(), "w1", 10, time.Second, time.Hour)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if !slices.Equal(ids(got), orderIDs(want)) {
		t.Errorf("Read ids = %v, want %v", ids(got), orderIDs(want))
	}
	settleAll(t, g, got, order.Committed)
	for _, sl := range []sale.Sale{s1, s2} {
		if n, err := q.Backlog(t.Context(), sl.ProductID); err != nil || n != 0 {
			t.Errorf("Backlog = %d, %v, want 0, nil", n, err)
		}
	}
	wantRemaining(t, g, s1.ProductID, 8, "of the first product")
	wantRemaining(t, g, s2.ProductID, 7, "of the second product")

	// A new order wakes a blocked reader.
	done := make(chan []order.QueuedOrder)
	go func() {
		got, err := q.Read(t.Context(), "w1", 10, 10*time.Second, time.Hour)
		if err != nil {
			t.Errorf("Read: %v", err)
		}
		done <- got
	}()
	more := admitQueued(t, g, s2, 1)
	got = <-done
	if len(got) == 0 {
		// The order may have been appended before the reader blocked and is
		// then read by the next call.
		got, err = q.Read(t.Context(), "w1", 10, time.Second, time.Hour)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
	}
	if !slices.Equal(ids(got), orderIDs(more)) {
		t.Errorf("Read after wake-up = %v, want %v", ids(got), orderIDs(more))
	}
}

// TestQueueProductStream: the sales of one product share its stream, which
// Reconcile registers; each entry reads back as the order admitted, in its
// own sale.
func TestQueueProductStream(t *testing.T) {
	t.Parallel()
	prefix := newPrefix()
	c := newClientPrefix(t, prefix)
	g, q := redis.NewGate(c), redis.NewQueue(c)
	rc := rawClient(t)
	s1 := openSale()
	s2 := saleOf(s1.ProductID)
	// Reconcile, like Load, registers the product's stream.
	mustReconcile(t, g, order.ProductState{
		ProductID: s1.ProductID, Quantity: 10,
		Sales: []order.SaleBuyers{{Sale: s1}, {Sale: s2}},
	})
	a1, a2 := queued(s1, newID()), queued(s2, newID())
	mustAdmit(t, g, a1, order.Admitted)
	mustAdmit(t, g, a2, order.Admitted)
	if n, err := q.Backlog(t.Context(), s1.ProductID); err != nil || n != 2 {
		t.Errorf("Backlog = %d, %v, want 2, nil", n, err)
	}
	ms, err := rc.Do(t.Context(), rc.B().Smembers().Key(prefix+":streams").Build()).AsStrSlice()
	if err != nil {
		t.Fatalf("SMEMBERS: %v", err)
	}
	if want := productKey(prefix, s1.ProductID, "stream"); !slices.Equal(ms, []string{want}) {
		t.Errorf("registered = %v, want [%s]", ms, want)
	}
	got, err := q.Read(t.Context(), "w1", 10, 0, time.Hour)
	if err != nil || len(got) != 2 {
		t.Fatalf("Read = %d, %v, want 2, nil", len(got), err)
	}
	if got[0].Order != a1.Order || got[1].Order != a2.Order {
		t.Errorf("Read = %+v, %+v, want %+v, %+v", got[0].Order, got[1].Order, a1.Order, a2.Order)
	}
	if got[0].Ref == "" || got[0].Ref == got[1].Ref {
		t.Errorf("Refs = %q, %q, want two entry ids", got[0].Ref, got[1].Ref)
	}
}

// TestQueueClaimDeadConsumer: entries a consumer read but never settled go
// to another consumer once idle for longer than claimIdle.
func TestQueueClaimDeadConsumer(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	g, q := redis.NewGate(c), redis.NewQueue(c)
	sl := openSale()
	mustLoad(t, g, sl, 10, nil)
	want := admitQueued(t, g, sl, 3)

	dead, err := q.Read(t.Context(), "dead", 10, 0, time.Hour)
	if err != nil || len(dead) != 3 {
		t.Fatalf("Read by dead = %d, %v, want 3, nil", len(dead), err)
	}
	got := claimAll(t, q, "live", 3)
	if !slices.Equal(ids(got), orderIDs(want)) {
		t.Errorf("claimed = %v, want %v", ids(got), orderIDs(want))
	}
	settleAll(t, g, got, order.Committed)
	if n, err := q.Backlog(t.Context(), sl.ProductID); err != nil || n != 0 {
		t.Errorf("Backlog = %d, %v, want 0, nil", n, err)
	}
	// Nothing is left to claim.
	if got, err := q.Read(t.Context(), "other", 10, 0, time.Nanosecond); err != nil || len(got) != 0 {
		t.Errorf("Read after Settle = %d, %v, want 0, nil", len(got), err)
	}
}

// claimAll waits, reading as consumer, until it has taken n entries over
// (not idle long enough at first, then idle for over 1ms).
func claimAll(t testing.TB, q *redis.Queue, consumer string, n int) []order.QueuedOrder {
	t.Helper()
	got, err := q.Read(t.Context(), consumer, 10, 0, time.Hour)
	if err != nil || len(got) != 0 {
		t.Fatalf("Read by %s = %d, %v, want 0, nil", consumer, len(got), err)
	}
	for range 1000 {
		more, err := q.Read(t.Context(), consumer, 10, 0, time.Millisecond)
		if err != nil {
			t.Fatalf("Read by %s: %v", consumer, err)
		}
		got = append(got, more...)
		if len(got) >= n {
			return got
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("claimed %d entries, want %d", len(got), n)
	return nil
}

// TestQueueSettleTwice: a worker that took over a dead one's entries settles
// them, then the dead one (not so dead) settles them too: the units dropped
// come back once.
func TestQueueSettleTwice(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	g, q := redis.NewGate(c), redis.NewQueue(c)
	sl := openSale()
	mustLoad(t, g, sl, 10, nil)
	admitQueued(t, g, sl, 3)
	wantRemaining(t, g, sl.ProductID, 7, "after 3 admissions")

	slow, err := q.Read(t.Context(), "slow", 10, 0, time.Hour)
	if err != nil || len(slow) != 3 {
		t.Fatalf("Read by slow = %d, %v, want 3, nil", len(slow), err)
	}
	claimed := claimAll(t, q, "live", 3)
	settleAll(t, g, claimed, order.Dropped)
	wantRemaining(t, g, sl.ProductID, 10, "after dropping the 3")
	settleAll(t, g, slow, order.Dropped)
	settleAll(t, g, slow, order.RejectedDuplicate)
	wantRemaining(t, g, sl.ProductID, 10, "after settling the 3 again")
	for _, e := range slow {
		mustAdmit(t, g, queued(sl, e.UserID), order.Admitted)
	}
	wantRemaining(t, g, sl.ProductID, 7, "after the 3 retried")
}

// TestQueueDropsDrainedStreams: a stream whose product's state has expired
// is read until empty, then deleted and unregistered.
func TestQueueDropsDrainedStreams(t *testing.T) {
	t.Parallel()
	prefix := newPrefix()
	c := newClientPrefix(t, prefix)
	g, q := redis.NewGate(c), redis.NewQueue(c)
	rc := rawClient(t)
	registered := func() []string {
		t.Helper()
		ms, err := rc.Do(t.Context(), rc.B().Smembers().Key(prefix+":streams").Build()).AsStrSlice()
		if err != nil {
			t.Fatalf("SMEMBERS: %v", err)
		}
		slices.Sort(ms)
		return ms
	}

	sl := openSale()
	mustLoad(t, g, sl, 10, nil)
	want := admitQueued(t, g, sl, 1)
	stream := productKey(prefix, sl.ProductID, "stream")
	// The product's keys expire; its stream, holding an order, does not.
	del(t, rc, productKey(prefix, sl.ProductID, "meta"))
	got, err := q.Read(t.Context(), "w1", 10, 0, time.Hour)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if !slices.Equal(ids(got), orderIDs(want)) {
		t.Errorf("Read = %v, want %v", ids(got), orderIDs(want))
	}
	settleAll(t, g, got, order.Committed)
	if got := registered(); !slices.Equal(got, []string{stream}) {
		t.Errorf("registered = %v, want [%s]", got, stream)
	}
	// A new Queue (another worker) finds the stream drained and drops it.
	if _, err := redis.NewQueue(c).Read(t.Context(), "w2", 10, 0, time.Hour); err != nil {
		t.Fatalf("Read: %v", err)
	}
	if got := registered(); len(got) != 0 {
		t.Errorf("registered = %v, want none", got)
	}
	if n, err := q.Backlog(t.Context(), sl.ProductID); err != nil || n != 0 {
		t.Errorf("Backlog = %d, %v, want 0, nil", n, err)
	}
	if n := countKeys(t, rc, stream); n != 0 {
		t.Errorf("stream still there")
	}
}
