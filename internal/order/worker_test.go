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
// settled (as a claim after claimIdle would). Its gate settles entries, as
// the real gate acknowledges and deletes them in the same step.
type fakeQueue struct {
	mu        sync.Mutex
	entries   []order.QueuedOrder
	delivered map[string]bool
	acked     map[string]bool
	claim     bool
	changed   chan struct{} // signaled after each Settle
}

var _ order.Queue = (*fakeQueue)(nil)

func newFakeQueue(orders []order.Order) *fakeQueue {
	q := &fakeQueue{
		delivered: map[string]bool{},
		acked:     map[string]bool{},
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

func (q *fakeQueue) signal() {
	select {
	case q.changed <- struct{}{}:
	default:
	}
}

// counts is the number of entries settled (acknowledged) and, separately,
// the number delivered (read at least once).
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

// fakeGate is the Settler a Worker settles its entries in: it records each
// settlement and, unless err is set, acknowledges the entry in q.
type fakeGate struct {
	q       *fakeQueue
	mu      sync.Mutex
	err     error                            // returned by Settle, which then settles nothing
	calls   int                              // Settle calls, failed ones included
	settled map[uuid.UUID][]order.Settlement // order id -> its settlements, in order
}

var _ order.Settler = (*fakeGate)(nil)

func newFakeGate(q *fakeQueue) *fakeGate {
	return &fakeGate{q: q, settled: map[uuid.UUID][]order.Settlement{}}
}

func (g *fakeGate) Settle(_ context.Context, ss []order.Settlement) error {
	defer g.q.signal()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	if g.err != nil {
		return g.err
	}
	g.q.mu.Lock()
	defer g.q.mu.Unlock()
	for _, s := range ss {
		g.settled[s.Order.ID] = append(g.settled[s.Order.ID], s)
		g.q.acked[s.Ref] = true
	}
	return nil
}

func (g *fakeGate) setErr(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.err = err
}

// outcomes is each order's settlements' outcomes, and the number of Settle calls.
func (g *fakeGate) outcomes() (map[uuid.UUID][]order.Outcome, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[uuid.UUID][]order.Outcome{}
	for id, ss := range g.settled {
		for _, s := range ss {
			out[id] = append(out[id], s.Outcome)
		}
	}
	return out, g.calls
}

// checkSettled checks that each entry of q was settled once, with its own
// order and ref, and with the outcome want gives its order.
func (g *fakeGate) checkSettled(t *testing.T, q *fakeQueue, want func(o order.Order) order.Outcome) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, e := range q.entries {
		ss := g.settled[e.ID]
		if len(ss) != 1 {
			t.Errorf("entry %d settled %d times, want once", i, len(ss))
			continue
		}
		s := ss[0]
		if s.Order != e.Order || s.Ref != e.Ref {
			t.Errorf("entry %d settled as %+v ref %q, want %+v ref %q", i, s.Order, s.Ref, e.Order, e.Ref)
		}
		if w := want(e.Order); s.Outcome != w {
			t.Errorf("entry %d settled %v, want %v", i, s.Outcome, w)
		}
	}
	if len(g.settled) != len(q.entries) {
		t.Errorf("%d orders settled, want %d", len(g.settled), len(q.entries))
	}
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

// TestWorkerStoresAndSettles: the worker stores every entry and settles
// each by its order's result: committed (a replay of a stored order
// included), rejected for lack of stock, rejected as the user's second
// order, dropped when it can never be stored (no such user).
func TestWorkerStoresAndSettles(t *testing.T) {
	const n, stock = 120, 100
	d := newDB(t)
	sl := d.mustSale(t, stock)
	valid := d.mustOrders(t, sl, n) // the last 20 are beyond the stock
	// A user who already holds an order in PostgreSQL, admitted again by a
	// gate that lost track of them.
	if _, err := d.store.OrderPlace(t.Context(), valid[0]); err != nil {
		t.Fatalf("OrderPlace: %v", err)
	}
	again := valid[0]
	again.ID = newID()
	// An order of a user PostgreSQL does not know.
	stranger := order.Order{ID: newID(), SaleID: sl.ID, ProductID: sl.ProductID, UserID: newID()}
	orders := append([]order.Order{}, valid[:10]...)
	orders = append(orders, stranger)
	orders = append(orders, valid[10:]...)
	orders = append(orders, again)
	q := newFakeQueue(orders)
	g := newFakeGate(q)
	stop := runWorker(t, order.NewWorker(q, d.store, g, "w1", 25, time.Minute, discard))

	q.waitFor(t, "every entry settled", func() bool {
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
	// valid[0] was placed before; the worker stored valid[1:100], and
	// turned down the 20 beyond the stock (nothing to give back), the
	// second order of valid[0]'s user (its unit back, the user kept) and the
	// stranger's (its unit back, the admission dropped).
	soldOut := map[uuid.UUID]bool{}
	for _, o := range valid[stock:] {
		soldOut[o.ID] = true
	}
	g.checkSettled(t, q, func(o order.Order) order.Outcome {
		switch {
		case o.ID == again.ID:
			return order.RejectedDuplicate
		case o.ID == stranger.ID:
			return order.Dropped
		case soldOut[o.ID]:
			return order.RejectedSoldOut
		}
		return order.Committed
	})
}

// outcomeStore answers each order with the result results gives its id, and
// fails the whole batch while failures is above zero.
type outcomeStore struct {
	results  map[uuid.UUID]error
	mu       sync.Mutex
	failures int
	calls    int
}

func (s *outcomeStore) OrderInsertBatch(_ context.Context, orders []order.Order) ([]error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.failures > 0 {
		s.failures--
		return nil, errBatchDown
	}
	out := make([]error, len(orders))
	for i, o := range orders {
		out[i] = s.results[o.ID]
	}
	return out, nil
}

// TestWorkerSettlesEachOutcome: each store result maps to its outcome,
// wrapped errors included, in one settlement per entry, after a batch that
// failed at first is stored again.
func TestWorkerSettlesEachOutcome(t *testing.T) {
	results := []struct {
		err  error
		want order.Outcome
	}{
		{nil, order.Committed},
		{order.ErrSoldOut, order.RejectedSoldOut},
		{fmt.Errorf("product 1: %w", order.ErrSoldOut), order.RejectedSoldOut},
		{order.ErrAlreadyOrdered, order.RejectedDuplicate},
		{&order.AlreadyOrderedError{OrderID: newID()}, order.RejectedDuplicate},
		{errors.New("no such user"), order.Dropped},
		{order.ErrNotFound, order.Dropped},
	}
	store := &outcomeStore{results: map[uuid.UUID]error{}, failures: 1}
	want := map[uuid.UUID]order.Outcome{}
	var orders []order.Order
	for range 3 {
		for _, r := range results {
			o := order.Order{ID: newID(), SaleID: newID(), ProductID: newID(), UserID: newID()}
			orders = append(orders, o)
			store.results[o.ID] = r.err
			want[o.ID] = r.want
		}
	}
	q := newFakeQueue(orders)
	g := newFakeGate(q)
	stop := runWorker(t, order.NewWorker(q, store, g, "w1", 5, time.Minute, discard))
	q.waitFor(t, "every entry settled", func() bool {
		acked, _ := q.counts()
		return acked == len(orders)
	})
	stop()
	g.checkSettled(t, q, func(o order.Order) order.Outcome { return want[o.ID] })
	if store.calls < len(orders)/5+1 {
		t.Errorf("store calls = %d, want the failed batch stored again", store.calls)
	}
}

// TestWorkerReplayAfterCrash: a worker that stores its batches but dies
// before settling them leaves its entries pending; another claims them,
// stores them again (changing nothing) and settles them as committed.
func TestWorkerReplayAfterCrash(t *testing.T) {
	const n = 60
	d := newDB(t)
	sl := d.mustSale(t, n)
	orders := d.mustOrders(t, sl, n)
	q := newFakeQueue(orders)
	g := newFakeGate(q)
	g.setErr(errors.New("connection reset")) // the worker "dies" before settling

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
		t.Fatalf("settled = %d, want 0", acked)
	}
	if _, calls := g.outcomes(); calls == 0 {
		t.Fatalf("the first worker never tried to settle")
	}

	// Another worker claims the pending entries and stores them again.
	q.mu.Lock()
	q.claim = true
	q.mu.Unlock()
	g.setErr(nil)
	stop = runWorker(t, order.NewWorker(q, d.store, g, "w2", 25, time.Minute, discard))
	q.waitFor(t, "every entry settled", func() bool {
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
	g.checkSettled(t, q, func(order.Order) order.Outcome { return order.Committed })
}

// failingStore fails every batch and signals each attempt.
type failingStore struct{ calls chan int }

func (s *failingStore) OrderInsertBatch(_ context.Context, orders []order.Order) ([]error, error) {
	s.calls <- len(orders)
	return nil, errBatchDown
}

// TestWorkerBatchFailureLeavesEntriesPending: while the store fails, the
// batch is tried again and nothing is settled, so the entries stay pending.
func TestWorkerBatchFailureLeavesEntriesPending(t *testing.T) {
	const n = 10
	orders := make([]order.Order, n)
	for i := range orders {
		orders[i] = order.Order{ID: newID(), SaleID: newID(), ProductID: newID(), UserID: newID()}
	}
	q := newFakeQueue(orders)
	g := newFakeGate(q)
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
		t.Errorf("settled, delivered = %d, %d, want 0, %d", acked, delivered, n)
	}
	if settled, calls := g.outcomes(); calls != 0 || len(settled) != 0 {
		t.Errorf("Settle calls, orders settled = %d, %d, want 0, 0", calls, len(settled))
	}
}
