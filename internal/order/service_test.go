package order_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/sale"
)

// openStore is an order.Store with one sale open; only SaleOpen is used.
type openStore struct {
	order.Store
	sale sale.Sale
}

func (s openStore) SaleOpen(context.Context, uuid.UUID, time.Time) (sale.Sale, error) {
	return s.sale, nil
}

// scriptedGate answers Admit and Holder as told; nothing else is used.
type scriptedGate struct {
	order.Gate
	decision  order.Decision
	held      uuid.UUID
	admitErr  error
	holderErr error
	holder    uuid.UUID
}

func (g scriptedGate) Admit(context.Context, order.Admission) (order.Decision, uuid.UUID, error) {
	return g.decision, g.held, g.admitErr
}

func (g scriptedGate) Holder(context.Context, sale.Sale, uuid.UUID) (uuid.UUID, bool, bool, error) {
	return g.holder, false, g.holder != uuid.Nil, g.holderErr
}

type soldOut bool

func (s soldOut) SoldOut(context.Context, sale.Sale) bool { return bool(s) }

func newQueueService(g scriptedGate, status soldOut) (*order.Service, sale.Sale) {
	now := time.Now()
	sl := sale.Sale{ID: uuid.New(), ProductID: uuid.New(), StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour)}
	return order.NewService(openStore{sale: sl}, time.Now, order.Config{Mode: order.ModeQueue, Gate: g, Status: status}), sl
}

// TestPlaceSoldOutHolderUnknown: on a sold-out sale, a caller whose order
// the gate cannot look up (its Redis master just died) may be a winner: the
// answer is Unavailable, never SOLD_OUT.
func TestPlaceSoldOutHolderUnknown(t *testing.T) {
	svc, sl := newQueueService(scriptedGate{holderErr: errors.New("dial tcp: connection refused")}, true)
	_, err := svc.Place(t.Context(), uuid.New(), sl.ProductID)
	if !errors.Is(err, order.ErrUnavailable) || errors.Is(err, order.ErrSoldOut) {
		t.Errorf("Place = %v, want ErrUnavailable", err)
	}

	held := uuid.New()
	svc, sl = newQueueService(scriptedGate{holder: held}, true)
	_, err = svc.Place(t.Context(), uuid.New(), sl.ProductID)
	if already, ok := errors.AsType[*order.AlreadyOrderedError](err); !ok || already.OrderID != held {
		t.Errorf("Place by a holder = %v, want ALREADY_ORDERED %v", err, held)
	}
	svc, sl = newQueueService(scriptedGate{}, true)
	if _, err := svc.Place(t.Context(), uuid.New(), sl.ProductID); err != order.ErrSoldOut {
		t.Errorf("Place by a loser = %v, want ErrSoldOut", err)
	}
}

// TestPlaceNotReplicated: a decision no replica confirmed is no
// acknowledgment: ErrNotReplicated naming the order concerned, the new one
// or the one the user already holds.
func TestPlaceNotReplicated(t *testing.T) {
	notReplicated := errors.Join(errors.New("gate admit"), order.ErrNotReplicated)
	svc, sl := newQueueService(scriptedGate{decision: order.Admitted, admitErr: notReplicated}, false)
	o, err := svc.Place(t.Context(), uuid.New(), sl.ProductID)
	oe, ok := errors.AsType[*order.OrderError](err)
	if !ok || oe.Err != order.ErrNotReplicated || oe.OrderID == uuid.Nil || o.ID != uuid.Nil {
		t.Fatalf("Place = %+v, %v, want an ErrNotReplicated OrderError with the new order's id", o, err)
	}
	if errors.Is(err, order.ErrUnavailable) {
		t.Errorf("Place = %v: ErrUnavailable says nothing was stored, but the order may be", err)
	}

	held := uuid.New()
	svc, sl = newQueueService(scriptedGate{decision: order.DeniedAlreadyAdmitted, held: held, admitErr: notReplicated}, false)
	_, err = svc.Place(t.Context(), uuid.New(), sl.ProductID)
	if oe, ok := errors.AsType[*order.OrderError](err); !ok || oe.Err != order.ErrNotReplicated || oe.OrderID != held {
		t.Errorf("retry = %v, want an ErrNotReplicated OrderError naming %v", err, held)
	}
}
