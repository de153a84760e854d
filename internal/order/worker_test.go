package order_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/order"
)

// fakeQueue is an in-memory stream with one consumer group. Read hands out
// new entries, and with claim also entries delivered before but never
// acknowledged (as a claim after claimIdle would). The methods a Worker does
// not call are left to the nil Queue (they would panic).
type fakeQueue struct {
	order.Queue
	mu        sync.Mutex
	entries   []order.QueuedOrder
	delivered map[string]bool
	acked     map[string]bool
	rejected  map[uuid.UUID]bool
	claim     bool
	ackErr    error
	changed   chan struct{} // signaled after each Ack and Reject
}

func newFakeQueue(orders []order.Order) *fakeQueue {
	q := &fakeQueue{
		delivered: map[string]bool{},
		acked:     map[string]bool{},
		rejected:  map[uuid.UUID]bool{},
		changed:   make(chan struct{}, 1),
	}
	for i, o := range orders {
		q.entries = append(q.entries, order.QueuedOrder{Order: o, Ref: fmt.Sprintf("%d-0", i+1)})
	}
	return q
}

func (q *fakeQueue) Read(ctx context.Context, consumer string, count int, block, claimIdle time.Duration) ([]order.QueuedOrder, error) {
	q.mu.Lock()
	var out []order.QueuedOrder
	for _, e := range q.entries {
		if len(out) == count {
			break
		}
		if q.acked[e.Ref] || (q.delivered[e.Ref] && !q.claim) {
			continue
		}
		q.delivered[e.Ref] = true
		out = append(out, e)
	}
	q.mu.Unlock()
	if len(out) == 0 {
		// Block briefly, not the whole block, to keep the tests quick.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return out, nil
}

func (q *fakeQueue) Ack(_ context.Context, qs []order.QueuedOrder) error {
	defer q.signal()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ackErr != nil {
		return q.ackErr
	}
	for _, e := range qs {
		q.acked[e.Ref] = true
	}
	return nil
}

func (q *fakeQueue) Reject(_ context.Context, o order.Order) error {
	defer q.signal()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rejected[o.ID] = true
	return nil
}

func (q *fakeQueue) signal() {
	select {
	case q.changed <- struct{}{}:
	default:
	}
}

// counts is the number of entries acknowledged and, separately, the
// number delivered (read at least once).
func (q *fakeQueue) counts() (acked, delivered int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.acked), len(q.delivered)
}

// waitFor waits until cond holds, re-checking on each change of the queue.
func (q *fakeQueue) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a hang, not a timing
	defer cancel()
	for !cond() {
		select {
		case <-q.changed:
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
}

// fakeGate records Release calls; a Worker calls no other method.
type fakeGate struct {
	order.Gate
	mu       sync.Mutex
	released map[uuid.UUID]bool // order id -> forget
}

func (g *fakeGate) Release(_ context.Context, o order.Order, forget bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.released[o.ID] = forget
	return nil
}

// runWorker runs w until the returned stop is called; stop waits for Run.
func runWorker(t *testing.T, w *order.Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	}
}

func TestWorkerStoresAndAcks(t *testing.T) {
	const n, stock = 120, 100
	d := newDB(t)
	sl := d.mustSale(t, stock)
	orders := d.mustOrders(t, sl, n) // the last 20 are beyond the stock
	// A user who already holds an order in PostgreSQL, admitted again by a
	// gate that lost track of them.
	if _, err := d.store.OrderPlace(t.Context(), orders[0]); err != nil {
		t.Fatalf("OrderPlace: %v", err)
	}
	again := orders[0]
	again.ID = newID()
	orders = append(orders, again)
	q := newFakeQueue(orders)
	g := &fakeGate{released: map[uuid.UUID]bool{}}
	stop := runWorker(t, order.NewWorker(q, d.store, g, "w1", 25, time.Minute, discard))

	q.waitFor(t, "every entry acknowledged", func() bool {
		acked, _ := q.counts()
		return acked == len(orders)
	})
	stop()

	if got := d.orderCount(t, sl.ID); got != stock {
		t.Errorf("orders = %d, want %d", got, stock)
	}
	if got := d.quantity(t, sl.ProductID); got != 0 {
		t.Errorf("quantity = %d, want 0", got)
	}
	// orders[0] was placed before; the worker stored orders[1:100] and
	// rejected the 20 beyond the stock (nothing to give back) and the second
	// order of orders[0]'s user (its unit back, the user kept).
	for i, o := range orders {
		var wantRejected, wantReleased bool
		switch {
		case o.ID == again.ID:
			wantRejected, wantReleased = true, true
		case i >= stock:
			wantRejected = true
		}
		if got := q.rejected[o.ID]; got != wantRejected {
			t.Errorf("order %d rejected = %t, want %t", i, got, wantRejected)
		}
		forget, released := g.released[o.ID]
		if released != wantReleased || forget {
			t.Errorf("order %d released = %t (forget %t), want %t (forget false)", i, released, forget, wantReleased)
		}
	}
}

func TestWorkerReplayAfterCrash(t *testing.T) {
	const n = 60
	d := newDB(t)
	sl := d.mustSale(t, n)
	orders := d.mustOrders(t, sl, n)
	q := newFakeQueue(orders)
	q.ackErr = errors.New("connection reset") // the worker "dies" before acknowledging
	g := &fakeGate{released: map[uuid.UUID]bool{}}

	stop := runWorker(t, order.NewWorker(q, d.store, g, "w1", 25, time.Minute, discard))
	q.waitFor(t, "every entry delivered", func() bool {
		_, delivered := q.counts()
		return delivered == n
	})
	stop()
	if got := d.orderCount(t, sl.ID); got != n {
		t.Fatalf("orders after the first worker = %d, want %d", got, n)
	}
	if acked, _ := q.counts(); acked != 0 {
		t.Fatalf("acknowledged = %d, want 0", acked)
	}

	// Another worker claims the pending entries and stores them again.
	q.mu.Lock()
	q.ackErr, q.claim = nil, true
	q.mu.Unlock()
	stop = runWorker(t, order.NewWorker(q, d.store, g, "w2", 25, time.Minute, discard))
	q.waitFor(t, "every entry acknowledged", func() bool {
		acked, _ := q.counts()
		return acked == n
	})
	stop()

	if got := d.orderCount(t, sl.ID); got != n {
		t.Errorf("orders after the replay = %d, want %d", got, n)
	}
	if got := d.quantity(t, sl.ProductID); got != 0 {
		t.Errorf("quantity after the replay = %d, want 0", got)
	}
	if len(q.rejected) != 0 || len(g.released) != 0 {
		t.Errorf("rejected, released = %d, %d, want 0, 0", len(q.rejected), len(g.released))
	}
}

// failingStore fails every batch and signals each attempt.
type failingStore struct{ calls chan int }

func (s *failingStore) OrderInsertBatch(_ context.Context, orders []order.Order) ([]error, error) {
	s.calls <- len(orders)
	return nil, errBatchDown
}

func TestWorkerBatchFailureLeavesEntriesPending(t *testing.T) {
	const n = 10
	orders := make([]order.Order, n)
	for i := range orders {
		orders[i] = order.Order{ID: newID(), SaleID: newID(), ProductID: newID(), UserID: newID()}
	}
	q := newFakeQueue(orders)
	g := &fakeGate{released: map[uuid.UUID]bool{}}
	store := &failingStore{calls: make(chan int, 100)}
	stop := runWorker(t, order.NewWorker(q, store, g, "w1", 25, time.Minute, discard))

	// The same batch is tried again after the failure.
	for attempt := range 2 {
		if got := <-store.calls; got != n {
			t.Errorf("attempt %d stored %d orders, want %d", attempt, got, n)
		}
	}
	stop()
	acked, delivered := q.counts()
	if acked != 0 || delivered != n {
		t.Errorf("acknowledged, delivered = %d, %d, want 0, %d", acked, delivered, n)
	}
	if len(q.rejected) != 0 || len(g.released) != 0 {
		t.Errorf("rejected, released = %d, %d, want 0, 0", len(q.rejected), len(g.released))
	}
}
