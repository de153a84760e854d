package postgres_test

import (
	"errors"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/postgres"
	"github.com/flashsale/flashsale/internal/postgres/pgtest"
	"github.com/flashsale/flashsale/internal/sale"
)

func newOrder(sl sale.Sale, userID uuid.UUID) order.Order {
	return order.Order{ID: newID(), SaleID: sl.ID, ProductID: sl.ProductID, UserID: userID}
}

func quantity(t testing.TB, s *postgres.Store, productID uuid.UUID) int32 {
	t.Helper()
	p, err := s.ProductGet(t.Context(), productID)
	if err != nil {
		t.Fatalf("ProductGet: %v", err)
	}
	return p.Quantity
}

func TestOrderPlace(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	sl := mustSale(t, s, mustProduct(t, s, 3).ID, t0, t0.Add(time.Hour))
	u := mustUser(t, s)
	in := newOrder(sl, u.ID)

	placed, err := s.OrderPlace(ctx, in)
	if err != nil {
		t.Fatalf("OrderPlace: %v", err)
	}
	if placed.CreatedAt.IsZero() {
		t.Errorf("OrderPlace CreatedAt is zero")
	}
	want := in
	want.Status = order.StatusConfirmed
	want.CreatedAt = placed.CreatedAt
	if placed != want {
		t.Errorf("OrderPlace = %+v, want %+v", placed, want)
	}
	if got := quantity(t, s, sl.ProductID); got != 2 {
		t.Errorf("quantity after an order = %d, want 2", got)
	}

	got, err := s.OrderBySaleUser(ctx, sl.ID, u.ID)
	if err != nil {
		t.Fatalf("OrderBySaleUser: %v", err)
	}
	if got != placed {
		t.Errorf("OrderBySaleUser = %+v, want %+v", got, placed)
	}
}

func TestOrderPlaceErrors(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	sl := mustSale(t, s, mustProduct(t, s, 1).ID, t0, t0.Add(time.Hour))
	otherSale := mustSale(t, s, mustProduct(t, s, 1).ID, t0, t0.Add(time.Hour))
	first, second := mustUser(t, s), mustUser(t, s)
	if _, err := s.OrderPlace(ctx, newOrder(sl, first.ID)); err != nil {
		t.Fatalf("OrderPlace: %v", err) // takes the only unit
	}

	mismatched := newOrder(sl, second.ID)
	mismatched.ProductID = otherSale.ProductID
	unknownSale := newOrder(sl, second.ID)
	unknownSale.SaleID = newID()
	tests := []struct {
		name string
		o    order.Order
		want error
	}{
		// The repeat buyer hears "already ordered", not "sold out".
		{"same user again", newOrder(sl, first.ID), order.ErrAlreadyOrdered},
		{"sold out", newOrder(sl, second.ID), order.ErrSoldOut},
		{"unknown sale", unknownSale, sale.ErrNotFound},
		{"product not the sale's", mismatched, sale.ErrNotFound},
		{"unknown user", newOrder(sl, newID()), auth.ErrUserNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.OrderPlace(t.Context(), tt.o); !errors.Is(err, tt.want) {
				t.Errorf("OrderPlace = %v, want %v", err, tt.want)
			}
		})
	}

	// Nothing the failures did stays behind.
	if _, err := s.OrderBySaleUser(ctx, sl.ID, second.ID); !errors.Is(err, order.ErrNotFound) {
		t.Errorf("OrderBySaleUser after sold out = %v, want %v", err, order.ErrNotFound)
	}
	if got := quantity(t, s, sl.ProductID); got != 0 {
		t.Errorf("quantity = %d, want 0", got)
	}
	if got := quantity(t, s, otherSale.ProductID); got != 1 {
		t.Errorf("other product's quantity = %d, want 1", got)
	}
}

func TestOrderBySaleUserNotFound(t *testing.T) {
	s := newStore(t)
	if _, err := s.OrderBySaleUser(t.Context(), newID(), newID()); !errors.Is(err, order.ErrNotFound) {
		t.Errorf("OrderBySaleUser = %v, want %v", err, order.ErrNotFound)
	}
}

func TestOrderList(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	saleA := mustSale(t, s, mustProduct(t, s, 10).ID, t0, t0.Add(time.Hour))
	saleB := mustSale(t, s, mustProduct(t, s, 10).ID, t0, t0.Add(time.Hour))
	ann, bob := mustUser(t, s), mustUser(t, s)
	place := func(sl sale.Sale, u auth.User) uuid.UUID {
		o, err := s.OrderPlace(ctx, newOrder(sl, u.ID))
		if err != nil {
			t.Fatalf("OrderPlace: %v", err)
		}
		return o.ID
	}
	annA := place(saleA, ann)
	bobA := place(saleA, bob)
	annB := place(saleB, ann)
	bobB := place(saleB, bob)

	tests := []struct {
		name string
		f    order.ListFilter
		want []uuid.UUID
	}{
		{"everyone", order.ListFilter{}, []uuid.UUID{bobB, annB, bobA, annA}},
		{"one user", order.ListFilter{UserID: ann.ID}, []uuid.UUID{annB, annA}},
		{"one sale", order.ListFilter{SaleID: saleA.ID}, []uuid.UUID{bobA, annA}},
		{"one user in one sale", order.ListFilter{UserID: bob.ID, SaleID: saleB.ID}, []uuid.UUID{bobB}},
		{"no match", order.ListFilter{UserID: newID()}, []uuid.UUID{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.OrderList(t.Context(), tt.f)
			if err != nil {
				t.Fatalf("OrderList: %v", err)
			}
			if ids := orderIDs(got); !slices.Equal(ids, tt.want) {
				t.Errorf("OrderList = %v, want %v", ids, tt.want)
			}
		})
	}

	want := []uuid.UUID{bobB, annB, bobA, annA}
	for limit := 1; limit <= 3; limit++ {
		var got []uuid.UUID
		f := order.ListFilter{Limit: limit}
		for page := 0; ; page++ {
			orders, err := s.OrderList(ctx, f)
			if err != nil {
				t.Fatalf("OrderList: %v", err)
			}
			if len(orders) > limit {
				t.Fatalf("OrderList(limit %d) returned %d", limit, len(orders))
			}
			if len(orders) == 0 || page > len(want) {
				break
			}
			got = append(got, orderIDs(orders)...)
			f.After = orders[len(orders)-1].ID
		}
		if !slices.Equal(got, want) {
			t.Errorf("OrderList pages of %d = %v, want %v", limit, got, want)
		}
	}
}

func orderIDs(orders []order.Order) []uuid.UUID {
	ids := make([]uuid.UUID, len(orders))
	for i, o := range orders {
		ids[i] = o.ID
	}
	return ids
}

// newRaceStore returns a store whose pool has enough connections for the
// goroutines of a race test to really run at once.
func newRaceStore(t *testing.T) *postgres.Store {
	t.Helper()
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatalf("parse database URL: %v", err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "20")
	u.RawQuery = q.Encode()
	return newStoreURL(t, u.String())
}

// TestOrderPlaceNoOversell releases many buyers at once on little stock:
// exactly the stock wins, the rest hear sold out, and stock ends at zero.
func TestOrderPlaceNoOversell(t *testing.T) {
	const buyers, stock = 200, 50
	s := newRaceStore(t)
	sl := mustSale(t, s, mustProduct(t, s, stock).ID, t0, t0.Add(time.Hour))
	users := make([]auth.User, buyers)
	for i := range users {
		users[i] = mustUser(t, s)
	}

	start := make(chan struct{})
	errs := make([]error, buyers)
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() {
			<-start
			_, errs[i] = s.OrderPlace(t.Context(), newOrder(sl, u.ID))
		})
	}
	close(start)
	wg.Wait()

	var won, soldOut int
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, order.ErrSoldOut):
			soldOut++
		default:
			t.Errorf("OrderPlace = %v, want nil or %v", err, order.ErrSoldOut)
		}
	}
	if won != stock || soldOut != buyers-stock {
		t.Errorf("won, sold out = %d, %d, want %d, %d", won, soldOut, stock, buyers-stock)
	}
	if got := quantity(t, s, sl.ProductID); got != 0 {
		t.Errorf("quantity = %d, want 0", got)
	}
	orders, err := s.OrderList(t.Context(), order.ListFilter{SaleID: sl.ID, Limit: buyers})
	if err != nil {
		t.Fatalf("OrderList: %v", err)
	}
	if len(orders) != stock {
		t.Errorf("orders in the sale = %d, want %d", len(orders), stock)
	}
	seen := make(map[uuid.UUID]bool)
	for _, o := range orders {
		if seen[o.UserID] {
			t.Errorf("user %v has more than one order", o.UserID)
		}
		seen[o.UserID] = true
	}
}

// TestOrderPlaceOncePerUser releases one user's many attempts at once: one
// wins, the rest hear already ordered, and stock drops by one.
func TestOrderPlaceOncePerUser(t *testing.T) {
	const attempts, stock = 100, 10
	s := newRaceStore(t)
	sl := mustSale(t, s, mustProduct(t, s, stock).ID, t0, t0.Add(time.Hour))
	u := mustUser(t, s)

	start := make(chan struct{})
	errs := make([]error, attempts)
	var wg sync.WaitGroup
	for i := range attempts {
		wg.Go(func() {
			<-start
			_, errs[i] = s.OrderPlace(t.Context(), newOrder(sl, u.ID))
		})
	}
	close(start)
	wg.Wait()

	var won, already int
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, order.ErrAlreadyOrdered):
			already++
		default:
			t.Errorf("OrderPlace = %v, want nil or %v", err, order.ErrAlreadyOrdered)
		}
	}
	if won != 1 || already != attempts-1 {
		t.Errorf("won, already ordered = %d, %d, want 1, %d", won, already, attempts-1)
	}
	if got := quantity(t, s, sl.ProductID); got != stock-1 {
		t.Errorf("quantity = %d, want %d", got, stock-1)
	}
	orders, err := s.OrderList(t.Context(), order.ListFilter{SaleID: sl.ID})
	if err != nil {
		t.Fatalf("OrderList: %v", err)
	}
	if len(orders) != 1 {
		t.Errorf("orders in the sale = %d, want 1", len(orders))
	}
}
