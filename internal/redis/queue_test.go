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
		a := attempt(sl, newID())
		a.Queue, a.MaxQueued = true, 1000
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

// TestQueueReadAck reads from two sales' streams, blocking on both.
func TestQueueReadAck(t *testing.T) {
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
	if err := q.Ack(t.Context(), got); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	for _, sl := range []sale.Sale{s1, s2} {
		if n, err := q.Backlog(t.Context(), sl.ID); err != nil || n != 0 {
			t.Errorf("Backlog = %d, %v, want 0, nil", n, err)
		}
	}

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

// TestQueueClaimDeadConsumer: entries a consumer read but never acknowledged
// go to another consumer once idle for longer than claimIdle.
func TestQueueClaimDeadConsumer(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	g, q := redis.NewGate(c), redis.NewQueue(c)
	sl := openSale()
	mustLoad(t, g, sl, 10, nil)
	want := admitQueued(t, g, sl, 3)

	got, err := q.Read(t.Context(), "dead", 10, 0, time.Hour)
	if err != nil || len(got) != 3 {
		t.Fatalf("Read by dead = %d, %v, want 3, nil", len(got), err)
	}
	// Not idle long enough: the live consumer gets nothing.
	got, err = q.Read(t.Context(), "live", 10, 0, time.Hour)
	if err != nil || len(got) != 0 {
		t.Fatalf("Read by live = %d, %v, want 0, nil", len(got), err)
	}
	// Poll until the entries are idle for over 1ms.
	for range 1000 {
		got, err = q.Read(t.Context(), "live", 10, 0, time.Millisecond)
		if err != nil {
			t.Fatalf("Read by live: %v", err)
		}
		if len(got) > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if !slices.Equal(ids(got), orderIDs(want)) {
		t.Errorf("claimed = %v, want %v", ids(got), orderIDs(want))
	}
	if err := q.Ack(t.Context(), got); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if n, err := q.Backlog(t.Context(), sl.ID); err != nil || n != 0 {
		t.Errorf("Backlog = %d, %v, want 0, nil", n, err)
	}
}

// TestQueueRejectPending: Pending reports the admission, then the rejection;
// Reject drops the admission without returning the unit.
func TestQueueRejectPending(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	g, q := redis.NewGate(c), redis.NewQueue(c)
	sl := openSale()
	mustLoad(t, g, sl, 10, nil)
	user := newID()

	if _, ok, err := q.Pending(t.Context(), sl.ID, user); err != nil || ok {
		t.Fatalf("Pending before admission = %v, %v, want false, nil", ok, err)
	}
	a := attempt(sl, user)
	mustAdmit(t, g, a, order.Admitted)
	o, ok, err := q.Pending(t.Context(), sl.ID, user)
	if err != nil || !ok {
		t.Fatalf("Pending = %v, %v, want true, nil", ok, err)
	}
	want := a.Order
	want.CreatedAt = o.CreatedAt // from the UUIDv7, checked below
	if o != want {
		t.Errorf("Pending = %+v, want %+v", o, want)
	}
	if d := o.CreatedAt.Sub(a.Order.CreatedAt); d < -time.Second || d > time.Second {
		t.Errorf("Pending.CreatedAt = %v, want about %v", o.CreatedAt, a.Order.CreatedAt)
	}

	if err := q.Reject(t.Context(), a.Order); err != nil {
		t.Fatalf("Reject: %v", err)
	}
	o, ok, err = q.Pending(t.Context(), sl.ID, user)
	if err != nil || !ok {
		t.Fatalf("Pending after Reject = %v, %v, want true, nil", ok, err)
	}
	if o.ID != a.Order.ID || o.Status != order.StatusRejected {
		t.Errorf("Pending after Reject = %v %v, want %v REJECTED", o.ID, o.Status, a.Order.ID)
	}
	if got, want := remaining(t, g, sl.ID), int32(9); got != want {
		t.Errorf("Remaining after Reject = %d, want %d", got, want)
	}

	// The user may try again; the new admission is what Pending reports.
	b := attempt(sl, user)
	mustAdmit(t, g, b, order.Admitted)
	o, ok, err = q.Pending(t.Context(), sl.ID, user)
	if err != nil || !ok || o.ID != b.Order.ID || o.Status != order.StatusPending {
		t.Errorf("Pending after retry = %v %v %v, %v, want %v PENDING true, nil", o.ID, o.Status, ok, err, b.Order.ID)
	}
}

// TestQueueDropsDrainedStreams: a stream whose sale has expired is read until
// empty, then deleted and unregistered.
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
	stream := prefix + ":{sale:" + sl.ID.String() + "}:stream"
	// The sale's keys expire; its stream, holding an order, does not.
	if err := rc.Do(t.Context(), rc.B().Del().Key(prefix+":{sale:"+sl.ID.String()+"}:meta").Build()).Error(); err != nil {
		t.Fatalf("DEL meta: %v", err)
	}
	got, err := q.Read(t.Context(), "w1", 10, 0, time.Hour)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if !slices.Equal(ids(got), orderIDs(want)) {
		t.Errorf("Read = %v, want %v", ids(got), orderIDs(want))
	}
	if err := q.Ack(t.Context(), got); err != nil {
		t.Fatalf("Ack: %v", err)
	}
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
	if n, err := q.Backlog(t.Context(), sl.ID); err != nil || n != 0 {
		t.Errorf("Backlog = %d, %v, want 0, nil", n, err)
	}
}
