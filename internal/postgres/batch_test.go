package postgres_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/postgres"
	"github.com/flashsale/flashsale/internal/sale"
)

// newOrders returns one new order in sl for each of n new users.
func newOrders(t testing.TB, s *postgres.Store, sl sale.Sale, n int) []order.Order {
	t.Helper()
	orders := make([]order.Order, n)
	for i := range orders {
		orders[i] = newOrder(sl, mustUser(t, s).ID)
	}
	return orders
}

func saleOrderCount(t testing.TB, s *postgres.Store, saleID uuid.UUID) int {
	t.Helper()
	orders, err := s.OrderList(t.Context(), order.ListFilter{SaleID: saleID, Limit: postgres.MaxPageSize})
	if err != nil {
		t.Fatalf("OrderList: %v", err)
	}
	return len(orders)
}

// mustInsertBatch runs OrderInsertBatch and fails the test on a whole-batch error.
func mustInsertBatch(t testing.TB, s *postgres.Store, orders []order.Order) []error {
	t.Helper()
	results, err := s.OrderInsertBatch(t.Context(), orders)
	if err != nil {
		t.Fatalf("OrderInsertBatch: %v", err)
	}
	if len(results) != len(orders) {
		t.Fatalf("OrderInsertBatch returned %d results for %d orders", len(results), len(orders))
	}
	return results
}

func TestOrderInsertBatchAndReplay(t *testing.T) {
	const n, stock = 500, 1000
	s := newStore(t)
	sl := mustSale(t, s, mustProduct(t, s, stock).ID, t0, t0.Add(time.Hour))
	orders := newOrders(t, s, sl, n)

	for i, err := range mustInsertBatch(t, s, orders) {
		if err != nil {
			t.Errorf("result %d = %v, want nil", i, err)
		}
	}
	if got := quantity(t, s, sl.ProductID); got != stock-n {
		t.Errorf("quantity = %d, want %d", got, stock-n)
	}
	if got := saleOrderCount(t, s, sl.ID); got != n {
		t.Errorf("orders in the sale = %d, want %d", got, n)
	}
	got, err := s.OrderBySaleUser(t.Context(), sl.ID, orders[7].UserID)
	if err != nil {
		t.Fatalf("OrderBySaleUser: %v", err)
	}
	if got.ID != orders[7].ID || got.Status != order.StatusConfirmed {
		t.Errorf("OrderBySaleUser = %v %v, want %v %v", got.ID, got.Status, orders[7].ID, order.StatusConfirmed)
	}

	// A replay (a worker that crashed before acknowledging) changes nothing.
	for i, err := range mustInsertBatch(t, s, orders) {
		if err != nil {
			t.Errorf("replay result %d = %v, want nil", i, err)
		}
	}
	if got := quantity(t, s, sl.ProductID); got != stock-n {
		t.Errorf("quantity after replay = %d, want %d", got, stock-n)
	}
	if got := saleOrderCount(t, s, sl.ID); got != n {
		t.Errorf("orders in the sale after replay = %d, want %d", got, n)
	}
}

func TestOrderInsertBatchAlreadyOrdered(t *testing.T) {
	const stock = 10
	s := newStore(t)
	sl := mustSale(t, s, mustProduct(t, s, stock).ID, t0, t0.Add(time.Hour))
	orders := newOrders(t, s, sl, 5)
	if _, err := s.OrderPlace(t.Context(), newOrder(sl, orders[2].UserID)); err != nil {
		t.Fatalf("OrderPlace: %v", err)
	}
	// The same user twice in the batch: the first (lower, older id) wins.
	twice := newOrder(sl, orders[4].UserID)
	orders = append(orders, twice)

	results := mustInsertBatch(t, s, orders)
	want := []error{nil, nil, order.ErrAlreadyOrdered, nil, nil, order.ErrAlreadyOrdered}
	for i := range want {
		if results[i] != want[i] {
			t.Errorf("result %d = %v, want %v", i, results[i], want[i])
		}
	}
	if got := quantity(t, s, sl.ProductID); got != stock-5 {
		t.Errorf("quantity = %d, want %d", got, stock-5)
	}
	if got := saleOrderCount(t, s, sl.ID); got != 5 {
		t.Errorf("orders in the sale = %d, want 5", got)
	}
}

func TestOrderInsertBatchSoldOut(t *testing.T) {
	const n, stock = 15, 10
	s := newStore(t)
	sl := mustSale(t, s, mustProduct(t, s, stock).ID, t0, t0.Add(time.Hour))
	orders := newOrders(t, s, sl, n)

	for i, err := range mustInsertBatch(t, s, orders) {
		var want error
		if i >= stock {
			want = order.ErrSoldOut // earlier orders in the batch win
		}
		if err != want {
			t.Errorf("result %d = %v, want %v", i, err, want)
		}
	}
	if got := quantity(t, s, sl.ProductID); got != 0 {
		t.Errorf("quantity = %d, want 0", got)
	}
	if got := saleOrderCount(t, s, sl.ID); got != stock {
		t.Errorf("orders in the sale = %d, want %d", got, stock)
	}
	// A sold-out order was not stored, so the user may be admitted again.
	if _, err := s.OrderBySaleUser(t.Context(), sl.ID, orders[n-1].UserID); !errors.Is(err, order.ErrNotFound) {
		t.Errorf("OrderBySaleUser of a sold-out order = %v, want %v", err, order.ErrNotFound)
	}
	// Once sold out, a whole batch is.
	for i, err := range mustInsertBatch(t, s, newOrders(t, s, sl, 3)) {
		if err != order.ErrSoldOut {
			t.Errorf("result %d after sell-out = %v, want %v", i, err, order.ErrSoldOut)
		}
	}
}

func TestOrderInsertBatchMixedProducts(t *testing.T) {
	s := newStore(t)
	a := mustSale(t, s, mustProduct(t, s, 3).ID, t0, t0.Add(time.Hour))
	b := mustSale(t, s, mustProduct(t, s, 10).ID, t0, t0.Add(time.Hour))
	var orders []order.Order
	for range 5 {
		u := mustUser(t, s)
		orders = append(orders, newOrder(a, u.ID), newOrder(b, u.ID))
	}
	orders = append(orders, orders[1]) // the same order twice takes one unit

	results := mustInsertBatch(t, s, orders)
	want := []error{
		nil, nil, nil, nil, nil, nil, // a: 3 units for the first three
		order.ErrSoldOut, nil, order.ErrSoldOut, nil,
		nil,
	}
	for i := range want {
		if results[i] != want[i] {
			t.Errorf("result %d = %v, want %v", i, results[i], want[i])
		}
	}
	if got := quantity(t, s, a.ProductID); got != 0 {
		t.Errorf("quantity of a = %d, want 0", got)
	}
	if got := quantity(t, s, b.ProductID); got != 5 {
		t.Errorf("quantity of b = %d, want 5", got)
	}
	if got := saleOrderCount(t, s, a.ID); got != 3 {
		t.Errorf("orders in sale a = %d, want 3", got)
	}
	if got := saleOrderCount(t, s, b.ID); got != 5 {
		t.Errorf("orders in sale b = %d, want 5", got)
	}
}

// TestOrderInsertBatchUnknownUser: one bad order fails alone, not its batch.
func TestOrderInsertBatchUnknownUser(t *testing.T) {
	s := newStore(t)
	sl := mustSale(t, s, mustProduct(t, s, 10).ID, t0, t0.Add(time.Hour))
	orders := newOrders(t, s, sl, 3)
	orders[1].UserID = newID()

	results := mustInsertBatch(t, s, orders)
	want := []error{nil, auth.ErrUserNotFound, nil}
	for i := range want {
		if results[i] != want[i] {
			t.Errorf("result %d = %v, want %v", i, results[i], want[i])
		}
	}
	if got := quantity(t, s, sl.ProductID); got != 8 {
		t.Errorf("quantity = %d, want 8", got)
	}
}

func TestOrderInsertBatchEmpty(t *testing.T) {
	s := newStore(t)
	results, err := s.OrderInsertBatch(t.Context(), nil)
	if err != nil || len(results) != 0 {
		t.Errorf("OrderInsertBatch(nil) = %v, %v, want [], nil", results, err)
	}
}

// TestOrderInsertBatchNoOversell releases many batches at once on little
// stock, some of them holding the same users: exactly the stock is sold, once
// per user.
func TestOrderInsertBatchNoOversell(t *testing.T) {
	const batches, size, stock = 8, 50, 120
	s := newRaceStore(t)
	sl := mustSale(t, s, mustProduct(t, s, stock).ID, t0, t0.Add(time.Hour))
	users := newOrders(t, s, sl, batches*size/2) // each user in two batches
	all := make([][]order.Order, batches)
	for i := range all {
		for j := range size {
			u := users[(i*size+j)%len(users)].UserID
			all[i] = append(all[i], newOrder(sl, u))
		}
	}

	start := make(chan struct{})
	results := make([][]error, batches)
	errs := make([]error, batches)
	var wg sync.WaitGroup
	for i := range all {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.OrderInsertBatch(t.Context(), all[i])
		})
	}
	close(start)
	wg.Wait()

	var won int
	for i := range all {
		if errs[i] != nil {
			t.Fatalf("OrderInsertBatch %d: %v", i, errs[i])
		}
		for _, err := range results[i] {
			switch err {
			case nil:
				won++
			case order.ErrSoldOut, order.ErrAlreadyOrdered:
			default:
				t.Errorf("result = %v, want nil, sold out or already ordered", err)
			}
		}
	}
	if won != stock {
		t.Errorf("won = %d, want %d", won, stock)
	}
	if got := quantity(t, s, sl.ProductID); got != 0 {
		t.Errorf("quantity = %d, want 0", got)
	}
	if got := saleOrderCount(t, s, sl.ID); got != stock {
		t.Errorf("orders in the sale = %d, want %d", got, stock)
	}
}
