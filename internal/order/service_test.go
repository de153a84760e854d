package order_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/order"
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
