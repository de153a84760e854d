package order_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/sale"
)

// snapshotStore is a Store whose ProductSnapshot waits for release, or for
// its context to end, as a query waiting on the product row's lock does.
// Its other methods are not used.
type snapshotStore struct {
	order.Store
	started chan struct{}
	release chan struct{}
	calls   atomic.Int64
}

func (s *snapshotStore) ProductSnapshot(ctx context.Context, productID uuid.UUID, _ time.Time, fn func(order.ProductState) error) error {
	if s.calls.Add(1) == 1 {
		close(s.started)
	}
	select {
	case <-s.release:
		return fn(order.ProductState{ProductID: productID, Quantity: 10})
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loadGate is a Gate that counts Loads; its other methods are not used.
type loadGate struct {
	order.Gate
	loads atomic.Int64
}

func (g *loadGate) Load(context.Context, order.ProductState) error {
	g.loads.Add(1)
	return nil
}

// TestLoadGateOutlivesFirstCaller: concurrent loads of a product share one
// (singleflight), so the caller that started it going away must not fail
// those that joined it.
func TestLoadGateOutlivesFirstCaller(t *testing.T) {
	store := &snapshotStore{started: make(chan struct{}), release: make(chan struct{})}
	gate := &loadGate{}
	svc := order.NewService(store, time.Now, order.Config{Mode: order.ModeSync, Gate: gate})
	sl := sale.Sale{ID: uuid.New(), ProductID: uuid.New()}

	firstCtx, hangUp := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { first <- svc.LoadGate(firstCtx, sl) }()
	<-store.started
	second := make(chan error, 1)
	go func() { second <- svc.LoadGate(context.Background(), sl) }()
	time.Sleep(100 * time.Millisecond) // the second caller joins the load
	hangUp()
	time.Sleep(50 * time.Millisecond) // a load on the first caller's context ends here
	close(store.release)

	if err := <-second; err != nil {
		t.Errorf("joined LoadGate = %v, want nil (the first caller's cancellation must not fail it)", err)
	}
	<-first
	if got := store.calls.Load(); got != 1 {
		t.Errorf("snapshots = %d, want 1 (the second caller joined the first's load)", got)
	}
	if got := gate.loads.Load(); got != 1 {
		t.Errorf("gate loads = %d, want 1", got)
	}
}

// catalogStore is a Store holding one product and its sales in memory.
type catalogStore struct {
	order.Store
	product   product.Product
	sales     []sale.Sale
	snapshots atomic.Int64
}

func (s *catalogStore) ProductGet(_ context.Context, id uuid.UUID) (product.Product, error) {
	if id != s.product.ID {
		return product.Product{}, product.ErrNotFound
	}
	return s.product, nil
}

func (s *catalogStore) SalesByProduct(_ context.Context, id uuid.UUID) ([]sale.Sale, error) {
	if id != s.product.ID {
		return nil, nil
	}
	return s.sales, nil
}

func (s *catalogStore) SaleCreate(_ context.Context, sl sale.Sale) (sale.Sale, error) {
	s.sales = append(s.sales, sl)
	return sl, nil
}

func (s *catalogStore) ProductSnapshot(_ context.Context, productID uuid.UUID, _ time.Time, fn func(order.ProductState) error) error {
	s.snapshots.Add(1)
	return fn(order.ProductState{ProductID: productID, Quantity: s.product.Quantity})
}

// publishedStatus is a gate that publishes remaining once loaded, or fails
// with err; Load marks it loaded.
type publishedStatus struct {
	order.Gate
	loaded    bool
	remaining int32
	err       error
	loadErr   error
}

func (g *publishedStatus) Load(context.Context, order.ProductState) error {
	if g.loadErr != nil {
		return g.loadErr
	}
	g.loaded = true
	return nil
}

func (g *publishedStatus) SaleStatus(_ context.Context, sl sale.Sale, now time.Time) (sale.State, int32, bool, error) {
	if g.err != nil || !g.loaded {
		return 0, 0, false, g.err
	}
	return sl.StateAt(now, g.remaining), g.remaining, true, nil
}

func (g *publishedStatus) SoldOut(context.Context, sale.Sale, time.Time) bool { return false }

// TestSaleStatus: the product's current sale, its state from the gate's
// published status while the sale is open and the gate answers (loading
// the gate when it holds nothing), else from the product's stock.
func TestSaleStatus(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	p := product.Product{ID: uuid.New(), Quantity: 40}
	open := sale.Sale{ID: uuid.New(), ProductID: p.ID, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour)}
	upcoming := sale.Sale{ID: uuid.New(), ProductID: p.ID, StartsAt: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour)}
	for _, tc := range []struct {
		name          string
		sales         []sale.Sale
		gate          *publishedStatus // nil: direct mode
		product       uuid.UUID
		wantErr       error
		wantSale      sale.Sale
		wantState     sale.State
		wantRemaining int32
		wantSnapshots int64
	}{
		{name: "no such product", product: uuid.New(), wantErr: product.ErrNotFound},
		{name: "no sale", product: p.ID, wantErr: sale.ErrNotFound},
		{name: "direct mode: the stock", sales: []sale.Sale{open}, product: p.ID,
			wantSale: open, wantState: sale.StateActive, wantRemaining: 40},
		{name: "open: the gate's status", sales: []sale.Sale{open}, gate: &publishedStatus{loaded: true, remaining: 7}, product: p.ID,
			wantSale: open, wantState: sale.StateActive, wantRemaining: 7},
		{name: "open, published sold out", sales: []sale.Sale{open}, gate: &publishedStatus{loaded: true}, product: p.ID,
			wantSale: open, wantState: sale.StateSoldOut, wantRemaining: 0},
		{name: "open, gate not loaded: loaded, then its status", sales: []sale.Sale{open}, gate: &publishedStatus{remaining: 7}, product: p.ID,
			wantSale: open, wantState: sale.StateActive, wantRemaining: 7, wantSnapshots: 1},
		{name: "open, gate fails: the stock", sales: []sale.Sale{open}, gate: &publishedStatus{err: errors.New("redis down")}, product: p.ID,
			wantSale: open, wantState: sale.StateActive, wantRemaining: 40},
		{name: "open, load fails: the stock", sales: []sale.Sale{open}, gate: &publishedStatus{loadErr: errors.New("redis down")}, product: p.ID,
			wantSale: open, wantState: sale.StateActive, wantRemaining: 40, wantSnapshots: 1},
		{name: "upcoming: the stock, gate not asked", sales: []sale.Sale{upcoming}, gate: &publishedStatus{loaded: true, remaining: 7}, product: p.ID,
			wantSale: upcoming, wantState: sale.StateUpcoming, wantRemaining: 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &catalogStore{product: p, sales: tc.sales}
			cfg := order.Config{Mode: order.ModeDirect, Log: slog.New(slog.DiscardHandler)}
			if tc.gate != nil {
				cfg = order.Config{Mode: order.ModeSync, Gate: tc.gate, Status: tc.gate, Log: cfg.Log}
			}
			svc := order.NewService(store, func() time.Time { return now }, cfg)
			got, err := svc.SaleStatus(t.Context(), tc.product)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("SaleStatus error = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			want := order.SaleStatus{Sale: tc.wantSale, State: tc.wantState, Remaining: tc.wantRemaining, At: now}
			if got != want {
				t.Errorf("SaleStatus = %+v, want %+v", got, want)
			}
			if n := store.snapshots.Load(); n != tc.wantSnapshots {
				t.Errorf("gate loads (snapshots) = %d, want %d", n, tc.wantSnapshots)
			}
		})
	}
}

// TestCreateSale: a sale open at once is loaded into the gate; an upcoming
// one, or one in direct mode, is not; a failed load still creates the sale.
func TestCreateSale(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	p := product.Product{ID: uuid.New(), Quantity: 40}
	open := sale.Sale{ID: uuid.New(), ProductID: p.ID, StartsAt: now, EndsAt: now.Add(time.Hour)}
	upcoming := sale.Sale{ID: uuid.New(), ProductID: p.ID, StartsAt: now.Add(time.Nanosecond), EndsAt: now.Add(time.Hour)}
	for _, tc := range []struct {
		name     string
		sale     sale.Sale
		gate     *publishedStatus
		wantLoad bool
	}{
		{"direct", open, nil, false},
		{"open", open, &publishedStatus{}, true},
		{"upcoming", upcoming, &publishedStatus{}, false},
		{"open, load fails", open, &publishedStatus{loadErr: errors.New("redis down")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &catalogStore{product: p}
			var logged strings.Builder
			cfg := order.Config{Mode: order.ModeDirect, Log: slog.New(slog.NewTextHandler(&logged, nil))}
			if tc.gate != nil {
				cfg = order.Config{Mode: order.ModeSync, Gate: tc.gate, Status: tc.gate, Log: cfg.Log}
			}
			svc := order.NewService(store, func() time.Time { return now }, cfg)
			got, err := svc.CreateSale(t.Context(), tc.sale)
			if err != nil || got != tc.sale {
				t.Fatalf("CreateSale = %+v, %v; want %+v, nil", got, err, tc.sale)
			}
			// A failed load is not the caller's error, but it is not dropped.
			if failed := tc.gate != nil && tc.gate.loadErr != nil; failed != strings.Contains(logged.String(), "redis down") {
				t.Errorf("load failed = %v, but the log says:\n%s", failed, logged.String())
			}
			if len(store.sales) != 1 {
				t.Errorf("sales stored = %d, want 1", len(store.sales))
			}
			if tc.gate != nil && tc.gate.loaded != tc.wantLoad {
				t.Errorf("gate loaded = %v, want %v", tc.gate.loaded, tc.wantLoad)
			}
		})
	}
}

// admitGate answers Admit as told; nothing else is used.
type admitGate struct {
	order.Gate
	decision order.Decision
	held     uuid.UUID
	err      error
}

func (g admitGate) Admit(context.Context, order.Admission) (order.Decision, uuid.UUID, error) {
	return g.decision, g.held, g.err
}

// TestPlaceNotReplicated: a decision no replica confirmed is no
// acknowledgment: ErrNotReplicated naming the order concerned, the new one
// or the one the user already holds.
func TestPlaceNotReplicated(t *testing.T) {
	sl := sale.Sale{ID: uuid.New(), ProductID: uuid.New(), StartsAt: time.Now().Add(-time.Hour), EndsAt: time.Now().Add(time.Hour)}
	newService := func(g admitGate) *order.Service {
		return order.NewService(openSaleStore{sl: sl}, time.Now, order.Config{Mode: order.ModeQueue, Gate: g})
	}
	notReplicated := errors.Join(errors.New("gate admit"), order.ErrNotReplicated)
	o, err := newService(admitGate{decision: order.Admitted, err: notReplicated}).Place(t.Context(), uuid.New(), sl.ProductID)
	oe, ok := errors.AsType[*order.OrderError](err)
	if !ok || oe.Err != order.ErrNotReplicated || oe.OrderID == uuid.Nil || o.ID != uuid.Nil {
		t.Fatalf("Place = %+v, %v, want an ErrNotReplicated OrderError with the new order's id", o, err)
	}
	if errors.Is(err, order.ErrUnavailable) {
		t.Errorf("Place = %v: ErrUnavailable says nothing was stored, but the order may be", err)
	}

	held := uuid.New()
	_, err = newService(admitGate{decision: order.DeniedAlreadyAdmitted, held: held, err: notReplicated}).Place(t.Context(), uuid.New(), sl.ProductID)
	if oe, ok := errors.AsType[*order.OrderError](err); !ok || oe.Err != order.ErrNotReplicated || oe.OrderID != held {
		t.Errorf("retry = %v, want an ErrNotReplicated OrderError naming %v", err, held)
	}
}
