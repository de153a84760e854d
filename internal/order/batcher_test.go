package order_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/postgres"
	"github.com/flashsale/flashsale/internal/postgres/pgtest"
	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/sale"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// db is a store on a database of the test's own, and a connection to it for
// setting up and checking rows the store has no methods for.
type db struct {
	store *postgres.Store
	conn  *pgx.Conn
}

func newDB(t testing.TB) db {
	t.Helper()
	databaseURL := pgtest.NewDatabase(t)
	u, err := url.Parse(databaseURL)
	if err != nil {
		t.Fatalf("parse database URL: %v", err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "20") // enough for the direct OrderPlace benchmark
	u.RawQuery = q.Encode()
	s, err := postgres.New(t.Context(), u.String())
	if err != nil {
		t.Fatalf("postgres.New: %v", err)
	}
	t.Cleanup(s.Close)
	conn, err := pgx.Connect(t.Context(), databaseURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return db{store: s, conn: conn}
}

func newID() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// mustSale creates a product with stock units and a sale of it.
func (d db) mustSale(t testing.TB, stock int32) sale.Sale {
	t.Helper()
	p, err := d.store.ProductCreate(t.Context(), product.Product{
		ID: newID(), Name: "Widget", PriceMinor: 1999, Currency: "EUR", Quantity: stock,
	})
	if err != nil {
		t.Fatalf("ProductCreate: %v", err)
	}
	start := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	sl, err := d.store.SaleCreate(t.Context(), sale.Sale{
		ID: newID(), ProductID: p.ID, StartsAt: start, EndsAt: start.Add(time.Hour),
	})
	if err != nil {
		t.Fatalf("SaleCreate: %v", err)
	}
	return sl
}

// mustOrders creates n users in one COPY and returns an order in sl for each.
func (d db) mustOrders(t testing.TB, sl sale.Sale, n int) []order.Order {
	t.Helper()
	orders := make([]order.Order, n)
	rows := make([][]any, n)
	for i := range orders {
		orders[i] = order.Order{ID: newID(), SaleID: sl.ID, ProductID: sl.ProductID, UserID: newID()}
		rows[i] = []any{orders[i].UserID, orders[i].UserID.String() + "@example.com", "hash"}
	}
	if _, err := d.conn.CopyFrom(t.Context(), pgx.Identifier{"users"},
		[]string{"id", "email", "password_hash"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatalf("copy users: %v", err)
	}
	return orders
}

func (d db) orderCount(t testing.TB, saleID uuid.UUID) int {
	t.Helper()
	var n int
	if err := d.conn.QueryRow(t.Context(), "SELECT count(*) FROM orders WHERE flash_sale_id = $1", saleID).Scan(&n); err != nil {
		t.Fatalf("count orders: %v", err)
	}
	return n
}

func (d db) quantity(t testing.TB, productID uuid.UUID) int32 {
	t.Helper()
	p, err := d.store.ProductGet(t.Context(), productID)
	if err != nil {
		t.Fatalf("ProductGet: %v", err)
	}
	return p.Quantity
}

// countingStore counts the batches (transactions) that reach the store, and
// fails those failBatch picks, recording their orders.
type countingStore struct {
	order.BatchStore
	calls     atomic.Int64
	failBatch func(call int64) bool

	mu     sync.Mutex
	failed map[uuid.UUID]bool // order ids of failed batches
}

var errBatchDown = errors.New("database down")

func (s *countingStore) OrderInsertBatch(ctx context.Context, orders []order.Order) ([]error, error) {
	call := s.calls.Add(1)
	if s.failBatch != nil && s.failBatch(call) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, o := range orders {
			s.failed[o.ID] = true
		}
		return nil, errBatchDown
	}
	return s.BatchStore.OrderInsertBatch(ctx, orders)
}

// submitAll submits every order at once, one goroutine each, released
// together, and returns their results.
func submitAll(ctx context.Context, b *order.Batcher, orders []order.Order) []error {
	start := make(chan struct{})
	errs := make([]error, len(orders))
	var wg sync.WaitGroup
	for i, o := range orders {
		wg.Go(func() {
			<-start
			errs[i] = b.Submit(ctx, o)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func TestBatcherGroupsConcurrentOrders(t *testing.T) {
	const n = 1000
	d := newDB(t)
	sl := d.mustSale(t, n)
	orders := d.mustOrders(t, sl, n)
	store := &countingStore{BatchStore: d.store}
	// A long wait, so that batches leave full rather than on the timer
	// however slowly the goroutines start (-race).
	b := order.NewBatcher(store, 200, time.Second, discard)
	defer b.Close()

	for i, err := range submitAll(t.Context(), b, orders) {
		if err != nil {
			t.Errorf("Submit %d = %v, want nil", i, err)
		}
	}
	if got := d.orderCount(t, sl.ID); got != n {
		t.Errorf("orders = %d, want %d", got, n)
	}
	if got := d.quantity(t, sl.ProductID); got != 0 {
		t.Errorf("quantity = %d, want 0", got)
	}
	if got := store.calls.Load(); got > n/10 {
		t.Errorf("transactions = %d, want at most %d", got, n/10)
	}
	t.Logf("%d orders in %d transactions", n, store.calls.Load())
}

func TestBatcherSoldOutAndAlreadyOrdered(t *testing.T) {
	const n, stock = 30, 20
	d := newDB(t)
	sl := d.mustSale(t, stock)
	orders := d.mustOrders(t, sl, n)
	again := orders[0]
	again.ID = newID() // the same user's second order
	orders = append(orders, again)
	b := order.NewBatcher(d.store, 8, time.Millisecond, discard)
	defer b.Close()

	var won, soldOut, already int
	for i, err := range submitAll(t.Context(), b, orders) {
		switch err {
		case nil:
			won++
		case order.ErrSoldOut:
			soldOut++
		case order.ErrAlreadyOrdered:
			already++
		default:
			t.Errorf("Submit %d = %v, want nil, sold out or already ordered", i, err)
		}
	}
	// The user with two orders wins once at most: already ordered when one
	// of them won, sold out twice otherwise.
	if won != stock || won+soldOut+already != n+1 || already > 1 {
		t.Errorf("won, sold out, already ordered = %d, %d, %d, want %d and %d in all, already ordered at most 1",
			won, soldOut, already, stock, n+1)
	}
	if got := d.quantity(t, sl.ProductID); got != 0 {
		t.Errorf("quantity = %d, want 0", got)
	}
	if got := d.orderCount(t, sl.ID); got != stock {
		t.Errorf("orders = %d, want %d", got, stock)
	}
}

func TestBatcherFailedBatchFailsItsOrdersOnly(t *testing.T) {
	const n = 300
	d := newDB(t)
	sl := d.mustSale(t, n)
	orders := d.mustOrders(t, sl, n)
	store := &countingStore{
		BatchStore: d.store,
		failBatch:  func(call int64) bool { return call%2 == 1 }, // the 1st, 3rd, ...
		failed:     map[uuid.UUID]bool{},
	}
	b := order.NewBatcher(store, 50, time.Millisecond, discard)
	defer b.Close()

	errs := submitAll(t.Context(), b, orders)
	var failed int
	for i, err := range errs {
		if store.failed[orders[i].ID] {
			failed++
			var batchErr *order.BatchError
			if !errors.As(err, &batchErr) || !errors.Is(err, errBatchDown) {
				t.Errorf("Submit %d in a failed batch = %v, want a *BatchError wrapping %v", i, err, errBatchDown)
			}
		} else if err != nil {
			t.Errorf("Submit %d in a committed batch = %v, want nil", i, err)
		}
	}
	if failed == 0 {
		t.Fatal("no batch failed")
	}
	if got := d.orderCount(t, sl.ID); got != n-failed {
		t.Errorf("orders = %d, want %d", got, n-failed)
	}
	if got := d.quantity(t, sl.ProductID); got != int32(failed) {
		t.Errorf("quantity = %d, want %d", got, failed)
	}
}

// TestBatcherCloseFlushes: Close stores the orders already submitted,
// whose batch would otherwise wait an hour, before it returns. With one
// flusher held by a first, full batch, the collector takes nothing more, so
// the next orders are known to be queued (QueuedOrders) before Close; they
// must all be stored, in a batch that left because of Close.
func TestBatcherCloseFlushes(t *testing.T) {
	const first, queued = 30, 20 // queued <= first, the input's capacity
	d := newDB(t)
	sl := d.mustSale(t, first+queued)
	orders := d.mustOrders(t, sl, first+queued)
	entered, release := make(chan struct{}), make(chan struct{})
	var closing atomic.Bool
	var lateBatches atomic.Int64 // batches that reached the store before Close
	store := &countingStore{BatchStore: d.store, failBatch: func(call int64) bool {
		if call == 1 {
			close(entered)
			<-release
		} else if !closing.Load() {
			lateBatches.Add(1)
		}
		return false
	}}
	// Batches of `first` at most, one in flight, and a wait far longer than
	// the test: the second batch can leave only because of Close.
	b := order.NewBatcher(store, first, time.Hour, discard, order.WithFlushers(1))

	errs := make([]error, len(orders))
	var wg sync.WaitGroup
	for i := range first {
		wg.Go(func() { errs[i] = b.Submit(t.Context(), orders[i]) })
	}
	select {
	case <-entered: // the first batch, full, holds the one flusher
	case <-time.After(30 * time.Second):
		t.Fatal("the first, full batch never reached the store")
	}
	for i := first; i < len(orders); i++ {
		wg.Go(func() { errs[i] = b.Submit(t.Context(), orders[i]) })
	}
	deadline := time.Now().Add(30 * time.Second)
	for order.QueuedOrders(b) < queued {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d orders queued after 30 s", order.QueuedOrders(b), queued)
		}
		time.Sleep(time.Millisecond)
	}

	closing.Store(true)
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	close(release)
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return: the queued orders' batch was not sent")
	}
	// Close has returned, so every batch has committed.
	if got := d.orderCount(t, sl.ID); got != len(orders) {
		t.Errorf("orders stored when Close returned = %d, want %d", got, len(orders))
	}
	submitted := make(chan struct{})
	go func() { wg.Wait(); close(submitted) }()
	select {
	case <-submitted:
	case <-time.After(30 * time.Second):
		t.Fatal("Submits still waiting after Close returned")
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("Submit %d = %v, want nil: submitted before Close, it must be stored", i, err)
		}
	}
	if got := store.calls.Load(); got != 2 {
		t.Errorf("batches = %d, want 2 (the full one, then the queued orders at Close)", got)
	}
	if n := lateBatches.Load(); n != 0 {
		t.Errorf("%d batches reached the store before Close", n)
	}
	if err := b.Submit(t.Context(), orders[0]); err != order.ErrBatcherClosed {
		t.Errorf("Submit after Close = %v, want %v", err, order.ErrBatcherClosed)
	}
	b.Close() // again: a no-op
}

func TestBatcherSubmitCanceled(t *testing.T) {
	store := &countingStore{BatchStore: nil}
	b := order.NewBatcher(store, 10, time.Millisecond, discard)
	defer b.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := b.Submit(ctx, order.Order{ID: newID()})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Submit with a canceled context = %v, want %v", err, context.Canceled)
	}
}

// recordingSettler records what it is told to settle. When release is set,
// Settle signals entered and waits for release.
type recordingSettler struct {
	mu      sync.Mutex
	calls   [][]order.Settlement
	err     error
	entered chan struct{}
	release chan struct{}
}

var _ order.Settler = (*recordingSettler)(nil)

func (s *recordingSettler) Settle(_ context.Context, ss []order.Settlement) error {
	if s.release != nil {
		s.entered <- struct{}{}
		<-s.release
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, slices.Clone(ss))
	return s.err
}

// settled is every settlement by order id, and the number of Settle calls.
func (s *recordingSettler) settled() (map[uuid.UUID][]order.Settlement, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[uuid.UUID][]order.Settlement{}
	for _, c := range s.calls {
		for _, st := range c {
			out[st.Order.ID] = append(out[st.Order.ID], st)
		}
	}
	return out, len(s.calls)
}

func TestOutcomeOf(t *testing.T) {
	tests := []struct {
		result error
		want   order.Outcome
	}{
		{nil, order.Committed},
		{order.ErrSoldOut, order.RejectedSoldOut},
		{fmt.Errorf("take stock: %w", order.ErrSoldOut), order.RejectedSoldOut},
		{order.ErrAlreadyOrdered, order.RejectedDuplicate},
		{&order.AlreadyOrderedError{OrderID: newID()}, order.RejectedDuplicate},
		{errors.New("no such user"), order.Dropped},
		{order.ErrNotFound, order.Dropped},
	}
	for _, tt := range tests {
		if got := order.OutcomeOf(tt.result); got != tt.want {
			t.Errorf("OutcomeOf(%v) = %v, want %v", tt.result, got, tt.want)
		}
	}
}

// TestBatcherSettlesBeforeSubmitReturns: with WithSettler, an order's
// settlement is made before its Submit returns.
func TestBatcherSettlesBeforeSubmitReturns(t *testing.T) {
	o := order.Order{ID: newID(), SaleID: newID(), ProductID: newID(), UserID: newID()}
	store := &outcomeStore{results: map[uuid.UUID]error{o.ID: order.ErrSoldOut}}
	settler := &recordingSettler{entered: make(chan struct{}), release: make(chan struct{})}
	b := order.NewBatcher(store, 10, time.Millisecond, discard, order.WithSettler(settler))
	defer b.Close()

	done := make(chan error, 1)
	go func() { done <- b.Submit(t.Context(), o) }()
	<-settler.entered
	select {
	case err := <-done:
		t.Fatalf("Submit returned %v while its order was being settled", err)
	default:
	}
	close(settler.release)
	if err := <-done; err != order.ErrSoldOut {
		t.Errorf("Submit = %v, want %v", err, order.ErrSoldOut)
	}
	got, calls := settler.settled()
	want := order.Settlement{Order: o, Outcome: order.RejectedSoldOut}
	if calls != 1 || len(got[o.ID]) != 1 || got[o.ID][0] != want {
		t.Errorf("settled %+v in %d calls, want %+v once", got[o.ID], calls, want)
	}
}

// TestBatcherSettlesOutcomes: each batch's orders are settled by their
// results in PostgreSQL, each once and before its Submit returns.
func TestBatcherSettlesOutcomes(t *testing.T) {
	const n, stock = 30, 20
	d := newDB(t)
	sl := d.mustSale(t, stock)
	orders := d.mustOrders(t, sl, n)
	again := orders[0]
	again.ID = newID() // the same user's second order
	stranger := order.Order{ID: newID(), SaleID: sl.ID, ProductID: sl.ProductID, UserID: newID()}
	orders = append(orders, again, stranger)
	settler := &recordingSettler{}
	b := order.NewBatcher(d.store, 8, time.Millisecond, discard, order.WithSettler(settler))
	defer b.Close()

	start := make(chan struct{})
	errs := make([]error, len(orders))
	var wg sync.WaitGroup
	for i, o := range orders {
		wg.Go(func() {
			<-start
			errs[i] = b.Submit(t.Context(), o)
			// Settled already.
			got, _ := settler.settled()
			if len(got[o.ID]) != 1 {
				t.Errorf("order %d settled %d times when Submit returned, want once", i, len(got[o.ID]))
			}
		})
	}
	close(start)
	wg.Wait()

	got, _ := settler.settled()
	outcomes := map[order.Outcome]int{}
	for i, o := range orders {
		ss := got[o.ID]
		if len(ss) != 1 {
			t.Errorf("order %d settled %d times, want once", i, len(ss))
			continue
		}
		want := order.Settlement{Order: o, Outcome: order.OutcomeOf(errs[i])}
		if ss[0] != want {
			t.Errorf("order %d (Submit = %v) settled %+v, want %+v", i, errs[i], ss[0], want)
		}
		outcomes[ss[0].Outcome]++
	}
	if got, want := outcomes[order.Dropped], 1; got != want {
		t.Errorf("dropped = %d, want %d (the stranger's)", got, want)
	}
	if got := outcomes[order.Committed]; got != stock {
		t.Errorf("committed = %d, want %d", got, stock)
	}
	if got := outcomes[order.RejectedSoldOut] + outcomes[order.RejectedDuplicate]; got != n+1-stock {
		t.Errorf("rejected = %d, want %d", got, n+1-stock)
	}
	if got := d.orderCount(t, sl.ID); got != stock {
		t.Errorf("orders = %d, want %d", got, stock)
	}
}

// shortStore answers a batch with one result too few.
type shortStore struct{}

func (shortStore) OrderInsertBatch(_ context.Context, orders []order.Order) ([]error, error) {
	return make([]error, len(orders)-1), nil
}

// TestBatcherBatchError: a failure of the whole batch comes back to every
// submitter as a *BatchError. It settles every order as dropped when the
// batch certainly stored nothing (ErrNotStored), and nothing when the batch
// may have committed.
func TestBatcherBatchError(t *testing.T) {
	notStored := fmt.Errorf("%w: %w", order.ErrNotStored, errBatchDown)
	tests := []struct {
		name    string
		store   order.BatchStore
		wrapped error // the error Submit's *BatchError wraps
		dropped bool
	}{
		{"not stored", &errStore{err: notStored}, notStored, true},
		{"outcome unknown", &errStore{err: errBatchDown}, errBatchDown, false},
		{"too few results", shortStore{}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 5
			settler := &recordingSettler{}
			b := order.NewBatcher(tt.store, n, time.Hour, discard, order.WithSettler(settler))
			defer b.Close()
			orders := make([]order.Order, n)
			for i := range orders {
				orders[i] = order.Order{ID: newID(), SaleID: newID(), ProductID: newID(), UserID: newID()}
			}
			for i, err := range submitAll(t.Context(), b, orders) { // one full batch
				var batchErr *order.BatchError
				if !errors.As(err, &batchErr) {
					t.Errorf("Submit %d = %v, want a *BatchError", i, err)
					continue
				}
				if tt.wrapped != nil && !errors.Is(err, tt.wrapped) {
					t.Errorf("Submit %d = %v, want it to wrap %v", i, err, tt.wrapped)
				}
				if got := errors.Is(err, order.ErrNotStored); got != tt.dropped {
					t.Errorf("Submit %d = %v: errors.Is ErrNotStored = %v, want %v", i, err, got, tt.dropped)
				}
			}
			got, calls := settler.settled()
			if !tt.dropped {
				if calls != 0 {
					t.Errorf("Settle called %d times, want never", calls)
				}
				return
			}
			for i, o := range orders {
				want := order.Settlement{Order: o, Outcome: order.Dropped}
				if len(got[o.ID]) != 1 || got[o.ID][0] != want {
					t.Errorf("order %d settled %+v, want %+v once", i, got[o.ID], want)
				}
			}
		})
	}
}

// TestBatcherReplayNotDropped: a replay writes an order again to learn an
// earlier write's outcome, so a batch that stored nothing does not tell the
// replayed order was dropped: only the first write in the batch is.
func TestBatcherReplayNotDropped(t *testing.T) {
	settler := &recordingSettler{}
	store := &errStore{err: fmt.Errorf("%w: %w", order.ErrNotStored, errBatchDown)}
	b := order.NewBatcher(store, 2, time.Hour, discard, order.WithSettler(settler))
	defer b.Close()
	first := order.Order{ID: newID(), SaleID: newID(), ProductID: newID(), UserID: newID()}
	replayed := order.Order{ID: newID(), SaleID: newID(), ProductID: newID(), UserID: newID()}
	var wg sync.WaitGroup
	var errFirst, errReplay error
	wg.Go(func() { errFirst = b.Submit(t.Context(), first) })
	wg.Go(func() { errReplay = b.Replay(t.Context(), replayed) })
	wg.Wait()
	for _, err := range []error{errFirst, errReplay} {
		if !errors.Is(err, order.ErrNotStored) {
			t.Errorf("result = %v, want the batch's error", err)
		}
	}
	got, _ := settler.settled()
	if len(got[replayed.ID]) != 0 {
		t.Errorf("the replayed order was settled: %+v", got[replayed.ID])
	}
	want := order.Settlement{Order: first, Outcome: order.Dropped}
	if len(got[first.ID]) != 1 || got[first.ID][0] != want {
		t.Errorf("the first write settled %+v, want %+v once", got[first.ID], want)
	}
}

// TestBatcherSettleFails: a failure to settle leaves the orders in flight
// (a reconcile settles them), and Submit still returns each order's result.
func TestBatcherSettleFails(t *testing.T) {
	o := order.Order{ID: newID(), SaleID: newID(), ProductID: newID(), UserID: newID()}
	settler := &recordingSettler{err: errors.New("redis down")}
	b := order.NewBatcher(&outcomeStore{results: map[uuid.UUID]error{}}, 10, time.Millisecond, discard, order.WithSettler(settler))
	defer b.Close()
	if err := b.Submit(t.Context(), o); err != nil {
		t.Errorf("Submit = %v, want nil", err)
	}
	if _, calls := settler.settled(); calls != 1 {
		t.Errorf("Settle calls = %d, want 1", calls)
	}
}

// errStore fails every batch with err.
type errStore struct{ err error }

func (s *errStore) OrderInsertBatch(context.Context, []order.Order) ([]error, error) {
	return nil, s.err
}

// BenchmarkBatcherSubmit places orders from many goroutines at once through a
// Batcher, against placing each in its own transaction (OrderPlace). Each op
// is one order.
func BenchmarkBatcherSubmit(b *testing.B) {
	for _, flushers := range []int{1, 2, 4} {
		for _, size := range []int{50, 200} {
			for _, wait := range []time.Duration{time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond} {
				name := fmt.Sprintf("flushers=%d/size=%d/wait=%s", flushers, size, wait)
				b.Run(name, func(b *testing.B) {
					d := newDB(b)
					batcher := order.NewBatcher(d.store, size, wait, discard, order.WithFlushers(flushers))
					defer batcher.Close()
					benchmarkPlace(b, d, func(ctx context.Context, o order.Order) error {
						return batcher.Submit(ctx, o)
					})
				})
			}
		}
	}
	b.Run("direct", func(b *testing.B) {
		d := newDB(b)
		benchmarkPlace(b, d, func(ctx context.Context, o order.Order) error {
			_, err := d.store.OrderPlace(ctx, o)
			return err
		})
	})
}

func benchmarkPlace(b *testing.B, d db, place func(context.Context, order.Order) error) {
	sl := d.mustSale(b, int32(b.N))
	orders := d.mustOrders(b, sl, b.N)
	var next atomic.Int64
	b.SetParallelism(128) // buyers per core: a flash sale's crowd
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o := orders[next.Add(1)-1]
			if err := place(b.Context(), o); err != nil {
				b.Errorf("place: %v", err)
			}
		}
	})
	b.StopTimer()
	if got := d.orderCount(b, sl.ID); got != b.N {
		b.Errorf("orders = %d, want %d", got, b.N)
	}
}
